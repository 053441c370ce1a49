"""A route served by `Direct` answers exactly as through FastAPI, and only that route."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from starlette.responses import Response

from gateway.direct import Direct
from gateway.errors import Forbidden, install_problem_handlers
from gateway.middleware import GatewayMiddleware


async def caller(request: Request) -> str:
    who = request.headers.get("x-who")
    if who is None:
        raise Forbidden("who are you?")
    if who == "db-down":
        raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))
    return who


router = APIRouter()


@router.get("/things/{name}")
async def thing(request: Request, who: Annotated[str, Depends(caller)]) -> Response:
    route = request.scope["route"].path
    body = f"{who} {request.path_params['name']} {route} {request.app.title}"
    return Response(body)


@router.get("/listed")
async def listed(limit: Annotated[int, Query()] = 1) -> Response:
    return Response(str(limit))


def make(direct: bool) -> TestClient:
    app = FastAPI(title="probe")
    install_problem_handlers(app)
    app.include_router(router)
    served = Direct(app, "GET", "/things/{name}") if direct else None
    app.add_middleware(GatewayMiddleware, max_body_bytes=1000, direct=served)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/things/a", {"x-who": "bank"}),
        ("GET", "/things/a", {}),  # the caller refuses: a problem
        ("GET", "/things/a", {"x-who": "db-down"}),  # an outage: 503
        ("POST", "/things/a", {"x-who": "bank"}),  # another method: FastAPI's 405
        ("GET", "/things/a/b", {"x-who": "bank"}),  # not the route: 404
    ],
)
def test_direct_answers_as_fastapi_does(method: str, path: str, headers: dict[str, str]) -> None:
    usual, direct = make(direct=False), make(direct=True)
    expected = usual.request(method, path, headers=headers)
    answer = direct.request(method, path, headers=headers)
    assert (answer.status_code, answer.text) == (expected.status_code, expected.text)
    assert answer.headers.get("content-type") == expected.headers.get("content-type")
    if expected.status_code == 200:
        assert answer.text == "bank a /things/{name} probe"


def test_only_routes_without_parameters_to_solve_are_taken() -> None:
    app = FastAPI()
    app.include_router(router)
    with pytest.raises(ValueError, match="parameters"):
        Direct(app, "GET", "/listed")
    with pytest.raises(ValueError, match="no single route"):
        Direct(app, "GET", "/nowhere")
