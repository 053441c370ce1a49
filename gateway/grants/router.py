"""POST /oauth/par (RFC 9126): thin; the work is in `service.CodeFlow`."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.apidocs import answer_docs
from gateway.errors import problem_docs
from gateway.grants.schemas import PushedRequest
from gateway.grants.service import CodeFlow
from gateway.identity.router import form_and_proof
from gateway.state import state_of

router = APIRouter(tags=["identity"])


async def _code_flow(request: Request) -> CodeFlow:
    return state_of(request).code_flow


CodeFlowDep = Annotated[CodeFlow, Depends(_code_flow)]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/oauth/par",
    status_code=201,
    summary="Push an authorisation request (RFC 9126) with authorization_details (RFC 9396)",
    responses={
        **answer_docs(
            PushedRequest,
            "The request_uri to send the enterprise's browser to /oauth/authorize with",
            status=201,
            headers={"Cache-Control": "`no-store`", "Pragma": "`no-cache`"},
        ),
        **problem_docs(
            {
                400: "A bad request: the OAuth `error` says which (invalid_request, "
                "invalid_authorization_details, invalid_scope, unsupported_response_type, "
                "unauthorized_client: also where XYD_CONSENT_CHANNELS leaves out portal, ...)",
                401: "Client authentication failed, or a bad DPoP proof",
                413: "Body too large",
                415: "Body is not application/x-www-form-urlencoded",
                429: "The client's rate plan is spent (error temporarily_unavailable, Retry-After)",
            }
        ),
    },
)
async def push(request: Request, code_flow: CodeFlowDep) -> Response:
    form, jkt = await form_and_proof(request, code_flow.identity, "/oauth/par")
    answer = await code_flow.push(form, jkt, request.headers.get("authorization"))
    return Response(orjson.dumps(answer), 201, media_type="application/json", headers=_NO_STORE)
