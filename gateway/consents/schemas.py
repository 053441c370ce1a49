from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.apidocs import Doc
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from policies.consent import Purpose


def _code(value: str) -> str:
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


# A consent's enterprise and sections, as `POST /v1/consents` and the code flow's
# `authorization_details` both take them.
CreditCode = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_code)]
Sections = Annotated[list[Annotated[str, Field(max_length=40)]], Field(min_length=1, max_length=20)]
DailyAccesses = Annotated[int, Field(ge=1, le=1000)]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    document_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    signer: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")]


class PortalEvidence(BaseModel):
    """Who approved a `portal` consent on the consent page, when, and what it showed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    approver: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="Keyed hash (HMAC-SHA256) of the person's subject at the identity provider"
    )
    approver_role: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="The person's role at the enterprise (legal_representative, agent)"
    )
    approved_at: AwareDatetime
    page_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="SHA-256 of exactly the consent page the person approved"
    )


class ConsentTerms(BaseModel):
    """What a consent grants, however it arrives. Strict: no `false` taken as 0."""

    model_config = ConfigDict(extra="forbid", strict=True)

    credit_code: CreditCode
    grantee: Annotated[str, Field(min_length=1, max_length=64)]
    purpose: Purpose
    scopes: Sections
    valid_from: AwareDatetime | None = Field(None, strict=False)
    valid_until: AwareDatetime = Field(strict=False)
    max_daily_accesses: DailyAccesses | None = None


class ConsentIn(ConsentTerms):
    """What a bank or platform client registers through `POST /v1/consents`."""

    evidence: Evidence


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Annotated[str, Field(min_length=1, max_length=500)]


# What the routes answer (documentation; see gateway/apidocs.py): the members
# `service._render` and `service.list_for` write.


class ConsentEvent(Doc):
    event: Literal["created", "revoked"]
    by: str = Field(description="The client that did it")
    reason: str | None
    at: datetime


class Consent(Doc):
    id: str
    status: Literal["active", "expired", "revoked"]
    credit_code: str
    grantee: str = Field(description="The bank's client id")
    grantee_bank_code: str | None
    registrant: str = Field(description="The client that registered it")
    channel: Annotated[str, Field(pattern=r"^(portal|direct|platform:[a-z0-9_-]+)$")] = Field(
        description="How it came: `portal` (the enterprise approved it), `platform:<key>` "
        "(signed on that platform), `direct` (registered by a bank with document evidence)"
    )
    purpose: Purpose
    scopes: list[str] = Field(description="Report sections")
    valid_from: datetime
    valid_until: datetime
    evidence: Evidence | PortalEvidence = Field(
        description="Document evidence (`direct`, `platform:<key>`) or the approval (`portal`)"
    )
    max_daily_accesses: int | None = Field(description="For post_loan_monitoring only")
    updated_at: datetime
    history: list[ConsentEvent] = Field(description="Oldest first")


class ConsentChange(Consent):
    change: Literal["consent.created", "consent.revoked"] = Field(description="Its latest event")


class ConsentPage(Doc):
    items: list[ConsentChange] = Field(description="Oldest change first")
    next_cursor: str | None = Field(description="Pass back as `cursor`; null on the last page")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
