from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.apidocs import answer_docs
from gateway.audit.service import record_allowed
from gateway.deps import EngineDep
from gateway.enterprises.service import checked_code
from gateway.errors import problem_docs
from gateway.identity.deps import LoanReader
from gateway.loans import service
from gateway.loans.schemas import LoanPage

router = APIRouter(tags=["loans"])
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks loans:read",
        422: "A filter, limit or cursor is invalid; detail says which",
        429: "Rate limited; Retry-After and RateLimit say when to come back",
        503: "The store, the rate limiter or the audit trail is unavailable",
    }
)


@router.get(
    "/v1/loans",
    summary="The loan ledger folded from the platforms' events",
    description="Filter by `credit_code`, `platform`, `status`; follow `next_cursor`.",
    responses={
        **answer_docs(LoanPage, "One page of loans, by platform and loan number"),
        **_PROBLEMS,
    },
)
async def list_loans(
    request: Request,
    caller: LoanReader,
    engine: EngineDep,
    credit_code: Annotated[str | None, Query(max_length=18)] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    code = checked_code(credit_code) if credit_code else None
    async with engine.connect() as conn:
        page = await conn.run_sync(
            lambda sync: service.page(
                sync,
                credit_code=code,
                platform=platform,
                status=status,
                cursor=cursor,
                limit=limit,
            )
        )
    body = orjson.dumps(page)
    await record_allowed(
        request,
        caller.client_id,
        body,
        reason="loan ledger read",
        credit_code=code,
    )
    return Response(body, media_type="application/json")
