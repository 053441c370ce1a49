"""Protected routes: `Annotated` callers that verify the token and one scope.

    @router.get("/v1/enterprises/{code}")
    async def enterprise(caller: ReportReader) -> ...

A route names its scope once, through the alias it takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from gateway.identity.dpop import InvalidProof, verify_proof
from gateway.identity.errors import InsufficientScope, InvalidToken
from gateway.identity.service import Identity
from gateway.identity.tokens import Caller


async def authenticated(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken("an access token is required")
    scheme, _, token = header.partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token:
        raise InvalidToken("send Authorization: Bearer <token> or DPoP <token>")
    identity: Identity = request.app.state.identity
    caller = await identity.tokens.verify(token)
    if caller.jkt is None:
        if scheme == "dpop":
            raise InvalidToken("this token is not DPoP-bound; send it as Bearer")
        return caller
    # A DPoP-bound token is worthless without a fresh proof by its key.
    if scheme != "dpop":
        raise InvalidToken("this token is DPoP-bound; send it as DPoP with a proof", scheme="DPoP")
    jkt = await verify_proof(
        request.headers.get("dpop"),
        method=request.method,
        url=identity.settings.issuer + request.url.path,
        guard=identity.guard,
        access_token=token,
    )
    if jkt != caller.jkt:
        raise InvalidProof("the proof is signed by another key than the token is bound to")
    return caller


def require(scope: str) -> Callable[[Request], Awaitable[Caller]]:
    async def dependency(request: Request) -> Caller:
        caller = await authenticated(request)
        if scope not in caller.scopes:
            raise InsufficientScope(scope)
        return caller

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


ReportReader = Annotated[Caller, Depends(require("reports:read"))]
ConsentWriter = Annotated[Caller, Depends(require("consents:write"))]
RecordWriter = Annotated[Caller, Depends(require("records:write"))]
AlertReader = Annotated[Caller, Depends(require("alerts:read"))]
AlertWriter = Annotated[Caller, Depends(require("alerts:write"))]
LoanReader = Annotated[Caller, Depends(require("loans:read"))]
AuditReader = Annotated[Caller, Depends(require("audit:read"))]
