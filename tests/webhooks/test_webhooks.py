"""Banks are told: signed events through the outbox to a bank's webhook, over HTTP."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.client import RefusedWebhook, verify_webhook
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.tables import consents, outbox
from gateway.webhooks.repository import set_webhook_url
from gateway.webhooks.sweeps import sweep_changed, sweep_expired
from testkit.builders import code, ndjson, penalty
from testkit.clients import ClientKey, register
from testkit.live import serve
from tests.consents.test_consents_api import auth, body


class Receiver:
    """A bank's webhook endpoint: keeps every body; answers 503 to the first `fail`."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.bodies, self.types = fail, list[bytes](), list[str]()
        self.app = Starlette(
            routes=[
                Route("/healthz", lambda _: PlainTextResponse("ok")),
                Route("/hook", self.hook, methods=["POST"]),
            ]
        )

    async def hook(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        self.types.append(request.headers.get("content-type", ""))
        if self.fail:
            self.fail -= 1
            return PlainTextResponse("busy", 503)
        return Response(status_code=204)

    def wait_for(self, count: int, within_s: float = 15.0) -> None:
        deadline = time.monotonic() + within_s
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.bodies) >= count, f"{len(self.bodies)} deliveries, wanted {count}"


def webhook_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.destination == "webhook")))


def env(settings: Settings) -> dict[str, str]:
    return {"XYD_DATABASE_URL": settings.database_url, "XYD_STATE_DIR": str(settings.state_dir)}


@pytest.fixture
def quick(id_settings: Settings) -> Settings:
    id_settings.outbox_poll_s = 0.2
    id_settings.webhook_sweep_s = 0.2
    return id_settings


def test_a_revocation_is_delivered_signed_and_retried_with_its_event_id(
    quick: Settings, engine: Engine, bank: ClientKey
) -> None:
    from gateway.app import create_app

    receiver = Receiver(fail=1)
    with serve(receiver.app) as base, TestClient(create_app(quick)) as client:
        done = CliRunner().invoke(
            cli, ["clients", "set-webhook", "bank-a", f"{base}/hook"], env=env(quick)
        )
        assert done.exit_code == 0, done.output
        headers = auth(client, bank)
        consent = client.post("/v1/consents", json=body(), headers=headers).json()
        revoked = client.post(
            f"/v1/consents/{consent['id']}/revoke", json={"reason": "企业撤回"}, headers=headers
        )
        assert revoked.status_code == 200
        assert [r.kind for r in webhook_rows(engine)] == ["consent.revoked"]
        receiver.wait_for(2)  # 503 first, then delivered after the back-off
        jwks = client.get("/.well-known/jwks.json").json()
    first, second = (verify_webhook(b, jwks) for b in receiver.bodies[:2])
    assert receiver.types[:2] == ["application/jose", "application/jose"]
    assert first["event_id"] == second["event_id"]
    assert second["type"] == "consent.revoked"
    assert second["consent_id"] == consent["id"]
    assert second["credit_code"] == code(1)
    assert second["client_id"] == "bank-a"
    assert datetime.fromisoformat(second["occurred_at"]).tzinfo is not None
    kid = orjson.loads(base64.urlsafe_b64decode(receiver.bodies[1].split(b".")[0] + b"=="))["kid"]
    assert {(k["kid"], k["use"], k["alg"]) for k in jwks["keys"]} >= {(kid, "sig", "ES256")}
    row = webhook_rows(engine)[0]
    assert row.delivered_at is not None and row.attempts == 2
    assert "503" in row.last_error and code(1) not in row.last_error
    # Another key, or a changed byte: refused.
    with pytest.raises(RefusedWebhook, match="JWKS does not hold"):
        verify_webhook(receiver.bodies[1], {"keys": []})
    head, _, signature = receiver.bodies[1].split(b".")
    forged = base64.urlsafe_b64encode(b'{"type":"consent.revoked","event_id":"x"}').rstrip(b"=")
    tampered = b".".join([head, forged, signature])
    with pytest.raises(RefusedWebhook):
        verify_webhook(tampered, jwks)


def test_a_bank_without_a_webhook_is_told_nothing(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    headers = auth(app_client, bank)
    consent = app_client.post("/v1/consents", json=body(), headers=headers).json()
    app_client.post(f"/v1/consents/{consent['id']}/revoke", json={"reason": "x"}, headers=headers)
    assert webhook_rows(engine) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hook",
        "ftp://bank.example/hook",
        "https://user:secret@8.8.8.8/hook",
        "not a url",
    ],
)
def test_set_webhook_refuses_what_the_outbound_policy_refuses(
    settings: Settings, engine: Engine, url: str
) -> None:
    register(engine, "bank-a", org_code="BOCD")
    done = CliRunner().invoke(cli, ["clients", "set-webhook", "bank-a", url], env=env(settings))
    assert done.exit_code == 2, done.output
    assert "refused" in done.output


def test_set_and_clear_webhook_for_banks_only(settings: Settings, engine: Engine) -> None:
    register(engine, "bank-a", org_code="BOCD")
    register(engine, "kct", client_type="platform", org_code="kechuangtong")
    runner, where = CliRunner(), env(settings)
    hook = "http://127.0.0.1:9/hook"
    assert runner.invoke(cli, ["clients", "set-webhook", "kct", hook], env=where).exit_code == 2
    assert runner.invoke(cli, ["clients", "set-webhook", "nobody", hook], env=where).exit_code == 2
    assert runner.invoke(cli, ["clients", "set-webhook", "bank-a", hook], env=where).exit_code == 0
    assert runner.invoke(cli, ["clients", "clear-webhook", "bank-a"], env=where).exit_code == 0
    with engine.begin() as conn:
        assert set_webhook_url(conn, "bank-a", None) == "bank"


def test_the_expiry_sweep_tells_each_expiry_once(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    consent = app_client.post("/v1/consents", json=body(), headers=auth(app_client, bank)).json()
    with engine.begin() as conn:
        set_webhook_url(conn, "bank-a", "http://127.0.0.1:9/hook")
        ended = datetime.now(UTC) - timedelta(minutes=1)
        ran_out = update(consents).where(consents.c.id == consent["id"]).values(valid_until=ended)
        conn.execute(ran_out)
    with engine.begin() as conn:
        assert sweep_expired(conn, 100) == 1
    with engine.begin() as conn:
        assert sweep_expired(conn, 100) == 0
    rows = webhook_rows(engine)
    assert [r.kind for r in rows] == ["consent.expired"]
    assert rows[0].payload["consent_id"] == consent["id"]


def test_new_records_under_a_monitoring_consent_tell_its_bank(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    monitoring = body(purpose="post_loan_monitoring", max_daily_accesses=2)
    created = app_client.post("/v1/consents", json=monitoring, headers=auth(app_client, bank))
    assert created.status_code == 201, created.text
    other = app_client.post("/v1/consents", json=body(), headers=auth(app_client, bank)).json()
    with engine.begin() as conn:
        set_webhook_url(conn, "bank-a", "http://127.0.0.1:9/hook")
    with engine.begin() as conn:
        assert sweep_changed(conn, 100) == 0  # nothing new since the consent was made
    Ingestor(engine, "penalty", b"test-pii-key", 10).run(
        read_ndjson(ndjson(penalty(1)).splitlines()), "test"
    )
    with engine.begin() as conn:
        assert sweep_changed(conn, 100) == 1
    with engine.begin() as conn:
        assert sweep_changed(conn, 100) == 0
    rows = webhook_rows(engine)
    assert [r.kind for r in rows] == ["enterprise.changed"]
    assert rows[0].payload["consent_id"] == created.json()["id"] != other["id"]
    assert rows[0].payload["data_version"] > 0
