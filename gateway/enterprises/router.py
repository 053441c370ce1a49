from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from gateway.db import DbConnection
from gateway.enterprises.service import basic_data
from gateway.errors import problem_docs
from gateway.identity.deps import ReportReader

router = APIRouter(tags=["enterprises"])
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks reports:read",
        404: "No such enterprise",
        422: "Not a valid unified social credit code; detail says why",
    }
)


@router.get(
    "/v1/enterprises/{credit_code}",
    summary="Basic registration data of an enterprise",
    responses=_PROBLEMS,
)
async def enterprise(credit_code: str, caller: ReportReader, conn: DbConnection) -> Response:
    return Response(
        orjson.dumps(await basic_data(conn, credit_code)), media_type="application/json"
    )
