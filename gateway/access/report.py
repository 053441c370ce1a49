"""The credit report's access path, the busiest request the gateway answers.

In the order it runs (reports/router.py `credit_report`):

1. authenticate and hold `reports:read`: the route's `ReportFetcher` (the
   gate is left for step 4, which knows what the request costs);
2. `credit_code`: the path's code, or 422 (the gate is passed all the same,
   so probing codes spends rate, and the refusal is audited);
3. `consent_id`: the `Consent-Id` header, bounded; with a code-flow token,
   the consent the token names (`token_consent`; another in the header is 403);
4. `admit`: the consent read and decided for this bank, enterprise and the
   report's sections; the gate passed, charged for a report; every refusal
   audited before it is raised.

Nothing here awaits more than the steps need: one consent read (usually the
worker's copy of it) and the gate's single Redis round trip, which also checks
a copy against the consent's change mark.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, NoReturn, Protocol

from fastapi import Request
from sqlalchemy.exc import DBAPIError

from gateway.access.decision import admit as pass_gate
from gateway.access.decision import audit_denial
from gateway.errors import DependencyUnavailable, Forbidden, InvalidValue, ProblemError
from gateway.identifiers import UnknownEnterprise, checked_code
from gateway.identity.tokens import Caller
from gateway.metrics import CONSENT_COPIES, Children
from policies.consent import StoredConsent, decide

CONSENT_ID_MAX = 64
_COPIES = Children(CONSENT_COPIES)


class ConsentDenied(Forbidden):
    type_slug, title = "consent-denied", "The consent does not allow this report"


class Consents(Protocol):
    """Where the report path reads a consent and the enterprise's data version
    (reports.service.ReportService)."""

    async def consent_and_version(
        self, consent_id: str | None, credit_code: str, *, copy_ok: bool = True
    ) -> tuple[tuple[StoredConsent | None, int | None], bool]:
        """(consent, data version), and whether they came from this worker's copy.
        Raises DBAPIError or OSError when the store cannot be read."""

    def forget(self, consent_id: str | None, credit_code: str) -> None:
        """Drop this worker's copy: it was found out of date."""


class Admitted(NamedTuple):
    consent: StoredConsent
    sections: frozenset[str]
    data_version: int


async def credit_code(request: Request, caller: Caller) -> str:
    """Step 2: the path's credit code, normalised."""
    try:
        return checked_code(request.path_params["credit_code"])
    except InvalidValue as malformed:
        await _refuse_admitted(request, caller, malformed)


def consent_id(request: Request) -> str | None:
    """Step 3: the `Consent-Id` header, if any."""
    found = request.headers.get("consent-id")
    if found is not None and len(found) > CONSENT_ID_MAX:
        raise InvalidValue(f"Consent-Id: at most {CONSENT_ID_MAX} characters", field="Consent-Id")
    return found


async def token_consent(request: Request, caller: Caller, header: str | None) -> str | None:
    """The consent a code-flow token names stands for a missing `Consent-Id`; a
    header naming another consent is refused (403, audited). No lookup: it is a
    claim of the token already verified."""
    if caller.consent_id is None:
        return header
    if header is not None and header != caller.consent_id:
        await _refuse_admitted(
            request,
            caller,
            ConsentDenied("Consent-Id differs from the consent the token was granted under",
                          reason="wrong_consent"),
        )  # fmt: skip
    return caller.consent_id


async def admit(
    request: Request,
    caller: Caller,
    consents: Consents,
    consent_id: str | None,
    code: str,
    wanted: frozenset[str],
    now: datetime,
) -> Admitted:
    """Step 4: the granting consent, the sections it grants and the data version,
    with the gate passed; or the refusal raised, audited. A grant decided from
    the worker's copy of the consent is checked against its change mark in the
    gate's round trip; if it changed, the consent is read afresh and decided again."""
    for copy_ok in (True, False):
        try:
            (stored, version), copied = await consents.consent_and_version(
                consent_id, code, copy_ok=copy_ok
            )
        except (DBAPIError, OSError) as exc:
            raise DependencyUnavailable("the credit store is unavailable") from exc
        decision = decide(
            stored, consent_id=consent_id, client_id=caller.client_id, credit_code=code,
            wanted=wanted, now=now,
        )  # fmt: skip
        consent = decision.consent
        try:
            if not decision.allowed or consent is None:
                # A refusal still spends rate, not reports. A copy's refusal needs
                # no check: a revoked, expired or foreign consent stays so.
                await pass_gate(request, caller)
                raise ConsentDenied(f"consent {decision.reason}", reason=decision.reason)
            if version is None:
                await pass_gate(request, caller)
                raise UnknownEnterprise(f"no enterprise with credit code {code}")
            outcome = await pass_gate(
                request, caller, credit_code=code, consent_id=consent.id,
                consent_daily=consent.max_daily_accesses,
                cached_consent=consent.id if copied else None,
            )  # fmt: skip
        except ProblemError as denial:
            purpose = consent.purpose if consent else None
            await audit_denial(request, caller, denial, consent_id=consent_id, purpose=purpose)
            raise
        if not outcome.consent_changed:
            if copied:
                _COPIES("used").inc()
            return Admitted(consent, decision.sections, version)
        _COPIES("changed").inc()
        consents.forget(consent_id, code)
    raise AssertionError("a fresh read is never checked against a change mark")


async def _refuse_admitted(request: Request, caller: Caller, refusal: ProblemError) -> NoReturn:
    """Refused before the consent is read: the gate is passed all the same, so
    probing codes spends rate, and audited once."""
    try:
        await pass_gate(request, caller)
    except ProblemError as denial:
        await audit_denial(request, caller, denial)
        raise
    await audit_denial(request, caller, refusal)
    raise refusal
