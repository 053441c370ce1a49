"""The authorisation code flow after PAR: approve → code → token → report, with
DPoP, and each way a code, a verifier or a refresh token can be misused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from sqlalchemy import Engine, select, update
from starlette.testclient import TestClient

from gateway.client import ASSERTION_TYPE, dpop_proof
from gateway.consents.principal import PortalPrincipal
from gateway.grants.service import OtherEnterprise, UnknownRequest
from gateway.identity.errors import InvalidRequest
from gateway.keys import jose
from gateway.state import state_of
from gateway.store.tables import audit_entries, oauth_requests
from testkit.builders import code
from testkit.clients import ISSUER, ClientKey, new_key
from tests.identity.test_par import REDIRECT, detail, fapi_bank, par_form, pkce, push

__all__ = ["fapi_bank"]  # the fixture, used by name

REPORT = f"/v1/enterprises/{code(1)}/credit-report"
PII_KEY = b"k" * 32
PERSON = PortalPrincipal.of(PII_KEY, "oidc-sub-1", code(1), "legal_representative")


@dataclass
class Granted:
    code: str
    verifier: str
    key: Any
    request_uri: str


def approve(client: TestClient, request_uri: str, person: PortalPrincipal = PERSON) -> str:
    flow = state_of(client.app).code_flow
    return str(client.portal.call(flow.approve, request_uri, "bank-a", person))  # type: ignore[union-attr]


def grant(client: TestClient, bank: ClientKey, **details: Any) -> Granted:
    verifier, challenge = pkce()
    key = new_key()
    form = par_form(
        bank, challenge, authorization_details=orjson.dumps([detail(**details)]).decode()
    )
    pushed = push(client, form, key)
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    location = urlsplit(approve(client, request_uri))
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-123"]
    assert query["iss"] == [ISSUER]
    return Granted(query["code"][0], verifier, key, request_uri)


def exchange(
    client: TestClient, bank: ClientKey, g: Granted, key: Any = None, **overrides: str
) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": g.code,
        "redirect_uri": REDIRECT,
        "code_verifier": g.verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": bank.assertion(),
        **overrides,
    }
    proof = dpop_proof(key or g.key, "POST", f"{ISSUER}/oauth/token")
    return client.post("/oauth/token", data=form, headers={"DPoP": proof})


def refresh(client: TestClient, bank: ClientKey, token: str, key: Any) -> Any:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": bank.assertion(),
    }
    proof = dpop_proof(key, "POST", f"{ISSUER}/oauth/token")
    return client.post("/oauth/token", data=form, headers={"DPoP": proof})


def report(client: TestClient, token: str, key: Any, consent_id: str | None = None) -> Any:
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": dpop_proof(key, "GET", f"{ISSUER}{REPORT}", token),
    }
    if consent_id is not None:
        headers["Consent-Id"] = consent_id
    return client.get(REPORT, headers=headers)


def invalid_grant(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


def test_approve_code_token_report(app_client: TestClient, fapi_bank: ClientKey) -> None:
    g = grant(app_client, fapi_bank)
    answer = exchange(app_client, fapi_bank, g)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "DPoP"
    assert body["scope"] == "reports:read"
    [granted] = body["authorization_details"]
    consent_id = granted.pop("consent_id")
    assert granted == {**detail(), "sections": ["basic", "penalties"],
                       "valid_until": granted["valid_until"]}  # fmt: skip
    claims = jose.parse(body["access_token"]).claims
    assert claims["consent_id"] == consent_id
    assert claims["cnf"]["jkt"] == jose.thumbprint(jose.public_jwk(g.key))
    assert "refresh_token" in body  # a 30-day consent outlives the token
    # No Consent-Id needed: the token names it; the same one is fine too.
    fetched = report(app_client, body["access_token"], g.key)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["consent_id"] == consent_id
    assert report(app_client, body["access_token"], g.key, consent_id).status_code == 200
    # The consent is the bank's, granted through the portal by the person (hashed).
    consent = app_client.get(
        f"/v1/consents/{consent_id}",
        headers={"Authorization": f"Bearer {_cc_token(app_client, fapi_bank)}"},
    ).json()
    assert consent["channel"] == "portal"
    assert consent["grantee"] == "bank-a"
    assert consent["evidence"]["approver_role"] == PERSON.role
    assert "oidc-sub-1" not in str(consent)  # the person only as a keyed hash
    assert consent["evidence"]["approver"] == PERSON.subject_hash


def _cc_token(client: TestClient, bank: ClientKey) -> str:
    return str(client.post("/oauth/token", data=bank.form()).json()["access_token"])


def test_consent_id_mismatch_is_403(app_client: TestClient, fapi_bank: ClientKey) -> None:
    g = grant(app_client, fapi_bank)
    body = exchange(app_client, fapi_bank, g).json()
    answer = report(app_client, body["access_token"], g.key, "cns_another")
    assert answer.status_code == 403, answer.text
    assert answer.json()["reason"] == "wrong_consent"


def test_pkce_verifier_mismatch(app_client: TestClient, fapi_bank: ClientKey) -> None:
    g = grant(app_client, fapi_bank)
    other_verifier, _ = pkce()
    invalid_grant(exchange(app_client, fapi_bank, g, code_verifier=other_verifier))
    # The code is spent by the failed attempt: the right verifier comes too late.
    invalid_grant(exchange(app_client, fapi_bank, g))


@pytest.mark.parametrize(
    "overrides",
    [{"redirect_uri": REDIRECT + "x"}, {"code": "nope"}, {"code_verifier": "short"}],
)
def test_wrong_code_or_redirect(
    app_client: TestClient, fapi_bank: ClientKey, overrides: dict[str, str]
) -> None:
    g = grant(app_client, fapi_bank)
    invalid_grant(exchange(app_client, fapi_bank, g, **overrides))


def test_the_bound_key_alone_redeems_the_code(app_client: TestClient, fapi_bank: ClientKey) -> None:
    g = grant(app_client, fapi_bank)
    invalid_grant(exchange(app_client, fapi_bank, g, key=new_key()))


def test_code_used_twice_revokes_what_the_first_issued(
    app_client: TestClient, fapi_bank: ClientKey
) -> None:
    g = grant(app_client, fapi_bank)
    first = exchange(app_client, fapi_bank, g).json()
    assert report(app_client, first["access_token"], g.key).status_code == 200
    invalid_grant(exchange(app_client, fapi_bank, g))
    assert report(app_client, first["access_token"], g.key).status_code == 401
    invalid_grant(refresh(app_client, fapi_bank, first["refresh_token"], g.key))


def test_request_uri_is_single_use_and_expires(
    app_client: TestClient, fapi_bank: ClientKey, engine: Engine
) -> None:
    g = grant(app_client, fapi_bank)
    with pytest.raises(UnknownRequest, match="already used"):
        approve(app_client, g.request_uri)
    _, challenge = pkce()
    request_uri = push(app_client, par_form(fapi_bank, challenge)).json()["request_uri"]
    with engine.begin() as conn:
        conn.execute(update(oauth_requests).values(expires_at=oauth_requests.c.created_at))
    with pytest.raises(UnknownRequest, match="expired"):
        approve(app_client, request_uri)
    with pytest.raises(UnknownRequest):
        approve(app_client, "urn:ietf:params:oauth:request_uri:made-up")


def test_a_person_of_another_enterprise_cannot_approve(
    app_client: TestClient, fapi_bank: ClientKey
) -> None:
    _, challenge = pkce()
    request_uri = push(app_client, par_form(fapi_bank, challenge)).json()["request_uri"]
    stranger = PortalPrincipal.of(PII_KEY, "oidc-sub-2", code(2), "agent")
    with pytest.raises(OtherEnterprise):
        approve(app_client, request_uri, stranger)
    # Still pending for the right person.
    assert "code=" in approve(app_client, request_uri)


def test_decline_redirects_with_access_denied(app_client: TestClient, fapi_bank: ClientKey) -> None:
    _, challenge = pkce()
    request_uri = push(app_client, par_form(fapi_bank, challenge)).json()["request_uri"]
    flow = state_of(app_client.app).code_flow
    location = app_client.portal.call(flow.decline, request_uri, "bank-a", PERSON)  # type: ignore[union-attr]
    query = parse_qs(urlsplit(location).query)
    assert query == {"error": ["access_denied"], "state": ["st-123"], "iss": [ISSUER]}
    with pytest.raises(UnknownRequest):
        approve(app_client, request_uri)


def test_details_answered_are_exactly_those_pushed(
    app_client: TestClient, fapi_bank: ClientKey, engine: Engine
) -> None:
    """Nothing at approval or exchange changes what was asked: the token's
    answer and the consent are the request as stored at PAR."""
    g = grant(app_client, fapi_bank, purpose="post_loan_monitoring", max_daily_accesses=2)
    body = exchange(app_client, fapi_bank, g).json()
    [granted] = body["authorization_details"]
    assert granted["purpose"] == "post_loan_monitoring"
    assert granted["max_daily_accesses"] == 2
    assert granted["sections"] == ["basic", "penalties"]
    # The token request cannot carry details of its own.
    g2 = grant(app_client, fapi_bank)
    wider = orjson.dumps([detail(sections=["basic", "tax", "loans"])]).decode()
    answer = exchange(app_client, fapi_bank, g2, authorization_details=wider).json()
    assert answer["authorization_details"][0]["sections"] == ["basic", "penalties"]


def test_refresh_rotates_and_reuse_revokes_the_family(
    app_client: TestClient, fapi_bank: ClientKey
) -> None:
    g = grant(app_client, fapi_bank)
    first = exchange(app_client, fapi_bank, g).json()
    second = refresh(app_client, fapi_bank, first["refresh_token"], g.key)
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    claims = jose.parse(second_body["access_token"]).claims
    assert claims["consent_id"] == first["authorization_details"][0]["consent_id"]
    assert report(app_client, second_body["access_token"], g.key).status_code == 200
    # Bound like the access token: another key cannot use it.
    invalid_grant(refresh(app_client, fapi_bank, second_body["refresh_token"], new_key()))
    # The rotated one used again: the whole family dies, and its live access token.
    invalid_grant(refresh(app_client, fapi_bank, first["refresh_token"], g.key))
    invalid_grant(refresh(app_client, fapi_bank, second_body["refresh_token"], g.key))
    assert report(app_client, second_body["access_token"], g.key).status_code == 401


def test_refresh_dies_with_the_consent(app_client: TestClient, fapi_bank: ClientKey) -> None:
    g = grant(app_client, fapi_bank)
    first = exchange(app_client, fapi_bank, g).json()
    consent_id = first["authorization_details"][0]["consent_id"]
    revoked = app_client.post(
        f"/v1/consents/{consent_id}/revoke",
        json={"reason": "the enterprise withdrew"},
        headers={"Authorization": f"Bearer {_cc_token(app_client, fapi_bank)}"},
    )
    assert revoked.status_code == 200, revoked.text
    # The report refuses the revoked consent at once...
    assert report(app_client, first["access_token"], g.key).status_code == 403
    # ...the refresh token is dead, and finding so revokes its family's tokens.
    invalid_grant(refresh(app_client, fapi_bank, first["refresh_token"], g.key))
    assert report(app_client, first["access_token"], g.key).status_code == 401


def test_unknown_grant_types_are_named(app_client: TestClient, fapi_bank: ClientKey) -> None:
    answer = app_client.post("/oauth/token", data=fapi_bank.form(grant_type="password"))
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"
    assert "authorization_code" in answer.json()["detail"]


def test_decisions_are_audited(
    app_client: TestClient, fapi_bank: ClientKey, engine: Engine
) -> None:
    g = grant(app_client, fapi_bank)
    consent_id = exchange(app_client, fapi_bank, g).json()["authorization_details"][0]["consent_id"]
    _, challenge = pkce()
    request_uri = push(app_client, par_form(fapi_bank, challenge)).json()["request_uri"]
    flow = state_of(app_client.app).code_flow
    app_client.portal.call(flow.decline, request_uri, "bank-a", PERSON)  # type: ignore[union-attr]
    query = select(audit_entries).where(audit_entries.c.route == "/oauth/authorize")
    with engine.connect() as conn:
        entries = conn.execute(query.order_by(audit_entries.c.seq)).all()
    assert [(e.decision, e.consent_id, e.credit_code) for e in entries] == [
        ("allow", consent_id, code(1)),
        ("deny", None, code(1)),
    ]


def test_concurrent_exchanges_one_wins(app_client: TestClient, fapi_bank: ClientKey) -> None:
    """Two redemptions at once: the conditional UPDATE lets exactly one through."""
    g = grant(app_client, fapi_bank)
    flow = state_of(app_client.app).code_flow
    form = {"code": g.code, "redirect_uri": REDIRECT, "code_verifier": g.verifier}
    jkt = jose.thumbprint(jose.public_jwk(g.key))

    async def both() -> list[object]:
        client = await flow.identity.client("bank-a")
        assert client is not None
        return await asyncio.gather(
            flow.exchange(client, form, jkt), flow.exchange(client, form, jkt),
            return_exceptions=True,
        )  # fmt: skip

    outcomes = app_client.portal.call(both)  # type: ignore[union-attr]
    won = [o for o in outcomes if isinstance(o, dict)]
    lost = [o for o in outcomes if isinstance(o, InvalidRequest)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert lost[0].extensions["error"] == "invalid_grant"
    # The loser's attempt counts as a second use: the winner's token is revoked.
    assert report(app_client, str(won[0]["access_token"]), g.key).status_code == 401
