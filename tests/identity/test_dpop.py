"""DPoP-bound tokens: each way a proof can be wrong is refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.client import dpop_proof
from gateway.identity import jose
from tests.identity.kit import ISSUER, ClientKey, register
from tests.identity.test_token_flow import ENTERPRISE

URL = ISSUER + ENTERPRISE


@pytest.fixture
def dpop_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def bound_token(client: TestClient, bank: ClientKey, key: ec.EllipticCurvePrivateKey) -> str:
    proof = dpop_proof(key, "POST", f"{ISSUER}/oauth/token")
    answer = client.post("/oauth/token", data=bank.form(), headers={"DPoP": proof})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    token = str(answer.json()["access_token"])
    assert jose.parse(token).claims["cnf"]["jkt"] == jose.thumbprint(jose.public_jwk(key))
    return token


def call(client: TestClient, token: str, proof: str | None, scheme: str = "DPoP") -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return client.get(ENTERPRISE, headers=headers)


def refused(answer: Any, reason: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("DPoP ")
    assert reason in answer.json()["detail"]


def test_bound_token_with_a_fresh_proof(app_client: TestClient, bank: ClientKey, dpop_key) -> None:
    token = bound_token(app_client, bank, dpop_key)
    assert call(app_client, token, dpop_proof(dpop_key, "GET", URL, token)).status_code == 200
    assert call(app_client, token, dpop_proof(dpop_key, "GET", URL, token)).status_code == 200


def test_refusals(app_client: TestClient, bank: ClientKey, dpop_key) -> None:
    token = bound_token(app_client, bank, dpop_key)
    refused(call(app_client, token, None), "required")
    refused(call(app_client, token, None, scheme="Bearer"), "DPoP-bound")
    refused(
        call(app_client, token, dpop_proof(dpop_key, "GET", ISSUER + "/v1/other", token)), "htu"
    )
    refused(call(app_client, token, dpop_proof(dpop_key, "POST", URL, token)), "htm")
    refused(call(app_client, token, dpop_proof(dpop_key, "GET", URL, token + "x")), "ath")
    stranger = ec.generate_private_key(ec.SECP256R1())
    refused(call(app_client, token, dpop_proof(stranger, "GET", URL, token)), "another key")
    replay = dpop_proof(dpop_key, "GET", URL, token)
    assert call(app_client, token, replay).status_code == 200
    refused(call(app_client, token, replay), "replayed")


def test_old_or_forged_proofs(app_client: TestClient, bank: ClientKey, dpop_key) -> None:
    token = bound_token(app_client, bank, dpop_key)
    jwk = jose.public_jwk(dpop_key)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
    base = {"htm": "GET", "htu": URL, "jti": "abcdefghijkl", "ath": None}
    from gateway.identity.dpop import token_hash

    base["ath"] = token_hash(token)
    old = jose.sign(header, {**base, "iat": int(time.time()) - 300}, dpop_key)
    refused(call(app_client, token, old), "too old")
    wrong_typ = jose.sign({**header, "typ": "JWT"}, {**base, "iat": int(time.time())}, dpop_key)
    refused(call(app_client, token, wrong_typ), "typ")


def test_dpop_proof_is_not_an_access_token(app_client: TestClient, dpop_key) -> None:
    proof = dpop_proof(dpop_key, "GET", URL)
    answer = app_client.get(ENTERPRISE, headers={"Authorization": f"Bearer {proof}"})
    assert answer.status_code == 401


def test_fapi_strict_bank_must_use_dpop(app_client: TestClient, engine: Engine, dpop_key) -> None:
    strict = register(engine, "bank-fapi", fapi2_strict=True)
    without = app_client.post("/oauth/token", data=strict.form())
    assert without.status_code == 400
    assert without.json()["error"] == "invalid_dpop_proof"
    bound_token(app_client, strict, dpop_key)
    # strict mode accepts only the issuer as the assertion's audience
    token_url_aud = strict.assertion(aud=f"{ISSUER}/oauth/token")
    proof = dpop_proof(dpop_key, "POST", f"{ISSUER}/oauth/token")
    answer = app_client.post(
        "/oauth/token", data=strict.form(token_url_aud), headers={"DPoP": proof}
    )
    assert answer.status_code == 401
