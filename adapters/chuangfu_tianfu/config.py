"""创富天府's block of config/platforms.yaml."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from adapters.config import PlatformConfig


class ChuangfuTianfuConfig(PlatformConfig):
    jwks_file: str | None = Field(
        None,
        min_length=1,
        description="The platform's public JWKS, re-read when it changes; relative to the "
        "state directory",
    )
    jwks_url: str | None = Field(
        None,
        min_length=1,
        description="Where to fetch it: on first use, again on an unknown kid at most once "
        "a minute; only hosts the outbound policy allows",
    )

    @field_validator("jwks_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("jwks_url must be an http(s) URL")
        return url

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and self.jwks_file is None and self.jwks_url is None:
            raise ValueError("set jwks_file or jwks_url")
        return self
