"""POST /oauth/par (RFC 9126): the happy path and each refusal, over HTTP."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.client import dpop_proof
from gateway.errors import InvalidValue
from gateway.identity.redirects import check_redirect_uri
from gateway.keys import jose
from gateway.store.tables import oauth_requests
from testkit.builders import code
from testkit.clients import ISSUER, ClientKey, new_key, register

REDIRECT = "https://bank-a.example/callback"
PAR = "/oauth/par"


@pytest.fixture
def fapi_bank(engine: Engine) -> ClientKey:
    return register(engine, "bank-a", org_code="BOCD", redirect_uris=[REDIRECT])


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def detail(**overrides: Any) -> dict[str, Any]:
    valid_until = (datetime.now(UTC) + timedelta(days=30)).isoformat(timespec="seconds")
    return {
        "type": "xyd_credit_report",
        "credit_code": code(1),
        "purpose": "credit_review",
        "sections": ["basic", "penalties"],
        "valid_until": valid_until,
        **overrides,
    }


def par_form(bank: ClientKey, challenge: str, **overrides: Any) -> dict[str, str]:
    form = bank.form(
        response_type="code",
        client_id=bank.client_id,
        redirect_uri=REDIRECT,
        code_challenge=challenge,
        code_challenge_method="S256",
        state="st-123",
        scope="reports:read",
        authorization_details=orjson.dumps([detail()]).decode(),
    )
    form.pop("grant_type")
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def push(client: TestClient, form: dict[str, str], dpop_key: Any = None) -> Any:
    headers = {"DPoP": dpop_proof(dpop_key, "POST", f"{ISSUER}{PAR}")} if dpop_key else {}
    return client.post(PAR, data=form, headers=headers)


def refused(answer: Any, error: str, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error, body
    return str(body["detail"])


def test_pushed_request_answers_a_single_use_request_uri(
    app_client: TestClient, fapi_bank: ClientKey, engine: Engine
) -> None:
    _, challenge = pkce()
    key = new_key()
    answer = push(app_client, par_form(fapi_bank, challenge), key)
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 0 < body["expires_in"] <= 600
    with engine.connect() as conn:
        row = conn.execute(select(oauth_requests)).one()
    # Kept by its hash alone, bound to the proof's key.
    assert row.request_hash == hashlib.sha256(body["request_uri"].encode()).hexdigest()
    assert body["request_uri"] not in str(row._mapping)
    assert row.dpop_jkt == jose.thumbprint(jose.public_jwk(key))
    assert row.authorization_details["sections"] == ["basic", "penalties"]


def test_metadata_announces_the_flow(app_client: TestClient) -> None:
    meta = app_client.get("/.well-known/oauth-authorization-server").json()
    assert meta["pushed_authorization_request_endpoint"] == f"{ISSUER}/oauth/par"
    assert meta["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["authorization_details_types_supported"] == ["xyd_credit_report"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])
    assert meta["response_types_supported"] == ["code"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "https://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": REDIRECT + "/more"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "reports:read consents:write"}, "invalid_scope"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
        ({"request": "eyJ..."}, "invalid_request"),
        ({"client_id": None}, "invalid_request"),
        ({"state": "s" * 513}, "invalid_request"),
        ({"authorization_details": None}, "invalid_authorization_details"),
    ],
)
def test_refusals(
    app_client: TestClient, fapi_bank: ClientKey, overrides: dict[str, Any], error: str
) -> None:
    _, challenge = pkce()
    refused(push(app_client, par_form(fapi_bank, challenge, **overrides)), error)


@pytest.mark.parametrize(
    "details",
    [
        "not json",
        "{}",
        "[]",
        orjson.dumps([detail(), detail()]).decode(),
        orjson.dumps([detail(type="other")]).decode(),
        orjson.dumps([detail(credit_code="91510104MA61234567")]).decode(),  # bad check char
        orjson.dumps([detail(credit_code=code(9))]).decode(),  # not in the registry
        orjson.dumps([detail(sections=["basic", "horoscope"])]).decode(),
        orjson.dumps([detail(sections=[])]).decode(),
        orjson.dumps([detail(purpose="curiosity")]).decode(),
        orjson.dumps([detail(valid_until="2020-01-01T00:00:00+08:00")]).decode(),
        orjson.dumps([detail(valid_until="2099-01-01T00:00:00+08:00")]).decode(),
        orjson.dumps([detail(valid_until="2026-12-31T00:00:00")]).decode(),  # no offset
        orjson.dumps([detail(max_daily_accesses=3)]).decode(),  # credit_review has none
        orjson.dumps([detail(extra="x")]).decode(),
        orjson.dumps([detail(sections="basic")]).decode(),
        "[" * 5000,
    ],
)
def test_bad_authorization_details(
    app_client: TestClient, fapi_bank: ClientKey, details: str
) -> None:
    _, challenge = pkce()
    form = par_form(fapi_bank, challenge, authorization_details=details)
    refused(push(app_client, form), "invalid_authorization_details")


def test_unknown_enterprise_is_named(app_client: TestClient, fapi_bank: ClientKey) -> None:
    _, challenge = pkce()
    details = orjson.dumps([detail(credit_code=code(9))]).decode()
    detail_text = refused(
        push(app_client, par_form(fapi_bank, challenge, authorization_details=details)),
        "invalid_authorization_details",
    )
    assert code(9) in detail_text


def test_oversized_body_is_refused(app_client: TestClient, fapi_bank: ClientKey) -> None:
    _, challenge = pkce()
    answer = push(app_client, par_form(fapi_bank, challenge, state="s" * 2_000_000))
    assert answer.status_code in (400, 413)


def test_client_authentication_is_the_token_endpoints(
    app_client: TestClient, fapi_bank: ClientKey, engine: Engine
) -> None:
    _, challenge = pkce()
    form = par_form(fapi_bank, challenge)
    form["client_assertion"] = fapi_bank.assertion(aud="https://elsewhere.example")
    refused(push(app_client, form), "invalid_client", 401)
    form = par_form(fapi_bank, challenge)
    del form["client_assertion"]
    refused(push(app_client, form), "invalid_client")
    other = register(engine, "bank-b", org_code="CCB")
    refused(push(app_client, par_form(fapi_bank, challenge, client_id=other.client_id)),
            "invalid_client")  # fmt: skip


def test_a_bank_without_the_redirect_uri_registered_is_refused(
    app_client: TestClient, engine: Engine
) -> None:
    bare = register(engine, "bank-c", org_code="CDRCB")
    _, challenge = pkce()
    refused(push(app_client, par_form(bare, challenge)), "invalid_request")


def test_fapi_strict_clients_must_send_a_dpop_proof(app_client: TestClient, engine: Engine) -> None:
    strict = register(
        engine, "bank-s", org_code="FAPI", fapi2_strict=True, redirect_uris=[REDIRECT]
    )
    _, challenge = pkce()
    refused(push(app_client, par_form(strict, challenge)), "invalid_dpop_proof")
    assert push(app_client, par_form(strict, challenge), new_key()).status_code == 201


def test_hostile_forms_never_500(app_client: TestClient, fapi_bank: ClientKey) -> None:
    for body, media in [
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"a=1&a=2", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
        (b"authorization_details=%00%00", "application/x-www-form-urlencoded"),
    ]:
        answer = app_client.post(PAR, content=body, headers={"content-type": media})
        assert 400 <= answer.status_code < 500, answer.text


@pytest.mark.parametrize(
    "uri",
    [
        "https://bank.example/cb",
        "https://bank.example:8443/cb?x=1",
        "http://127.0.0.1:8765/callback",
        "http://localhost/cb",
        "http://[::1]:9/cb",
    ],
)
def test_redirect_uris_a_client_may_register(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "http://bank.example/cb",
        "http://127.0.0.1.evil.example/cb",
        "https://bank.example/cb#fragment",
        "https://user:pw@bank.example/cb",
        "javascript:alert(1)",
        "https:///cb",
        "https://bank.example/c b",
        "https://bank.example:99999/cb",
        "https://bank.example/" + "a" * 600,
    ],
)
def test_redirect_uris_refused(uri: str) -> None:
    with pytest.raises(InvalidValue, match="redirect_uri"):
        check_redirect_uri(uri)
