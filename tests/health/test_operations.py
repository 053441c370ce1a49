"""Operations endpoints and the problem/request-id conventions, on a real app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.errors import InvalidValue
from gateway.settings import Settings
from testkit.services import RedisServer, free_port

PROBLEM = "application/problem+json"


def client_for(settings: Settings, extra: APIRouter | None = None) -> TestClient:
    app = create_app(settings)
    if extra is not None:
        app.include_router(extra)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as c:
        yield c


def test_healthz_answers_with_a_fresh_request_id(client: TestClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.status_code == 200
    assert first.json() == {"status": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_valid_incoming_request_id_is_echoed_and_a_hostile_one_replaced(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-Id": "bank-42.a:b"}).headers["x-request-id"]
        == "bank-42.a:b"
    )
    hostile = client.get("/healthz", headers={"X-Request-Id": "x" * 500})
    assert len(hostile.headers["x-request-id"]) == 32


def test_readyz_ok_with_database_only(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok"}


def test_readyz_checks_redis_when_configured(settings: Settings, redis_srv: RedisServer) -> None:
    settings.redis_url = redis_srv.url
    with client_for(settings) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_names_redis_when_it_is_down(settings: Settings) -> None:
    settings.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with client_for(settings) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["down"] == ["redis"]
    assert "redis" in body["detail"]
    assert body["status"] == 503
    assert body["checks"]["database"] == "ok"


def test_readyz_names_the_database_when_it_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        state_dir=tmp_path,
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
        readiness_timeout_s=2,
    )
    with client_for(settings) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["down"] == ["database"]
    assert "nobody" not in answer.text  # no connection details leak


def test_metrics_counts_requests_by_route_template(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/no/such/path/9144030071526726XG")
    text = client.get("/metrics").text
    assert re.search(
        r'xyd_http_requests_total\{method="GET",route="/healthz",status="200"\} [1-9]', text
    )
    assert 'route="unmatched",status="404"' in text
    assert "9144030071526726XG" not in text


def test_openapi_document_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_unknown_path_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"].endswith("/not-found")
    wrong_method = client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/probe/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    @router.get("/probe/invalid")
    async def invalid() -> None:
        raise InvalidValue("credit_code: check character should be 8", field="credit_code")

    @router.get("/probe/crash")
    async def crash() -> None:
        raise RuntimeError("secret connection string postgresql://u:p@h/db")

    return router


@pytest.fixture
def probe(settings: Settings) -> Iterator[TestClient]:
    settings.max_body_bytes = 2048
    with client_for(settings, _probe_router()) as c:
        yield c


def test_domain_errors_render_as_problems(probe: TestClient) -> None:
    answer = probe.get("/probe/invalid")
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["detail"] == "credit_code: check character should be 8"
    assert body["field"] == "credit_code"
    assert body["instance"] == "/probe/invalid"


def test_unexpected_errors_are_500_problems_without_internals(probe: TestClient) -> None:
    answer = probe.get("/probe/crash")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM
    assert "postgresql" not in answer.text
    assert "Traceback" not in answer.text
    assert answer.headers["x-request-id"]


def test_malformed_and_invalid_bodies(probe: TestClient) -> None:
    malformed = probe.post(
        "/probe/echo", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == PROBLEM
    invalid = probe.post("/probe/echo", json={"a": "not a number"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "body.a"


def test_oversized_body_is_413_declared_or_streamed(probe: TestClient) -> None:
    declared = probe.post(
        "/probe/echo",
        content=b"{" + b" " * 4096 + b"}",
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    def chunks() -> Iterator[bytes]:
        yield b'{"a": 1'
        for _ in range(10):
            yield b" " * 1000
        yield b"}"

    streamed = probe.post(
        "/probe/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
