"""The bare baseline answers exactly the body size the benchmark asks of it."""

from __future__ import annotations

import orjson
import pytest
from starlette.testclient import TestClient

from loadtests.bare_app import BODY_BYTES_ENV, create_app, report_like

PATH = "/v1/enterprises/91510100MA00000000/credit-report"


@pytest.mark.parametrize("size", [4_607, 8_613, 20_000])
def test_same_size_body(size: int) -> None:
    with TestClient(create_app(size)) as client:
        answer = client.get(PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert len(answer.content) == size
    assert answer.json()["sections"]["penalties"], "shaped like a report, not one long string"


def test_size_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BODY_BYTES_ENV, "6000")
    with TestClient(create_app()) as client:
        assert len(client.get(PATH).content) == 6000
        assert client.get("/healthz").status_code == 200


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        report_like(50)
    assert len(orjson.dumps(report_like(500))) == 500
