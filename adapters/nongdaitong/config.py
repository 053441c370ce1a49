"""农贷通's block of config/platforms.yaml."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from adapters.config import PlatformConfig

PemPath = Annotated[str, Field(min_length=1)]


class NongdaitongConfig(PlatformConfig):
    public_keys: list[PemPath] = Field(
        default_factory=list,
        description="The platform's RSA public keys (PEM files, relative to the state "
        "directory); two during a rotation. One path alone is taken as a list of one",
    )

    @field_validator("public_keys", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and not self.public_keys:
            raise ValueError("public_keys must be a list of PEM file paths")
        return self
