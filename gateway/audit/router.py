from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.apidocs import answer_docs
from gateway.audit import access_log
from gateway.audit.schemas import AccessLogPage
from gateway.audit.service import record_allowed
from gateway.deps import EngineDep
from gateway.enterprises.service import checked_code
from gateway.errors import problem_docs
from gateway.identity.deps import AuditReader

router = APIRouter(tags=["audit"])
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks audit:read",
        404: "No such enterprise",
        422: "Not a valid credit code, limit or cursor; detail says which",
        429: "Rate limited; Retry-After says when to come back",
        503: "The audit trail cannot be written or read",
    }
)


@router.get(
    "/v1/enterprises/{credit_code}/access-log",
    summary="Who fetched this enterprise's data, when, under which consent and purpose",
    description=(
        "Allowed and denied decisions alike, newest first. Pass `next_cursor` back "
        "as `cursor` for the next page. Reading the log is itself recorded in it."
    ),
    responses={**answer_docs(AccessLogPage, "One page of the log, newest first"), **_PROBLEMS},
)
async def enterprise_access_log(
    credit_code: str,
    request: Request,
    caller: AuditReader,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=access_log.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    code = checked_code(credit_code)
    before = access_log.parse_cursor(cursor)
    async with engine.connect() as conn:
        body = orjson.dumps(await conn.run_sync(access_log.page, code, before=before, limit=limit))
    await record_allowed(
        request,
        caller.client_id,
        body,
        reason="access log read",
        credit_code=code,
    )
    return Response(body, media_type="application/json")
