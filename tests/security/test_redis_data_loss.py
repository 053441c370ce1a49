"""Redis restarted without its data: replay protection and daily counts hold
(issue 19, item 6). The gateway sees the loss by the missing epoch sentinel;
proofs and assertions issued before it are refused, and today's counts are
rebuilt from the audit trail before anything is admitted by them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import dpop_proof
from gateway.db import make_sync_engine
from gateway.settings import Settings
from testkit.builders import code, register_enterprises
from testkit.clients import ISSUER, ClientKey, register
from testkit.services import Postgres, RedisServer, redis_server
from tests.conftest import fresh_pg_database
from tests.policies.test_gate_http import stop
from tests.reports.test_reports_api import URL, bearer, consent

CONFIG = Path(__file__).resolve().parents[2] / "config"
DAILY = 2
RATES = f"""
plans:
  small: {{rate_per_s: 1000, burst: 1000, reports_per_day: {DAILY}}}
default_plan: small
enterprise_reports_per_day: 100
enterprise_reports_per_bank_per_day: 20
routes:
  "GET /v1/enterprises/{{credit_code}}/credit-report": {{cost: 1, reports: 1}}
"""


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def pg_settings(pg: Postgres, own_redis: RedisServer, tmp_path: Path) -> Settings:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    (config / "rates.yaml").write_text(RATES)
    return Settings(
        state_dir=tmp_path / ".xyd",
        database_url=fresh_pg_database(pg),
        pii_key="test-pii-key",  # type: ignore[arg-type]
        public_base_url=ISSUER,
        key_activation_delay_s=0,
        config_dir=config,
        redis_url=own_redis.url,
        breaker_open_s=0.1,
    )


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Iterator[Engine]:
    engine = make_sync_engine(pg_settings)
    register_enterprises(engine, code(1))
    yield engine
    engine.dispose()


@pytest.fixture
def gateway(pg_settings: Settings, pg_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(pg_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def lose_redis(own_redis: RedisServer) -> Iterator[Callable[[], None]]:
    """Restart the gateway's Redis empty (no persistence), at least a second
    after what the test used before it."""
    restarted: list[object] = []

    def lose() -> None:
        time.sleep(1.1)
        stop(own_redis.pid())
        server = redis_server(port=own_redis.port)
        server.__enter__()
        restarted.append(server)

    yield lose
    for server in restarted:
        server.__exit__(None, None, None)  # type: ignore[attr-defined]


def until_served(send: Callable[[], httpx.Response]) -> httpx.Response:
    """The first answer that is not a 503: a connection held from before the
    restart fails once, and the breaker opens for a moment."""
    for _ in range(20):
        answer = send()
        if answer.status_code != 503:
            return answer
        time.sleep(0.15)
    raise AssertionError(answer.text)


def test_a_used_dpop_proof_replayed_after_redis_lost_its_data_is_refused(
    gateway: TestClient, pg_engine: Engine, lose_redis: Callable[[], None]
) -> None:
    bank = register(pg_engine, "bank-dpop", org_code="BOCD")
    key = ec.generate_private_key(ec.SECP256R1())
    answer = gateway.post(
        "/oauth/token",
        data=bank.form(),
        headers={"DPoP": dpop_proof(key, "POST", f"{ISSUER}/oauth/token")},
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    auth = {"Authorization": f"DPoP {token}"}
    consent_id = consent(gateway, bearer(gateway, bank))["id"]

    def fetch(proof: str) -> httpx.Response:
        return gateway.get(URL, headers={**auth, "DPoP": proof, "Consent-Id": consent_id})

    used = dpop_proof(key, "GET", ISSUER + URL, token)
    assert fetch(used).status_code == 200
    assert fetch(used).status_code == 401  # a replay, while Redis remembers

    lose_redis()
    fresh = until_served(lambda: fetch(dpop_proof(key, "GET", ISSUER + URL, token)))
    assert fresh.status_code == 200, fresh.text
    replayed = fetch(used)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_dpop_proof"
    assert "replayed" in replayed.json()["detail"]


def test_a_used_client_assertion_replayed_after_redis_lost_its_data_is_refused(
    gateway: TestClient, pg_engine: Engine, lose_redis: Callable[[], None]
) -> None:
    bank: ClientKey = register(pg_engine, "bank-assert", org_code="BOCD")
    used = bank.assertion()
    assert gateway.post("/oauth/token", data=bank.form(used)).status_code == 200
    assert gateway.post("/oauth/token", data=bank.form(used)).status_code == 401

    lose_redis()
    fresh = until_served(lambda: gateway.post("/oauth/token", data=bank.form()))
    assert fresh.status_code == 200, fresh.text
    replayed = gateway.post("/oauth/token", data=bank.form(used))
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_client"
    assert "replayed" in replayed.json()["detail"]
    # Without `iat` an assertion may have been made as long before its `exp` as
    # the gateway allows: for that long after the loss it cannot be told from
    # one used before it, and is refused.
    undated = gateway.post("/oauth/token", data=bank.form(bank.assertion(iat=None)))
    assert undated.status_code == 401, undated.text
    assert "sign a new one with iat" in undated.json()["detail"]


def test_a_client_at_its_daily_limit_stays_refused_after_redis_lost_its_data(
    gateway: TestClient, pg_engine: Engine, lose_redis: Callable[[], None]
) -> None:
    bank = register(pg_engine, "bank-daily", org_code="BOCD")
    auth = bearer(gateway, bank)
    headers = {**auth, "Consent-Id": consent(gateway, auth)["id"]}
    assert [gateway.get(URL, headers=headers).status_code for _ in range(DAILY)] == [200] * DAILY
    assert gateway.get(URL, headers=headers).json()["limit"] == "daily"

    lose_redis()
    refused = until_served(lambda: gateway.get(URL, headers=headers))
    assert refused.status_code == 429, refused.text
    assert refused.json()["limit"] == "daily"
    # The enterprise's and the bank's counts were rebuilt too.
    state = refused.headers["RateLimit"]
    assert '"enterprise";r=98' in state
    assert '"bank_enterprise";r=18' in state


def test_an_embedded_gateways_daily_counts_survive_its_restart(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Without Redis the counts live in the process: a restart rebuilds them too."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    (config / "rates.yaml").write_text(RATES)
    settings.config_dir, settings.public_base_url = config, ISSUER
    settings.key_activation_delay_s = 0
    register_enterprises(engine, code(1))
    bank = register(engine, "bank-embedded", org_code="BOCD")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        headers = {**auth, "Consent-Id": consent(client, auth)["id"]}
        assert [client.get(URL, headers=headers).status_code for _ in range(DAILY)] == [200] * 2
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        refused = client.get(URL, headers=headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["limit"] == "daily"
