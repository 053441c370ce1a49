"""The portal over real HTTP: the gateway served by uvicorn on a port chosen
first, the demo identity provider (xyd_demo.oidc) registered for that port and
serving live, both sharing the state directory as `make demo` has them (the
gateway finds the provider through STATE_DIR/demo/oidc/client.json)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.client import client_assertion
from gateway.keys import jose
from gateway.settings import Settings
from testkit.builders import code, register_enterprises
from testkit.clients import ClientKey, register
from testkit.live import serve as serve_app
from testkit.services import free_port
from tests.identity.test_par import REDIRECT, detail, pkce
from xyd_demo.oidc.registration import oidc_dir
from xyd_demo.oidc.serve import serve as serve_provider
from xyd_demo.oidc.users import ensure_users

ENTERPRISES = f"""credit_code,name,profile
{code(1)},成都测试1号有限公司,clean
{code(2)},成都测试2号有限公司,penalised
"""
A_REP, A_AGENT, B_REP = "clean-rep", "clean-agent", "penalised-rep"


@dataclass
class Live:
    base: str
    issuer: str  # the provider's
    state_dir: Path
    engine: Engine
    bank: ClientKey
    passwords: dict[str, str]
    app: FastAPI

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=10)

    def provider_key(self) -> jose.PrivateKey:
        jwk = json.loads((oidc_dir(self.state_dir) / "signing.jwk").read_text())
        return jose.private_key_from_jwk(jwk)

    def push(self, **details: Any) -> str:
        """The bank's pushed request (real HTTP): its request_uri."""
        _, challenge = pkce()
        assertion = client_assertion(
            self.bank.client_id, self.bank.key, audience=self.base, kid=self.bank.kid
        )
        form = self.bank.form(
            assertion, response_type="code", client_id=self.bank.client_id,
            redirect_uri=REDIRECT, code_challenge=challenge, code_challenge_method="S256",
            state="bank-state", scope="reports:read",
            authorization_details=orjson.dumps([detail(**details)]).decode(),
        )  # fmt: skip
        form.pop("grant_type")
        answer = httpx.post(self.base + "/oauth/par", data=form)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["request_uri"])


@pytest.fixture
def live(id_settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    id_settings.public_base_url = base
    id_settings.port = port
    register_enterprises(engine, code(2))
    bank = register(engine, "bank-a", org_code="BOCD", redirect_uris=[REDIRECT])
    demo = id_settings.state_dir / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    (demo / "enterprises.csv").write_text(ENTERPRISES, encoding="utf-8")
    provider = serve_provider(id_settings.state_dir, "127.0.0.1", port)
    deadline = time.monotonic() + 20
    while not provider.server.started:
        assert time.monotonic() < deadline, "the provider did not start"
        time.sleep(0.05)
    rows = ensure_users(demo)
    app = create_app(id_settings)
    try:
        with serve_app(app, port=port) as served:
            yield Live(
                served, provider.issuer, id_settings.state_dir, engine, bank,
                {row["username"]: row["password"] for row in rows}, app,
            )  # fmt: skip
    finally:
        provider.server.should_exit = True


def hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def to_provider(live: Live, browser: httpx.Client, next_path: str | None = None) -> str:
    """Start a login at the gateway: the provider's authorisation URL it sends to."""
    params = {"next": next_path} if next_path is not None else {}
    started = browser.get("/portal/login", params=params)
    assert started.status_code == 302, started.text
    location = started.headers["location"]
    assert location.startswith(live.issuer + "/authorize?")
    return location


def at_provider(live: Live, browser: httpx.Client, url: str, username: str) -> str:
    """Log in at the provider: the gateway callback URL it sends the browser back to."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    form = {**hidden(page.text), "username": username, "password": live.passwords[username]}
    answer = browser.post(live.issuer + "/authorize", data=form)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith(live.base + "/portal/login/callback?")
    return back


def log_in(
    live: Live, browser: httpx.Client, username: str = A_REP, next_path: str | None = None
) -> httpx.Response:
    """The whole login; the callback's answer (unfollowed)."""
    back = at_provider(live, browser, to_provider(live, browser, next_path), username)
    return browser.get(back)
