"""科创通's block of config/platforms.yaml."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from adapters.config import PlatformConfig


class KechuangtongConfig(PlatformConfig):
    secret_file: str | None = Field(
        None,
        min_length=1,
        description="File of the shared secret, one per line (two during a rotation); "
        "re-read when it changes; relative to the state directory",
    )
    secret_env: str | None = Field(
        None, min_length=1, description="Environment variable holding the secret(s) instead"
    )
    callback_url: str | None = Field(
        None, min_length=1, description="Where risk alerts are POSTed; none: no alerts sent"
    )
    callback_file: str | None = Field(
        None,
        min_length=1,
        description="A file holding that URL, read at each delivery (the demo's simulator "
        "writes its address there)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.enabled and (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("set exactly one of secret_file and secret_env")
        if self.callback_url is not None and self.callback_file is not None:
            raise ValueError("set at most one of callback_url and callback_file")
        return self

    def notifies(self) -> bool:
        """Risk alerts go to 科创通 only where its callback URL (or its file) is configured."""
        return bool(self.callback_url or self.callback_file)
