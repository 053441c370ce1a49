from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.apidocs import answer_docs
from gateway.audit.service import record_allowed
from gateway.deps import EngineDep
from gateway.enterprises.schemas import Enterprise
from gateway.enterprises.service import basic_data
from gateway.errors import InvalidValue, NotFound, problem_docs
from gateway.identity.deps import ReportReader, audit_denial

router = APIRouter(tags=["enterprises"])
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks reports:read",
        404: "No such enterprise",
        503: "The audit trail cannot be written: nothing is disclosed",
        422: "Not a valid unified social credit code; detail says why",
        429: "Rate limited; Retry-After and RateLimit say when to come back",
    }
)


ROUTE = "/v1/enterprises/{credit_code}"


@router.get(
    ROUTE,
    summary="Basic registration data of an enterprise",
    responses={**answer_docs(Enterprise, "The enterprise's registration data"), **_PROBLEMS},
)
async def enterprise(
    credit_code: str, request: Request, caller: ReportReader, engine: EngineDep
) -> Response:
    try:
        async with engine.connect() as conn:
            data = await basic_data(conn, credit_code)
    except (InvalidValue, NotFound) as refusal:  # an enumeration leaves its trace
        await audit_denial(request, caller, refusal)
        raise
    body = orjson.dumps(data)
    await record_allowed(
        request,
        caller.client_id,
        body,
        credit_code=data["credit_code"],
    )
    return Response(body, media_type="application/json")
