"""Protected routes: `Annotated` callers that pass the gate and hold one scope.

    @router.get("/v1/enterprises/{code}")
    async def enterprise(caller: ReportReader) -> ...

A route names its scope once, through the alias it takes. The dependency
verifies the token (and a DPoP proof), passes the gate (denylist, the proof's
jti and rate limits, one Redis round trip) and checks the scope; a refusal
after the caller is known is audited before it is answered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from gateway.access.authenticate import authenticated
from gateway.access.decision import admit, audit_denial
from gateway.errors import ProblemError
from gateway.identity.errors import InsufficientScope
from gateway.identity.tokens import Caller

_SCHEME_DOC = (
    "An access token from /oauth/token: `Authorization: Bearer <token>`, or, for a "
    "DPoP-bound token, `Authorization: DPoP <token>` with a fresh `DPoP` proof header."
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
RepairReviewer = Annotated[Caller, require("repairs:review")]
