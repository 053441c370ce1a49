"""The shape every platform's block of `config/platforms.yaml` shares.

Each platform's `config.py` extends `PlatformConfig`; an unknown key is refused
(`extra="forbid"`), so a misspelled one stops start-up naming itself instead of
being ignored. A disabled block is checked for its keys too, but need not be
complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool


@dataclass(frozen=True, slots=True)
class Schedule:
    """How the worker runs a pull platform: every `every_s` seconds; after
    `failures` failed syncs in a row it skips the platform for `open_s`."""

    every_s: float
    failures: int
    open_s: float


NonEmpty = Field(min_length=1)


class PlatformConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    enabled: StrictBool = Field(False, description="Whether this deployment runs the platform")

    def schedule(self) -> Schedule | None:
        """The background schedule; None for a platform that pushes to us."""
        return None

    def notifies(self) -> bool:
        """Whether the platform takes risk-alert notifications here."""
        return False

    @classmethod
    def narrow(cls, config: PlatformConfig) -> Self:
        """`config` as this platform's model: the registry pairs them, so any other is a bug."""
        if not isinstance(config, cls):
            raise TypeError(f"expected {cls.__name__}, got {type(config).__name__}")
        return config
