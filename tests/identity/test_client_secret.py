"""client_secret_basic: refused unless a deployment turns it on; never for FAPI clients."""

from __future__ import annotations

import base64

from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.identity.clients import set_secret
from gateway.settings import Settings
from testkit.clients import register


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


GRANT = {"grant_type": "client_credentials"}


def test_off_by_default(app_client: TestClient, engine: Engine) -> None:
    register(engine, "bank-s")
    with engine.begin() as conn:
        secret = set_secret(conn, "bank-s")
    answer = app_client.post("/oauth/token", data=GRANT, headers=basic("bank-s", secret))
    assert answer.status_code == 401
    assert "not enabled" in answer.json()["detail"]
    meta = app_client.get("/.well-known/oauth-authorization-server").json()
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]


def test_enabled_by_setting(id_settings: Settings, engine: Engine) -> None:
    id_settings.allow_client_secret_basic = True
    register(engine, "bank-s")
    register(engine, "bank-f", fapi2_strict=True)
    with engine.begin() as conn:
        secret = set_secret(conn, "bank-s")
        fapi_secret = set_secret(conn, "bank-f")
    with TestClient(create_app(id_settings)) as client:
        ok = client.post("/oauth/token", data=GRANT, headers=basic("bank-s", secret))
        assert ok.status_code == 200, ok.text
        wrong = client.post("/oauth/token", data=GRANT, headers=basic("bank-s", secret + "x"))
        assert wrong.status_code == 401
        fapi = client.post("/oauth/token", data=GRANT, headers=basic("bank-f", fapi_secret))
        assert fapi.status_code == 401
        meta = client.get("/.well-known/oauth-authorization-server").json()
        assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
