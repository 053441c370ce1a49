"""The consent policy: may this caller see these sections of this enterprise?

`ConsentRules` is the declarative part (config/consent.yaml); `decide` is the
decision: allow with the permitted sections, or deny with one reason from
`DenyReason`. It is a pure function of the consent as stored now, so a
revocation is seen by the very next request in any process. `accepts` is the
channel policy: which ways a consent may arrive at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.configfile import load_yaml

Purpose = Literal["loan_application", "credit_review", "post_loan_monitoring"]
# How a consent arrives: granted by the enterprise's person in the portal,
# signed on a financing platform (a consent's channel is then `platform:<key>`),
# or registered by a bank with document evidence.
ChannelKind = Literal["portal", "platform", "direct"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("portal", "platform", "direct")
DenyReason = Literal[
    "missing",
    "not_found",
    "wrong_grantee",
    "wrong_enterprise",
    "expired",
    "revoked",
    "not_yet_valid",
    "purpose_not_allowed",
]


class PurposeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_days: int = Field(ge=1, le=366, description="Longest validity for this purpose")
    max_daily_accesses: int | None = Field(
        None, ge=1, le=1000, description="Default cap on unattended reports a day"
    )


class ConsentRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_validity_days: int = Field(365, ge=1, le=366)
    purposes: dict[Purpose, PurposeRule]
    sections: list[str] = Field(min_length=1)
    channels: frozenset[ChannelKind] = Field(
        frozenset(CHANNEL_KINDS),
        description="The channels consents are accepted through; set from "
        "XYD_CONSENT_CHANNELS when the gateway starts, not from the rules file",
    )

    @model_validator(mode="after")
    def _within_the_cap(self) -> ConsentRules:
        for name, rule in self.purposes.items():
            if rule.max_days > self.max_validity_days:
                raise ValueError(f"purposes.{name}.max_days exceeds max_validity_days")
        return self

    @classmethod
    def load(cls, path: Path, channels: Iterable[ChannelKind] = CHANNEL_KINDS) -> ConsentRules:
        """Read and validate; a bad file raises ValueError naming the field."""
        rules = load_yaml(path, cls.model_validate)
        return rules.model_copy(update={"channels": frozenset(channels)})

    def accepts(self, channel: str) -> bool:
        """Whether a consent through `channel` (`portal`, `platform:<key>`, `direct`)
        may be registered here."""
        return channel.split(":", 1)[0] in self.channels


@dataclass(frozen=True, slots=True)
class StoredConsent:
    id: str
    credit_code: str
    grantee_client_id: str
    registrant_client_id: str
    purpose: str
    scopes: frozenset[str]
    valid_from: datetime
    valid_until: datetime
    revoked: bool
    # post_loan_monitoring: unattended reports a day, enforced by the rate policy.
    max_daily_accesses: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    sections: frozenset[str] = frozenset()
    reason: DenyReason | None = None
    consent: StoredConsent | None = None


def decide(
    consent: StoredConsent | None,
    *,
    consent_id: str | None,
    client_id: str,
    credit_code: str,
    wanted: frozenset[str],
    now: datetime,
    purposes: frozenset[str] | None = None,
) -> Decision:
    """Allow with `wanted` ∩ the consent's scopes, or deny with the first failing reason."""
    if not consent_id:
        return Decision(False, reason="missing")
    if consent is None or client_id not in (
        consent.grantee_client_id,
        consent.registrant_client_id,
    ):
        return Decision(False, reason="not_found")
    if consent.grantee_client_id != client_id:
        return Decision(False, reason="wrong_grantee", consent=consent)
    if consent.credit_code != credit_code:
        return Decision(False, reason="wrong_enterprise", consent=consent)
    if consent.revoked:
        return Decision(False, reason="revoked", consent=consent)
    if now >= consent.valid_until:
        return Decision(False, reason="expired", consent=consent)
    if now < consent.valid_from:
        return Decision(False, reason="not_yet_valid", consent=consent)
    if purposes is not None and consent.purpose not in purposes:
        return Decision(False, reason="purpose_not_allowed", consent=consent)
    return Decision(True, sections=wanted & consent.scopes, consent=consent)
