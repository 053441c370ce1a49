"""POST /oauth/par behind the client's rate gate, and closed where the portal
channel is not accepted: each refusal in the OAuth error form."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import CreditReportAsk, GatewayClient, RefusedPush
from gateway.settings import Settings
from gateway.store.tables import oauth_requests
from testkit.builders import code
from testkit.clients import ISSUER, register

CONFIG = Path(__file__).resolve().parents[2] / "config"
REDIRECT = "https://bank-a.example/callback"
# Three pushes at once, then one per 100 s: nothing replenishes during a test.
TINY = """
plans:
  tiny: {rate_per_s: 0.01, burst: 6, reports_per_day: 10}
default_plan: tiny
enterprise_reports_per_day: 10
routes:
  "POST /oauth/par": {cost: 2}
"""
ASK = CreditReportAsk(code(1), "credit_review", ["basic"], datetime.now(UTC) + timedelta(days=9))


def bank_on(client: TestClient, engine: Engine) -> GatewayClient:
    bank = register(engine, "bank-a", org_code="BOCD", redirect_uris=[REDIRECT])
    return GatewayClient(ISSUER, bank.client_id, bank.key, kid=bank.kid, http=client)


@pytest.fixture
def tiny_plan(id_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    (config / "rates.yaml").write_text(TINY)
    id_settings.config_dir = config
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield client


def test_pushing_past_the_plan_is_429_with_retry_after(
    tiny_plan: TestClient, engine: Engine
) -> None:
    bank = bank_on(tiny_plan, engine)
    for _ in range(3):
        bank.push(ASK, REDIRECT)
    with pytest.raises(RefusedPush) as refused:
        bank.push(ASK, REDIRECT)
    assert refused.value.status == 429
    assert refused.value.error == "temporarily_unavailable"
    assert refused.value.retry_after_s is not None and 99 <= refused.value.retry_after_s <= 601
    with engine.connect() as conn:
        assert len(conn.execute(select(oauth_requests)).all()) == 3


def test_an_unauthenticated_push_is_not_charged(tiny_plan: TestClient, engine: Engine) -> None:
    bank = bank_on(tiny_plan, engine)
    for _ in range(5):
        answer = tiny_plan.post("/oauth/par", data={"client_id": "bank-a"})
        assert answer.json()["error"] == "invalid_client", answer.text
    for _ in range(3):
        bank.push(ASK, REDIRECT)


@pytest.fixture
def no_portal(id_settings: Settings) -> Iterator[TestClient]:
    id_settings.consent_channels = ["platform", "direct"]
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield client


def test_no_push_where_the_portal_channel_is_not_accepted(
    no_portal: TestClient, engine: Engine
) -> None:
    with pytest.raises(RefusedPush) as refused:
        bank_on(no_portal, engine).push(ASK, REDIRECT)
    assert (refused.value.status, refused.value.error) == (400, "unauthorized_client")
    assert "channel portal" in str(refused.value)
    assert "XYD_CONSENT_CHANNELS" in str(refused.value)
    with engine.connect() as conn:
        assert conn.execute(select(oauth_requests)).first() is None


def test_no_code_flow_in_the_metadata_where_the_portal_is_refused(no_portal: TestClient) -> None:
    metadata = no_portal.get("/.well-known/oauth-authorization-server").json()
    assert "pushed_authorization_request_endpoint" not in metadata
    assert "authorization_endpoint" not in metadata
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["response_types_supported"] == []
