"""The reference client's code flow against a gateway served over real HTTP: push,
the enterprise's decision (CodeFlow.approve/decline called in the served app's
loop, standing in for the consent page), the callback checked, the code
redeemed, reports with the consent-bound token, refresh rotated."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.client import (
    AuthorizationDenied,
    CreditReportAsk,
    GatewayClient,
    Pushed,
    RefusedCallback,
    RefusedPush,
    RefusedToken,
)
from gateway.consents.principal import PortalPrincipal
from gateway.settings import Settings
from gateway.state import state_of
from testkit.builders import code
from testkit.clients import ISSUER, register
from testkit.live import call_served, serve

REDIRECT = "https://bank-a.example/callback"
REPORT = f"/v1/enterprises/{code(1)}/credit-report"
PERSON = PortalPrincipal.of(b"k" * 32, "oidc-sub-1", code(1), "legal_representative")


@dataclass
class Live:
    app: FastAPI
    client: GatewayClient


@pytest.fixture
def live(id_settings: Settings, engine: Engine) -> Iterator[Live]:
    bank = register(engine, "bank-a", org_code="BOCD", redirect_uris=[REDIRECT])
    app = create_app(id_settings)
    with serve(app) as base:
        client = GatewayClient(base, bank.client_id, bank.key, kid=bank.kid, issuer=ISSUER)
        yield Live(app, client)
        client.http.close()


def ask(days: int = 30) -> CreditReportAsk:
    until = datetime.now(UTC) + timedelta(days=days)
    return CreditReportAsk(code(1), "credit_review", ["penalties", "basic"], until)


def decide(live: Live, pushed: Pushed, decision: str = "approve") -> str:
    """The enterprise's person decides; the URL their browser is sent back to."""
    flow = state_of(live.app).code_flow
    call = flow.approve if decision == "approve" else flow.decline
    return str(call_served(live.app, call, pushed.request_uri, "bank-a", PERSON))


def test_push_approve_redeem_report_and_refresh(live: Live) -> None:
    client = live.client
    pushed = client.push(ask(), REDIRECT)
    assert pushed.authorize_url.startswith(f"{ISSUER}/oauth/authorize?client_id=bank-a&")
    assert parse_qs(urlsplit(pushed.authorize_url).query)["request_uri"] == [pushed.request_uri]
    grant = client.redeem(client.callback(decide(live, pushed), pushed), pushed)
    assert grant.consent_id.startswith("cns_")
    [granted] = grant.authorization_details
    assert granted["sections"] == ["basic", "penalties"]
    # No Consent-Id header: the token names the consent.
    fetched = client.request("GET", REPORT, grant=grant)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["consent_id"] == grant.consent_id
    # Refresh rotates: the new pair works, the old refresh token is dead.
    first = dataclasses.replace(grant)
    client.refresh(grant)
    assert grant.refresh_token != first.refresh_token
    assert client.request("GET", REPORT, grant=grant).status_code == 200
    # An access token about to expire is refreshed before the call.
    grant.expires_at = 0
    before = grant.refresh_token
    assert client.request("GET", REPORT, grant=grant).status_code == 200
    assert grant.refresh_token != before
    # The first refresh token presented again: refused, and the whole family revoked.
    with pytest.raises(RefusedToken, match="already used"):
        client.refresh(first)
    with pytest.raises(RefusedToken):
        client.refresh(grant)
    assert client.request("GET", REPORT, grant=grant).status_code == 401


def test_callback_is_checked_against_the_push(live: Live) -> None:
    client = live.client
    pushed = client.push(ask(), REDIRECT)
    url = decide(live, pushed)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    def changed(**values: str | None) -> str:
        params = {k: v for k, v in {**query, **values}.items() if v is not None}
        return f"{REDIRECT}?{urlencode(params)}"

    with pytest.raises(RefusedCallback, match="state"):
        client.callback(changed(state="another"), pushed)
    with pytest.raises(RefusedCallback, match="state"):
        client.callback(changed(state=None), pushed)
    with pytest.raises(RefusedCallback, match="iss"):
        client.callback(changed(iss="https://evil.example"), pushed)
    with pytest.raises(RefusedCallback, match="iss"):
        client.callback(changed(iss=None), pushed)
    with pytest.raises(RefusedCallback, match="neither"):
        client.callback(changed(code=None), pushed)
    # Another push's answer is not this one's.
    other = client.push(ask(), REDIRECT)
    with pytest.raises(RefusedCallback, match="state"):
        client.callback(url, other)
    assert client.callback(url, pushed) == query["code"]


def test_a_declined_request_is_access_denied(live: Live) -> None:
    client = live.client
    pushed = client.push(ask(), REDIRECT)
    with pytest.raises(AuthorizationDenied) as denied:
        client.callback(decide(live, pushed, "decline"), pushed)
    assert denied.value.error == "access_denied"


def test_a_refused_push_and_a_wrong_verifier_are_typed(live: Live) -> None:
    client = live.client
    with pytest.raises(RefusedPush) as refused:
        client.push(ask(), "https://elsewhere.example/cb")
    assert (refused.value.status, refused.value.error) == (400, "invalid_request")
    with pytest.raises(RefusedPush) as refused:
        client.push(ask(days=5000), REDIRECT)
    assert refused.value.error == "invalid_authorization_details"
    pushed = client.push(ask(), REDIRECT)
    code_ = client.callback(decide(live, pushed), pushed)
    with pytest.raises(RefusedToken, match="code_verifier"):
        client.redeem(code_, dataclasses.replace(pushed, code_verifier="x" * 64))
