"""A report the gateway fails to build: nothing charged, an `error` in the access log.

The builder is made to raise (as the `record_id` KeyError of issue 18 did) on
both stores: SQLite with the in-process limiter, PostgreSQL with Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.audit.chain import checkpoint_keys, verify
from gateway.reports.build import ReportBuilder
from gateway.settings import Settings
from gateway.store.tables import audit_entries
from testkit.builders import code
from testkit.clients import ClientKey, register
from testkit.services import redis_server
from tests.policies.test_gate_http import stop, with_rates
from tests.reports.test_reports_api import bearer, consent, fetch, ingest, recent_penalty

# One request per 100 s (nothing replenishes during a test), two reports a day.
RATES = """
plans:
  tiny: {rate_per_s: 0.01, burst: 6, reports_per_day: 2}
default_plan: tiny
enterprise_reports_per_day: 2
routes:
  "GET /v1/enterprises/{credit_code}/credit-report": {cost: 1, reports: 1}
"""


@pytest.fixture
def rated(id_settings: Settings, tmp_path: Path, engine: Engine) -> Iterator[TestClient]:
    ingest(engine, "penalty", recent_penalty())
    with TestClient(
        create_app(with_rates(id_settings, tmp_path, RATES)), raise_server_exceptions=False
    ) as client:
        yield client


def broken_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("record_id")

    monkeypatch.setattr(ReportBuilder, "build", build)


def limits(answer: Any) -> dict[str, int]:
    """RateLimit's remaining count per limit name."""
    found = {}
    for part in answer.headers["ratelimit"].split(", "):
        name, remaining, _ = part.split(";")
        found[name.strip('"')] = int(remaining.removeprefix("r="))
    return found


def access_log(client: TestClient, engine: Engine) -> list[dict[str, Any]]:
    regulator = register(engine, "pboc-cd", client_type="regulator", org_code="PBOC")
    answer = client.get(f"/v1/enterprises/{code(1)}/access-log", headers=bearer(client, regulator))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def assert_clean_500(answer: Any, request_id: str) -> None:
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    problem = answer.json()
    assert problem["status"] == 500
    assert problem["type"].endswith("/internal")
    assert "record_id" not in answer.text
    assert "Traceback" not in answer.text


def assert_chain_verifies(engine: Engine) -> None:
    with engine.connect() as conn:
        _, breaks = verify(conn, checkpoint_keys(conn))
    assert breaks == []


def test_a_report_the_builder_fails_on_is_not_charged_and_is_in_the_access_log(
    rated: TestClient,
    bank: ClientKey,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = bearer(rated, bank)
    granted = consent(rated, auth)
    with monkeypatch.context() as patched:
        broken_builder(patched)
        failed = fetch(rated, auth, granted["id"], **{"X-Request-Id": "req-fail-1"})
    assert_clean_500(failed, "req-fail-1")
    assert "ratelimit" not in failed.headers  # it spent nothing to count

    # The failure spent nothing: the consent's rate unit is the only one gone, and
    # the whole daily quota (two reports) is still there.
    answers = [fetch(rated, auth, granted["id"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert limits(answers[0]) == {"rate": 4, "daily": 1, "enterprise": 1}
    assert answers[2].json()["limit"] == "daily"

    log = access_log(rated, engine)
    failures = [i for i in log if i["decision"] == "error"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure["request_id"] == "req-fail-1"
    assert failure["client_id"] == "bank-a"
    assert failure["route"] == "GET /v1/enterprises/{credit_code}/credit-report"
    assert failure["consent_id"] == granted["id"]
    assert failure["reason"] == "internal"
    # The failure, then two reports and one refusal, in that order.
    report_rows = [i["decision"] for i in reversed(log) if i["route"].endswith("credit-report")]
    assert report_rows == ["error", "allow", "allow", "deny"]
    assert_chain_verifies(engine)


def test_a_monitoring_consent_keeps_its_own_cap_after_a_failure(
    rated: TestClient, bank: ClientKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = bearer(rated, bank)
    monitoring = consent(rated, auth, purpose="post_loan_monitoring", max_daily_accesses=1)
    with monkeypatch.context() as patched:
        broken_builder(patched)
        assert fetch(rated, auth, monitoring["id"]).status_code == 500
    granted = fetch(rated, auth, monitoring["id"])
    assert granted.status_code == 200, granted.text
    assert limits(granted)["consent"] == 0
    refused = fetch(rated, auth, monitoring["id"])
    assert refused.status_code == 429
    assert refused.json()["limit"] == "consent"


def scripts_run(id_settings: Settings) -> int:
    """Scripts Redis has been asked to run so far (each EVALSHA is a round trip)."""
    with redis.Redis.from_url(id_settings.redis_url) as client:
        stats = client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_an_answered_report_runs_one_script_and_only_a_failure_runs_the_refund(
    rated: TestClient, bank: ClientKey, id_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = bearer(rated, bank)
    granted = consent(rated, auth)
    runs = []
    with monkeypatch.context() as patched:
        broken_builder(patched)
        for _ in range(2):
            before = scripts_run(id_settings)
            assert fetch(rated, auth, granted["id"]).status_code == 500
            runs.append(scripts_run(id_settings) - before)
    for _ in range(2):
        before = scripts_run(id_settings)
        assert fetch(rated, auth, granted["id"]).status_code == 200
        runs.append(scripts_run(id_settings) - before)
    # The gate's script, then the refund's (loaded into Redis by the first failure).
    assert runs[1:] == [2, 1, 1]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_redis_gone_before_the_refund_still_answers_a_clean_500_audited(
    id_settings: Settings,
    tmp_path: Path,
    engine: Engine,
    bank: ClientKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The charge cannot be given back without Redis: it is kept (a log line says
    so), and the failure is answered and audited all the same."""
    ingest(engine, "penalty", recent_penalty())
    with redis_server() as private:
        id_settings.redis_url = private.url
        app = create_app(with_rates(id_settings, tmp_path, RATES))
        with TestClient(app, raise_server_exceptions=False) as client:
            auth = bearer(client, bank)
            granted = consent(client, auth)

            def build(*args: Any, **kwargs: Any) -> Any:
                stop(private.pid())
                raise KeyError("record_id")

            monkeypatch.setattr(ReportBuilder, "build", build)
            failed = fetch(client, auth, granted["id"], **{"X-Request-Id": "req-no-redis"})
            assert_clean_500(failed, "req-no-redis")
    with engine.connect() as conn:
        last = conn.execute(select(audit_entries).order_by(audit_entries.c.seq.desc())).first()
    assert last is not None
    assert (last.decision, last.request_id, last.credit_code) == ("error", "req-no-redis", code(1))
    assert_chain_verifies(engine)
