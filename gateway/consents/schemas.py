from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.identifiers import InvalidIdentifier, validate_credit_code
from policies.consent import Purpose


def _code(value: str) -> str:
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    document_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    signer: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")]


class ConsentIn(BaseModel):
    """What a bank or platform registers. Strict: no `false` taken as 0."""

    model_config = ConfigDict(extra="forbid", strict=True)

    credit_code: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_code)]
    grantee: Annotated[str, Field(min_length=1, max_length=64)]
    purpose: Purpose
    scopes: Annotated[
        list[Annotated[str, Field(max_length=40)]], Field(min_length=1, max_length=20)
    ]
    valid_from: AwareDatetime | None = Field(None, strict=False)
    valid_until: AwareDatetime = Field(strict=False)
    evidence: Evidence
    max_daily_accesses: Annotated[int, Field(ge=1, le=1000)] | None = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Annotated[str, Field(min_length=1, max_length=500)]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
