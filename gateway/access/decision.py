"""The gate passed for a request, and a refusal audited before it is answered."""

from __future__ import annotations

import hashlib

from fastapi import Request

from gateway.audit.chain import AuditEvent
from gateway.audit.service import record, route_of
from gateway.errors import ProblemError
from gateway.identifiers import is_valid_credit_code
from gateway.identity.tokens import Caller
from gateway.state import state_of
from policies.rate import RateOutcome, headers


def path_credit_code(request: Request) -> str | None:
    """The path's credit code when it is one (never a raw string into keys or audit)."""
    code = request.path_params.get("credit_code")
    return code if isinstance(code, str) and is_valid_credit_code(code) else None


async def admit(
    request: Request,
    caller: Caller,
    *,
    credit_code: str | None = None,
    consent_id: str | None = None,
    consent_daily: int | None = None,
    cached_consent: str | None = None,
) -> RateOutcome:
    """Pass the gate; its rate headers go on whatever answer follows, and what it
    charged is given back if the answer is a 5xx (`GatewayMiddleware`). With
    `cached_consent`, the outcome may instead say the consent changed (see
    `Gate.admit`): then nothing was charged and no headers are set."""
    result: RateOutcome = await state_of(request).gate.admit(
        caller,
        route_of(request),
        credit_code=credit_code,
        consent_id=consent_id,
        consent_daily=consent_daily,
        proof=getattr(request.state, "dpop_proof", None),
        cached_consent=cached_consent,
    )
    if not result.consent_changed:
        request.state.rate_headers = headers(result)
        request.state.charge = result.charge
    return result


async def audit_denial(
    request: Request,
    caller: Caller,
    denial: ProblemError,
    *,
    consent_id: str | None = None,
    purpose: str | None = None,
) -> None:
    reason = denial.type_slug
    detail = denial.extensions.get("limit") or denial.extensions.get("reason")
    if detail:
        reason = f"{reason}:{detail}"
    code = path_credit_code(request)
    given = request.path_params.get("credit_code")
    if code is None and isinstance(given, str):
        # A malformed code is kept as a digest: an enumeration leaves a trace
        # that matches what was sent, never the sender's text, and stays bounded.
        digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        reason = f"{reason}:given-sha256:{digest}"
    await record(
        request,
        AuditEvent(
            client_id=caller.client_id,
            route=route_of(request),
            decision="deny",
            reason=reason[:200],
            credit_code=code,
            consent_id=consent_id,
            purpose=purpose,
        ),
    )
