"""The gate over HTTP: rate headers, 429s, audited refusals, and Redis going away."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import dpop_proof
from gateway.identity.clients import set_disabled
from gateway.settings import Settings
from gateway.store.tables import audit_entries
from testkit.builders import code
from testkit.clients import ISSUER, ClientKey, register
from testkit.services import redis_server
from tests.identity.test_token_flow import get_token

CONFIG = Path(__file__).resolve().parents[2] / "config"
# Three requests at once, then one per 100 s: nothing replenishes during a test.
RATES = """
plans:
  tiny: {rate_per_s: 0.01, burst: 3, reports_per_day: 10}
default_plan: tiny
enterprise_reports_per_day: 10
"""


def with_rates(settings: Settings, tmp_path: Path, text: str = RATES) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    (config / "rates.yaml").write_text(text)
    settings.config_dir = config
    return settings


@pytest.fixture
def rated(id_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(with_rates(id_settings, tmp_path)), raise_server_exceptions=False
    ) as client:
        yield client


def denials(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.client_id, audit_entries.c.reason, audit_entries.c.credit_code)
            .where(audit_entries.c.decision == "deny")
            .order_by(audit_entries.c.seq)
        )
        return [(r.client_id, r.reason, r.credit_code) for r in rows]


def test_headers_then_429_naming_the_limit_and_the_refusal_is_audited(
    rated: TestClient, bank: ClientKey, engine: Engine
) -> None:
    auth = {"Authorization": f"Bearer {get_token(rated, bank)}"}
    answers = [rated.get(f"/v1/enterprises/{code(1)}", headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-policy"] == '"rate";q=3;w=300'
    assert answers[0].headers["ratelimit"].startswith('"rate";r=2;t=')
    assert answers[2].headers["ratelimit"].startswith('"rate";r=0;t=')
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 99 <= int(refused.headers["retry-after"]) <= 301
    assert refused.headers["ratelimit"].startswith('"rate";r=0;')
    problem = refused.json()
    assert problem["type"].endswith("/rate-limited")
    assert problem["limit"] == "rate"
    assert problem["status"] == 429
    assert denials(engine) == [("bank-a", "rate-limited:rate", code(1))]


def test_missing_scope_is_403_audited_and_still_spends_rate(
    rated: TestClient, engine: Engine
) -> None:
    department = register(engine, "dept-tax", client_type="department", org_code="TAX")
    auth = {"Authorization": f"Bearer {get_token(rated, department)}"}
    answer = rated.get(f"/v1/enterprises/{code(1)}", headers=auth)
    assert answer.status_code == 403
    assert answer.headers["ratelimit"].startswith('"rate";r=2;')
    assert denials(engine) == [("dept-tax", "insufficient-scope", code(1))]


def test_a_garbage_credit_code_never_reaches_the_audit_row(
    rated: TestClient, engine: Engine
) -> None:
    department = register(engine, "dept-tax", client_type="department", org_code="TAX")
    auth = {"Authorization": f"Bearer {get_token(rated, department)}"}
    answer = rated.get("/v1/enterprises/" + "x" * 300, headers=auth)
    assert answer.status_code == 403
    # What was asked is kept only as a short digest, so probes can be told apart.
    [(client, reason, credit_code)] = denials(engine)
    assert (client, credit_code) == ("dept-tax", None)
    assert re.fullmatch(r"insufficient-scope:given-sha256:[0-9a-f]{16}", reason)


def test_a_cost_for_an_unknown_route_stops_start_up(id_settings: Settings, tmp_path: Path) -> None:
    text = RATES + 'routes:\n  "GET /v1/nowhere": {cost: 2}\n'
    with pytest.raises(ValueError, match="no such route GET /v1/nowhere"):
        create_app(with_rates(id_settings, tmp_path, text))


# --- Redis stopped mid-test ---------------------------------------------------


def stop(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("redis-server did not stop")


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_redis_down_fail_closed_is_503_audited_and_readyz_says_redis(
    id_settings: Settings, tmp_path: Path, engine: Engine, bank: ClientKey
) -> None:
    with redis_server() as private:
        id_settings.redis_url = private.url
        id_settings.breaker_open_s = 30
        with TestClient(
            create_app(with_rates(id_settings, tmp_path)), raise_server_exceptions=False
        ) as client:
            auth = {"Authorization": f"Bearer {get_token(client, bank)}"}
            assert client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 200
            stop(private.pid())
            answers = [client.get(f"/v1/enterprises/{code(1)}", headers=auth) for _ in range(5)]
            assert {a.status_code for a in answers} == {503}
            problem = answers[-1].json()
            assert problem["type"].endswith("/rate-limiter-unavailable")
            assert "credit_code" not in answers[-1].text
            assert 1 <= int(answers[-1].headers["retry-after"]) <= 30
            # The breaker is open: later refusals do not wait for Redis at all.
            started = time.perf_counter()
            assert client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 503
            assert time.perf_counter() - started < id_settings.redis_timeout_s
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["down"] == ["redis"]
            metrics = client.get("/metrics").text
            assert 'xyd_rate_limiter_unavailable_total{mode="fail_closed"}' in metrics
    reasons = [reason for _, reason, _ in denials(engine)]
    assert reasons == ["rate-limiter-unavailable"] * 6


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_redis_down_local_fallback_enforces_a_share_and_recovers(
    id_settings: Settings, tmp_path: Path, engine: Engine, bank: ClientKey
) -> None:
    rates = RATES.replace("burst: 3", "burst: 8")
    with redis_server() as private:
        id_settings.redis_url = private.url
        id_settings.rate_limit_redis_down = "local_fallback"
        id_settings.workers = 2
        id_settings.breaker_open_s = 0.2
        app = create_app(with_rates(id_settings, tmp_path, rates))
        with TestClient(app, raise_server_exceptions=False) as client:
            auth = {"Authorization": f"Bearer {get_token(client, bank)}"}
            other = register(engine, "bank-b", org_code="CCB")
            bearer_b = {"Authorization": f"Bearer {get_token(client, other)}"}
            key = ec.generate_private_key(ec.SECP256R1())
            bound = client.post(
                "/oauth/token",
                data=bank.form(),
                headers={"DPoP": dpop_proof(key, "POST", f"{ISSUER}/oauth/token")},
            ).json()["access_token"]
            assert client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 200
            stop(private.pid())
            # A DPoP proof's single use lives in Redis alone: without it, no proof is
            # accepted (nothing is counted against the local share either).
            url = f"/v1/enterprises/{code(1)}"
            proof = dpop_proof(key, "GET", ISSUER + url, bound)
            unprotected = client.get(url, headers={"Authorization": f"DPoP {bound}", "DPoP": proof})
            assert unprotected.status_code == 503, unprotected.text
            assert "replay protection" in unprotected.json()["detail"]
            # This process may admit its share: a burst of 8 over 2 workers is 4.
            answers = [client.get(f"/v1/enterprises/{code(1)}", headers=auth) for _ in range(6)]
            assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
            assert answers[0].headers["ratelimit-policy"] == '"rate";q=4;w=800'
            # A client disabled while Redis is down is refused from the database.
            with engine.begin() as conn:
                set_disabled(conn, "bank-b", True)
            assert client.get(f"/v1/enterprises/{code(1)}", headers=bearer_b).status_code == 401
            metrics = client.get("/metrics").text
            assert 'xyd_rate_limiter_unavailable_total{mode="local_fallback"}' in metrics
            # Redis comes back empty: the denylist is rebuilt before it is believed,
            # and the limits are Redis's again (a fresh burst of 8).
            with redis_server(port=private.port):
                time.sleep(id_settings.breaker_open_s + 0.1)
                back = [client.get(f"/v1/enterprises/{code(1)}", headers=auth) for _ in range(9)]
                assert [a.status_code for a in back] == [200] * 8 + [429]
                assert back[0].headers["ratelimit-policy"] == '"rate";q=8;w=800'
                refused = client.get(f"/v1/enterprises/{code(1)}", headers=bearer_b)
                assert refused.status_code == 401
