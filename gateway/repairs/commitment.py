"""The credit commitment (失信修复型信用承诺) an applicant accepts: config/repair_commitment.yaml.

Shown in full (Chinese, with an English translation) before it is accepted;
an application keeps the version and the SHA-256 of the Chinese text, and a
`commitment` record is written for it (see service.py for which department).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.configfile import load_yaml

Lang = Literal["zh", "en"]


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1, max_length=4000)
    en: str = Field(min_length=1, max_length=8000)


class Commitment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=20)
    commitment_type: str = Field(min_length=1, max_length=40)
    title: Words
    text: Words

    @property
    def sha256(self) -> str:
        """What an acceptance names: the Chinese text, as UTF-8, hashed."""
        return hashlib.sha256(self.text.zh.encode()).hexdigest()


@cache
def load_commitment(config_dir: Path) -> Commitment:
    """config_dir/repair_commitment.yaml, validated (ValueError naming the field)."""
    return load_yaml(config_dir / "repair_commitment.yaml", Commitment.model_validate)
