"""Every way an access token can be wrong is refused with 401 and a WWW-Authenticate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from gateway.identity import jose
from gateway.identity.clients import set_disabled
from gateway.identity.keys import rotate
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import signing_keys
from testkit.builders import code
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import ENTERPRISE, get_token


def call(client: TestClient, token: str, scheme: str = "Bearer") -> Any:
    return client.get(ENTERPRISE, headers={"Authorization": f"{scheme} {token}"})


def assert_401(answer: Any, reason: str | None = None) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer error=")
    if reason:
        assert reason in answer.json()["detail"]


def b64(data: bytes | dict[str, Any]) -> str:
    raw = orjson.dumps(data) if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def our_key(client: TestClient) -> Any:
    ring = state_of(client.app).identity.keys.ring  # type: ignore[arg-type]
    return ring.signing_key("access_token", datetime.now(UTC))


def forged(client: TestClient, token: str, header: dict | None = None, **claims: Any) -> str:
    """Re-sign `token` with our own key after changing its header or claims."""
    parsed = jose.parse(token)
    key = our_key(client)
    new_claims = {**parsed.claims, **claims}
    new_header = {**parsed.header, **(header or {})}
    return jose.sign(
        new_header, {k: v for k, v in new_claims.items() if v is not None}, key.private
    )


@pytest.fixture
def token(app_client: TestClient, bank: ClientKey) -> str:
    return get_token(app_client, bank)


def test_missing_or_malformed_authorization(app_client: TestClient) -> None:
    assert_401(app_client.get(ENTERPRISE), "required")
    assert_401(app_client.get(ENTERPRISE, headers={"Authorization": "Basic abc"}))
    assert_401(call(app_client, "not-a-jwt"))


def test_alg_none(app_client: TestClient, token: str) -> None:
    parsed = jose.parse(token)
    unsigned = f"{b64({**parsed.header, 'alg': 'none'})}.{b64(parsed.claims)}."
    assert_401(call(app_client, unsigned))


def test_hs256_with_our_public_key_as_secret(app_client: TestClient, token: str) -> None:
    parsed = jose.parse(token)
    public = orjson.dumps(our_key(app_client).public_jwk)
    head = b64({**parsed.header, "alg": "HS256"})
    body = b64(parsed.claims)
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert_401(call(app_client, f"{head}.{body}.{b64(mac)}"), "algorithm")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"kid": "nobody"}, "unknown"),
        ({"jku": "https://evil.example/jwks"}, "jku"),
        ({"x5u": "https://evil.example/cert"}, "x5u"),
        ({"jwk": {"kty": "EC"}}, "jwk"),
        ({"crit": ["exp"]}, "crit"),
        ({"typ": "JWT"}, "typ"),
        ({"typ": "dpop+jwt"}, "typ"),
    ],
)
def test_hostile_headers(app_client: TestClient, token: str, header: dict, reason: str) -> None:
    assert_401(call(app_client, forged(app_client, token, header=header)), reason)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not yet valid"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"aud": "https://other.example/v1"}, "audience"),
        ({"sub": "bank-b"}, "sub"),
        ({"exp": "tomorrow"}, "integers"),
    ],
)
def test_bad_claims(app_client: TestClient, token: str, claims: dict, reason: str) -> None:
    assert_401(call(app_client, forged(app_client, token, **claims)), reason)


def test_modified_payload(app_client: TestClient, token: str) -> None:
    head, _, signature = token.split(".")
    claims = {**jose.parse(token).claims, "scope": "reports:read audit:read"}
    assert_401(call(app_client, f"{head}.{b64(claims)}.{signature}"), "signature")


def test_client_assertion_presented_as_access_token(
    app_client: TestClient, bank: ClientKey
) -> None:
    assert_401(call(app_client, bank.assertion()))


def test_huge_token_refused_fast(app_client: TestClient) -> None:
    started = time.perf_counter()
    answer = call(app_client, "a" * 1_000_000)
    assert answer.status_code in (401, 431)
    assert time.perf_counter() - started < 2


def test_revoked_token(app_client: TestClient, bank: ClientKey, token: str) -> None:
    assert call(app_client, token).status_code == 200
    revoked = app_client.post("/oauth/revoke", data={**bank.form(), "token": token})
    assert revoked.status_code == 200
    assert_401(call(app_client, token), "revoked")
    introspected = app_client.post("/oauth/introspect", data={**bank.form(), "token": token})
    assert introspected.json() == {"active": False}


def test_introspection_of_a_live_token(app_client: TestClient, bank: ClientKey, token: str) -> None:
    answer = app_client.post("/oauth/introspect", data={**bank.form(), "token": token}).json()
    assert answer["active"] is True
    assert answer["client_id"] == "bank-a"
    assert answer["scope"] == "consents:write reports:read"


def test_another_client_cannot_revoke_or_introspect_my_token(
    app_client: TestClient, engine: Engine, token: str
) -> None:
    other = register(engine, "bank-b")
    app_client.post("/oauth/revoke", data={**other.form(), "token": token})
    assert call(app_client, token).status_code == 200
    seen = app_client.post("/oauth/introspect", data={**other.form(), "token": token})
    assert seen.json() == {"active": False}


def test_disabled_client_is_refused_at_its_next_request(
    app_client: TestClient, engine: Engine, bank: ClientKey, token: str, id_settings: Settings
) -> None:
    assert call(app_client, token).status_code == 200
    with engine.begin() as conn:
        set_disabled(conn, bank.client_id, True)
    from gateway.identity.sync_mirror import mirror_client_state

    mirror_client_state(id_settings, bank.client_id, disabled=True)
    assert_401(call(app_client, token), "disabled")


def test_valid_token_without_the_scope_is_403(app_client: TestClient, engine: Engine) -> None:
    department = register(engine, "dept-a", client_type="department")
    answer = call(app_client, get_token(app_client, department))
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"


def test_invalid_credit_code_is_422_naming_why(app_client: TestClient, token: str) -> None:
    bad = code(1)[:-1] + ("0" if code(1)[-1] != "0" else "1")
    answer = app_client.get(f"/v1/enterprises/{bad}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422
    assert "check character should be" in answer.json()["detail"]


def test_key_rotation_end_to_end(
    app_client: TestClient, engine: Engine, bank: ClientKey, id_settings: Settings
) -> None:
    identity = state_of(app_client.app).identity  # type: ignore[arg-type]
    old_token = get_token(app_client, bank)
    old_kid = jose.parse(old_token).header["kid"]
    with engine.begin() as conn:
        new_kid = rotate(
            conn, id_settings.kek_bytes(), "access_token", "ES256",
            delay=timedelta(seconds=0), outlives=timedelta(minutes=16),
        )  # fmt: skip
    app_client.portal.call(identity.keys.reload)  # type: ignore[attr-defined]
    published = {k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= published
    new_token = get_token(app_client, bank)
    assert jose.parse(new_token).header["kid"] == new_kid
    assert call(app_client, old_token).status_code == 200  # still valid until it expires
    with engine.begin() as conn:  # time passes: the old key's last token has expired
        conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == old_kid)
            .values(retire_after=datetime.now(UTC) - timedelta(seconds=1))
        )
    identity.tokens._verified.clear()  # a process that has not seen the old token yet
    app_client.portal.call(identity.keys.reload)  # type: ignore[attr-defined]
    assert_401(call(app_client, old_token), "retired")
    assert call(app_client, new_token).status_code == 200
    published = {k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]}
    assert old_kid not in published


def test_rotated_key_signs_only_after_the_delay(
    app_client: TestClient, engine: Engine, bank: ClientKey, id_settings: Settings
) -> None:
    identity = state_of(app_client.app).identity  # type: ignore[arg-type]
    before = jose.parse(get_token(app_client, bank)).header["kid"]
    with engine.begin() as conn:
        waiting = rotate(
            conn, id_settings.kek_bytes(), "access_token", "ES256",
            delay=timedelta(minutes=2), outlives=timedelta(minutes=16),
        )  # fmt: skip
    app_client.portal.call(identity.keys.reload)  # type: ignore[attr-defined]
    published = {k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]}
    assert waiting in published  # published at once...
    assert jose.parse(get_token(app_client, bank)).header["kid"] == before  # ...not yet used


def test_private_keys_are_encrypted_at_rest(app_client: TestClient, engine: Engine) -> None:
    from sqlalchemy import select

    with engine.connect() as conn:
        rows = conn.execute(
            select(signing_keys.c.private_encrypted, signing_keys.c.public_jwk)
        ).all()
    assert rows
    for sealed, public in rows:
        assert b"PRIVATE" not in sealed
        assert "d" not in public


def test_token_signed_with_the_report_key_is_refused(app_client: TestClient, token: str) -> None:
    ring = state_of(app_client.app).identity.keys.ring  # type: ignore[arg-type]
    report_key = ring.signing_key("report", datetime.now(UTC))
    parsed = jose.parse(token)
    confused = jose.sign(
        {**parsed.header, "kid": report_key.kid}, parsed.claims, report_key.private
    )
    assert_401(call(app_client, confused), "unknown")
