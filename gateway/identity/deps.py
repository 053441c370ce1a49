"""Protected routes: `Annotated` callers that pass the gate and hold one scope.

    @router.get("/v1/enterprises/{code}")
    async def enterprise(caller: ReportReader) -> ...

A route names its scope once, through the alias it takes. The dependency
verifies the token (and a DPoP proof), passes the gate (denylist, the proof's
jti and rate limits, one Redis round trip) and checks the scope; a refusal
after the caller is known is audited before it is answered.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.types import Scope

from gateway.audit.chain import AuditEvent
from gateway.audit.service import record, route_of
from gateway.errors import ProblemError
from gateway.identifiers import is_valid_credit_code
from gateway.identity.dpop import InvalidProof, check_proof, proof_header
from gateway.identity.errors import InsufficientScope, InvalidToken
from gateway.identity.tokens import Caller
from gateway.state import state_of
from policies.rate import RateOutcome, headers

_SCHEME_DOC = (
    "An access token from /oauth/token: `Authorization: Bearer <token>`, or, for a "
    "DPoP-bound token, `Authorization: DPoP <token>` with a fresh `DPoP` proof header."
)


async def authenticated(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken("an access token is required")
    scheme, _, token = header.partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token:
        raise InvalidToken("send Authorization: Bearer <token> or DPoP <token>")
    identity = state_of(request).identity
    caller = await identity.tokens.verify(token, check_denylist=False)
    if caller.jkt is None:
        if scheme == "dpop":
            raise InvalidToken("this token is not DPoP-bound; send it as Bearer")
        return caller
    # A DPoP-bound token is worthless without a fresh proof by its key.
    if scheme != "dpop":
        raise InvalidToken("this token is DPoP-bound; send it as DPoP with a proof", scheme="DPoP")
    proof = check_proof(
        proof_header(request.headers),
        method=request.method,
        url=identity.settings.issuer + proof_path(request.scope),
        access_token=token,
    )
    if proof.jkt != caller.jkt:
        raise InvalidProof("the proof is signed by another key than the token is bound to")
    # Its jti is spent by the gate, in the same Redis round trip as the rate
    # limit: every protected request passes `admit` before anything is disclosed.
    request.state.dpop_proof = proof
    return caller


def proof_path(scope: Scope) -> str:
    """The request's path as `request.url.path` gives it, without building the
    whole URL (tens of µs a request): the form a DPoP proof's `htu` ends with."""
    return str(scope["path"]).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


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


class RequireScope(SecurityBase):
    """The caller of a protected route: a valid access token holding `scope`.

    Being a `SecurityBase`, it also declares the `AccessToken` scheme, with the
    scope, on each route's OpenAPI operation. `gate=False`: the route passes
    the gate itself, once it knows what the request costs (a report needs its
    consent read first)."""

    def __init__(self, scope: str, *, gate: bool = True) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description=_SCHEME_DOC)
        self.scheme_name = "AccessToken"
        self.scope = scope
        self.gate = gate

    async def __call__(self, request: Request) -> Caller:
        caller = await authenticated(request)
        try:
            # The gate first: a caller without the scope still spends its rate.
            if self.gate or self.scope not in caller.scopes:
                await admit(request, caller)
            if self.scope not in caller.scopes:
                raise InsufficientScope(self.scope)
        except ProblemError as denial:
            await audit_denial(request, caller, denial)
            raise
        return caller


def require(scope: str, *, gate: bool = True) -> Any:
    """A dependency marker: `Annotated[Caller, require("reports:read")]`."""
    return Security(RequireScope(scope, gate=gate), scopes=[scope])


ReportReader = Annotated[Caller, require("reports:read")]
ReportFetcher = Annotated[Caller, require("reports:read", gate=False)]
ConsentWriter = Annotated[Caller, require("consents:write")]
RecordWriter = Annotated[Caller, require("records:write")]
AlertReader = Annotated[Caller, require("alerts:read")]
AlertWriter = Annotated[Caller, require("alerts:write")]
LoanReader = Annotated[Caller, require("loans:read")]
AuditReader = Annotated[Caller, require("audit:read")]
