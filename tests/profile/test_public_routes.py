"""/docs, /openapi.json and /metrics are served unless turned off (the demo's
default); the production profile wants them set either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import store_at


def _client(request: pytest.FixtureRequest, tmp_path: Path, **changes: bool) -> TestClient:
    settings = Settings(
        state_dir=tmp_path / ".xyd", database_url=store_at("sqlite", request), **changes
    )
    return TestClient(create_app(settings))


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with _client(request, tmp_path) as client:
        yield client


@pytest.fixture
def hidden(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with _client(request, tmp_path, public_docs=False, public_metrics=False) as client:
        yield client


def test_the_demo_serves_them(served: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert served.get(path).status_code == 200, path


def test_turned_off_they_are_not_found(hidden: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert hidden.get(path).status_code == 404, path
    assert hidden.get("/healthz").status_code == 200
