"""Who registers a consent, and so through which channel it came:

- a bank or platform client holding a token (`Caller`), through
  `POST /v1/consents` with document evidence: channel `direct`; a bank as the
  registry knows it (`Client`) when it asks for a consent without a token of
  its own (a pushed authorisation request, a refresh grant's consent check);
- a financing platform's adapter writing, without a token, the authorisation
  an SME signed on that platform (`PlatformPrincipal`): channel `platform:<key>`;
- the enterprise's own person approving on the portal's consent page
  (`PortalPrincipal`): channel `portal`.

The registrant is recorded on the consent and in its history under the
principal's client id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.identity.clients import Client
from gateway.identity.tokens import Caller
from gateway.pii import keyed_hash

PORTAL = "portal"
DIRECT = "direct"


def witness_of(platform: str) -> str:
    """The registrant a platform adapter writes for the authorisations signed on it."""
    return f"platform:{platform}"


@dataclass(frozen=True, slots=True)
class PlatformPrincipal:
    """A financing platform, witness of an authorisation its adapter received."""

    platform: str
    client_type: Literal["platform"] = "platform"

    @property
    def client_id(self) -> str:
        return witness_of(self.platform)

    @property
    def org_code(self) -> str:
        return self.platform


@dataclass(frozen=True, slots=True)
class PortalPrincipal:
    """An enterprise's person who approved a consent on the portal: known only by a
    keyed hash of their subject at the identity provider, never the subject itself."""

    subject_hash: str
    credit_code: str  # the enterprise their login names, the only one they act for
    role: str  # at that enterprise: legal_representative or agent
    client_type: Literal["portal"] = "portal"

    @classmethod
    def of(cls, pii_key: bytes, subject: str, credit_code: str, role: str) -> PortalPrincipal:
        """The person behind an ID token's `sub`, hashed with the personal-data key."""
        return cls(keyed_hash(pii_key, "oidc-sub", subject, exact=True), credit_code, role)

    @property
    def client_id(self) -> str:
        return PORTAL

    @property
    def org_code(self) -> str:
        return self.credit_code

    @property
    def actor(self) -> str:
        """How a record of what the person did names them (a dispute's opener, a repair's
        applicant): `portal:` and the keyed hash's first 48 hex digits (192 bits), which
        fits every such column."""
        return f"{PORTAL}:{self.subject_hash[:48]}"


Actor = Caller | Client | PlatformPrincipal | PortalPrincipal


def channel_of(actor: Actor) -> str:
    """`portal`, `platform:<key>` or `direct`: how a consent this actor registers came."""
    if isinstance(actor, PortalPrincipal):
        return PORTAL
    if isinstance(actor, PlatformPrincipal):
        return witness_of(actor.platform)
    return DIRECT
