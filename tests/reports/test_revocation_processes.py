"""Revocation across worker processes: `xyd serve --workers 2` on PostgreSQL + Redis."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from gateway.client import ASSERTION_TYPE, client_assertion
from gateway.settings import Settings
from testkit.builders import code
from testkit.clients import ClientKey
from testkit.services import free_port, start_serve, stop_gently
from tests.health.test_serve import _wait_ready
from tests.reports.test_reports_api import ingest, recent_penalty

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_revocation_is_seen_by_the_next_request_on_every_worker(
    id_settings: Settings, engine: Engine, bank: ClientKey, tmp_path: Path
) -> None:
    ingest(engine, "penalty", recent_penalty())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    assert id_settings.redis_url
    env = {
        **os.environ,
        "XYD_STATE_DIR": str(id_settings.state_dir),
        "XYD_DATABASE_URL": id_settings.effective_database_url,
        "XYD_REDIS_URL": id_settings.redis_url,
        "XYD_PII_KEY": "test-pii-key",
        "XYD_PUBLIC_BASE_URL": base,
        "XYD_KEY_ACTIVATION_DELAY_S": "0",
        "XYD_PORT": str(port),
        "XYD_WORKERS": "2",
    }
    proc = start_serve(env, tmp_path / "serve.log")
    try:
        _wait_ready(base, proc)
        assertion = client_assertion(bank.client_id, bank.key, audience=base, kid=bank.kid)
        token = httpx.post(
            base + "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
            timeout=10,
        )
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        granted = httpx.post(
            base + "/v1/consents",
            json={
                "credit_code": code(1),
                "grantee": "BOCD",
                "purpose": "credit_review",
                "scopes": ["basic", "penalties"],
                "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "evidence": {"document_sha256": "ab" * 32, "signer": "法人", "channel": "direct"},
            },
            headers=auth,
            timeout=10,
        ).json()
        url = f"{base}/v1/enterprises/{code(1)}/credit-report"
        headers = {**auth, "Consent-Id": granted["id"]}
        # New connections each time: both workers serve, and both cache the report.
        before = [httpx.get(url, headers=headers, timeout=10).status_code for _ in range(12)]
        assert before == [200] * 12
        revoked = httpx.post(
            f"{base}/v1/consents/{granted['id']}/revoke",
            json={"reason": "企业通过平台撤回授权"},
            headers=auth,
            timeout=10,
        )
        assert revoked.status_code == 200
        after = [httpx.get(url, headers=headers, timeout=10) for _ in range(12)]
        assert [a.status_code for a in after] == [403] * 12
        assert {a.json()["reason"] for a in after} == {"revoked"}
    finally:
        stop_gently(proc)
