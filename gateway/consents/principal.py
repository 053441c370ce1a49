"""Who registers a consent: a bank or platform client holding a token (`Caller`),
or a financing platform's adapter writing, without a token, the authorisation
an SME signed on that platform (`PlatformPrincipal`). Both are recorded as the
consent's registrant and in its history under the same client id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.identity.tokens import Caller


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


Actor = Caller | PlatformPrincipal
