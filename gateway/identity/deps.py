"""Protected routes: `Annotated` callers that verify the token and one scope.

    @router.get("/v1/enterprises/{code}")
    async def enterprise(caller: ReportReader) -> ...

A route names its scope once, through the alias it takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from gateway.identity.errors import InsufficientScope, InvalidToken
from gateway.identity.service import Identity
from gateway.identity.tokens import Caller


async def authenticated(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if not header:
        raise InvalidToken("an access token is required")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("send Authorization: Bearer <access token>")
    identity: Identity = request.app.state.identity
    caller = await identity.tokens.verify(token.strip())
    if caller.jkt is not None:
        # A DPoP-bound token is worthless without its proof: never as a bearer token.
        raise InvalidToken("this token is DPoP-bound; send it with a DPoP proof", scheme="DPoP")
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
