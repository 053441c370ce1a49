"""A 5xx on an audited route: the gate's charge given back, an `error` entry
committed before the answer, and the audit's own 503 when that entry cannot be
written. On SQLite with the in-process limiter and PostgreSQL with Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.audit.chain import checkpoint_keys, verify
from gateway.errors import DependencyUnavailable
from gateway.settings import Settings
from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token
from tests.policies.test_gate_http import with_rates

URL = f"/v1/enterprises/{code(1)}"


@pytest.fixture
def rated(id_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    # Three requests at once, then one per 100 s (tests/policies/test_gate_http.py).
    with TestClient(
        create_app(with_rates(id_settings, tmp_path)), raise_server_exceptions=False
    ) as client:
        yield client


def fail_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    async def basic_data(*args: Any) -> Any:
        raise error

    monkeypatch.setattr("gateway.enterprises.router.basic_data", basic_data)


def get(client: TestClient, auth: dict[str, str], request_id: str | None = None) -> Any:
    return client.get(URL, headers={**auth, **({"X-Request-Id": request_id} if request_id else {})})


def assert_problem(answer: Any, status: int, request_id: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    assert "Traceback" not in answer.text
    assert "boom" not in answer.text
    return dict(answer.json())


def errors_logged(client: TestClient, engine: Engine) -> list[tuple[str, str, str]]:
    regulator = register(engine, "pboc-cd", client_type="regulator", org_code="PBOC")
    auth = {"Authorization": f"Bearer {get_token(client, regulator)}"}
    answer = client.get(f"{URL}/access-log", headers=auth)
    assert answer.status_code == 200, answer.text
    return [
        (i["request_id"], i["reason"], i["client_id"])
        for i in reversed(answer.json()["items"])
        if i["decision"] == "error"
    ]


def test_a_500_and_a_503_are_given_back_and_in_the_access_log(
    rated: TestClient, bank: ClientKey, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = {"Authorization": f"Bearer {get_token(rated, bank)}"}
    with monkeypatch.context() as patched:
        fail_with(patched, RuntimeError("boom"))
        problem = assert_problem(get(rated, auth, "req-500"), 500, "req-500")
        assert problem["type"].endswith("/internal")
    with monkeypatch.context() as patched:
        fail_with(patched, DependencyUnavailable("the credit store is unavailable"))
        problem = assert_problem(get(rated, auth, "req-503"), 503, "req-503")
        assert problem["detail"] == "the credit store is unavailable"
    # Neither spent any of the burst of three.
    answers = [get(rated, auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit"].startswith('"rate";r=2;')
    assert errors_logged(rated, engine) == [
        ("req-500", "internal", "bank-a"),
        ("req-503", "dependency-unavailable", "bank-a"),
    ]
    with engine.connect() as conn:
        _, breaks = verify(conn, checkpoint_keys(conn))
    assert breaks == []


def refuse_error_entries(engine: Engine) -> None:
    """The store itself refuses an `error` entry: the audit cannot be written."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "ALTER TABLE audit_entries ADD CONSTRAINT no_errors"
                    " CHECK (decision <> 'error') NOT VALID"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER no_errors BEFORE INSERT ON audit_entries"
                    " WHEN NEW.decision = 'error' BEGIN SELECT RAISE(ABORT, 'no errors'); END"
                )
            )


def test_a_500_whose_entry_cannot_be_written_is_the_audits_503(
    rated: TestClient, bank: ClientKey, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = {"Authorization": f"Bearer {get_token(rated, bank)}"}
    refuse_error_entries(engine)
    with monkeypatch.context() as patched:
        fail_with(patched, RuntimeError("boom"))
        problem = assert_problem(get(rated, auth, "req-x"), 503, "req-x")
    assert problem["detail"] == "the audit trail cannot be written; nothing was disclosed"
    # Given back all the same; the trail goes on once the store takes entries.
    answers = [get(rated, auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    with engine.connect() as conn:
        count, breaks = verify(conn, checkpoint_keys(conn))
    assert breaks == []
    assert count == 4  # three reads and the refusal; no entry for the failure
