"""DPoP-bound tokens: each way a proof can be wrong is refused."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.testclient import TestClient

from gateway.access.authenticate import proof_path
from gateway.client import dpop_proof
from gateway.identity.dpop import InvalidProof, check_proof, token_hash
from gateway.keys import jose
from testkit.clients import ISSUER, ClientKey, register
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
    base = {"htm": "GET", "htu": URL, "jti": "abcdefghijkl", "ath": token_hash(token)}
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


def _proof(key: ec.EllipticCurvePrivateKey, header_key: ec.EllipticCurvePrivateKey) -> str:
    """A proof signed by `key` under a header naming `header_key`'s public key."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jose.public_jwk(header_key)}
    claims = {"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    return jose.sign(header, claims, key)


def test_a_known_header_still_needs_its_signature(dpop_key) -> None:
    # The first proof puts its header in the cache; every later proof under the
    # same header is still verified, so a forger copying the header gets nowhere.
    first = check_proof(_proof(dpop_key, dpop_key), method="GET", url=URL)
    assert first.jkt == jose.thumbprint(jose.public_jwk(dpop_key))
    assert first.jkt == check_proof(_proof(dpop_key, dpop_key), method="GET", url=URL).jkt
    forger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidProof, match="bad signature"):
        check_proof(_proof(forger, dpop_key), method="GET", url=URL)
    head, _, signature = _proof(dpop_key, dpop_key).split(".")
    tampered = jose.b64encode(b'{"htm":"GET","htu":"' + URL.encode() + b'","iat":1,"jti":"x"}')
    with pytest.raises(InvalidProof, match="bad signature"):
        check_proof(f"{head}.{tampered}.{signature}", method="GET", url=URL)


def test_a_refused_header_is_refused_every_time(dpop_key) -> None:
    header = {"typ": "JWT", "alg": "ES256", "jwk": jose.public_jwk(dpop_key)}
    claims = {"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": uuid.uuid4().hex}
    for _ in range(2):
        with pytest.raises(InvalidProof, match="typ"):
            check_proof(jose.sign(header, claims, dpop_key), method="GET", url=URL)
    private = {**header, "typ": "dpop+jwt", "jwk": jose.private_jwk(dpop_key)}
    for _ in range(2):
        with pytest.raises(InvalidProof, match="public key"):
            check_proof(jose.sign(private, claims, dpop_key), method="GET", url=URL)


def test_ath_is_checked_per_token(dpop_key) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jose.public_jwk(dpop_key)}

    def proof(ath: str) -> str:
        claims = {"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": uuid.uuid4().hex}
        return jose.sign(header, {**claims, "ath": ath}, dpop_key)

    for token in ("token-one", "token-two", "token-one"):
        check_proof(proof(token_hash(token)), method="GET", url=URL, access_token=token)
        other = "token-two" if token == "token-one" else "token-one"
        with pytest.raises(InvalidProof, match="ath"):
            check_proof(proof(token_hash(other)), method="GET", url=URL, access_token=token)


@pytest.mark.parametrize(
    "path", ["/v1/enterprises/91510100MA61234567/credit-report", "/a b/é", "/a?b#c\\d", "//x"]
)
def test_proof_path_is_what_the_request_url_gives(path: str) -> None:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"q=1",
             "headers": [(b"host", b"gateway.example")], "scheme": "https"}  # fmt: skip
    assert proof_path(scope) == Request(scope).url.path


def _two_proofs_refused(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["error"] == "invalid_dpop_proof"


def test_two_dpop_headers_at_the_token_endpoint_are_refused(
    app_client: TestClient, bank: ClientKey, dpop_key
) -> None:
    """RFC 9449 4.3: exactly one DPoP header. Two valid proofs are still two."""
    url = f"{ISSUER}/oauth/token"
    proofs = [("DPoP", dpop_proof(dpop_key, "POST", url)) for _ in range(2)]
    _two_proofs_refused(app_client.post("/oauth/token", data=bank.form(), headers=proofs))


@pytest.mark.parametrize("path", [ENTERPRISE, f"{ENTERPRISE}/credit-report"])
def test_two_dpop_headers_on_a_resource_route_are_refused(
    app_client: TestClient, bank: ClientKey, dpop_key, path: str
) -> None:
    """Both the routed path and the report route's direct path (gateway/direct.py)."""
    token = bound_token(app_client, bank, dpop_key)
    proofs = [("DPoP", dpop_proof(dpop_key, "GET", ISSUER + path, token)) for _ in range(2)]
    answer = app_client.get(path, headers=[("Authorization", f"DPoP {token}"), *proofs])
    _two_proofs_refused(answer)
    # One of the same proofs alone is accepted: the refusal was for the pair.
    one = app_client.get(path, headers=[("Authorization", f"DPoP {token}"), proofs[0]])
    assert one.status_code != 400, one.text
