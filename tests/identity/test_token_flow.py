"""Assertion → token → protected call, and everything the token endpoint refuses."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.identity.clients import set_disabled
from gateway.identity.startup import start_identity
from gateway.keys import jose
from gateway.settings import Settings
from testkit.builders import code
from testkit.clients import ISSUER, ClientKey, new_key, register

ENTERPRISE = f"/v1/enterprises/{code(1)}"


def get_token(client: TestClient, key: ClientKey, **form: str) -> str:
    answer = client.post("/oauth/token", data=key.form(**form))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_good_flow(app_client: TestClient, bank: ClientKey) -> None:
    answer = app_client.post("/oauth/token", data=bank.form())
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "consents:write reports:read"
    token = body["access_token"]
    header = jose.parse(token).header
    claims = jose.parse(token).claims
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == claims["sub"] == "bank-a"
    assert claims["exp"] - claims["iat"] == 600
    got = app_client.get(ENTERPRISE, headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    assert got.json()["credit_code"] == code(1)
    # the token verifies against the published key set
    jwks = app_client.get("/.well-known/jwks.json").json()
    published = {k["kid"]: k for k in jwks["keys"]}
    jose.verify(
        jose.parse(token), jose.public_key_from_jwk(published[header["kid"]]), frozenset({"ES256"})
    )


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_eddsa_and_ps256_assertions(app_client: TestClient, engine: Engine, kind: str) -> None:
    key = register(engine, f"bank-{kind}", kind=kind)
    assert app_client.post("/oauth/token", data=key.form()).status_code == 200


def test_scopes_are_narrowed_to_the_registered_ones(
    app_client: TestClient, bank: ClientKey
) -> None:
    answer = app_client.post("/oauth/token", data=bank.form(scope="reports:read records:write"))
    assert answer.json()["scope"] == "reports:read"
    refused = app_client.post("/oauth/token", data=bank.form(scope="records:write"))
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


def refused(client: TestClient, form: dict[str, str]) -> dict[str, str]:
    answer = client.post("/oauth/token", data=form)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "invalid_client" in answer.headers["www-authenticate"]
    return dict(answer.json())


def test_replayed_assertion_is_refused(app_client: TestClient, bank: ClientKey) -> None:
    assertion = bank.assertion()
    assert app_client.post("/oauth/token", data=bank.form(assertion)).status_code == 200
    assert "replayed" in refused(app_client, bank.form(assertion))["detail"]


def test_assertion_for_another_clients_id_is_refused(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    other = register(engine, "bank-b")
    forged = bank.assertion(iss=other.client_id, sub=other.client_id)
    assert "registered key" in refused(app_client, bank.form(forged))["detail"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": int(time.time()) + 3600}, "at most 300 s"),
        ({"aud": "https://elsewhere.example"}, "aud"),
        ({"jti": None}, "jti"),
        ({"sub": "someone-else"}, "iss and sub"),
        ({"header": {"typ": "at+jwt"}}, "typ"),
    ],
)
def test_bad_assertions_are_refused(
    app_client: TestClient, bank: ClientKey, claims: dict, reason: str
) -> None:
    assert reason in refused(app_client, bank.form(bank.assertion(**claims)))["detail"]


def test_assertion_signed_by_an_unregistered_key(app_client: TestClient, bank: ClientKey) -> None:
    stranger = ClientKey(bank.client_id, new_key(), bank.kid)
    assert "registered key" in refused(app_client, stranger.form())["detail"]


def test_disabled_client_cannot_get_a_token(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    with engine.begin() as conn:
        set_disabled(conn, bank.client_id, True)
    assert "disabled" in refused(app_client, bank.form())["detail"]


def test_token_endpoint_wants_a_form_and_the_right_grant(
    app_client: TestClient, bank: ClientKey
) -> None:
    as_json = app_client.post("/oauth/token", json=bank.form())
    assert as_json.status_code == 415
    wrong_grant = app_client.post("/oauth/token", data=bank.form(grant_type="password"))
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    no_auth = app_client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert no_auth.status_code == 400
    assert no_auth.json()["error"] == "invalid_client"
    garbage = app_client.post("/oauth/token", data=bank.form(assertion="a.b.c"))
    assert garbage.status_code == 401


def test_concurrent_requests_with_one_assertion_succeed_once(
    id_settings: Settings, bank: ClientKey
) -> None:
    from gateway.db import make_async_engine
    from gateway.redisconn import make_redis

    async def race() -> list[object]:
        engine = make_async_engine(id_settings)
        redis = make_redis(id_settings)
        identity = await start_identity(id_settings, engine, redis)
        if redis is not None:
            # A fresh Redis reads as one that lost its data: recover first (as the
            # lifespan's Gate.start does), or an assertion signed in the second
            # before recovery would be refused as a possible replay.
            await identity.guard.recover()
        form = bank.form()
        try:
            return await asyncio.gather(
                *(identity.token(dict(form), None) for _ in range(4)), return_exceptions=True
            )
        finally:
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    results = asyncio.run(race())
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, Exception) for r in results) == 3


def test_metadata_describes_the_server(app_client: TestClient) -> None:
    meta = app_client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "client_secret_basic" not in str(meta)
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
