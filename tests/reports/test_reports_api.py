"""The credit report through every gate: consent, rate, audit, signature, cache."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import Engine, delete, select, update
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.client import dpop_proof
from gateway.keys import jose
from gateway.loans.events import LoanEvent, digest
from gateway.loans.ledger import store
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import audit_entries, consents, enterprises
from testkit.builders import code, ndjson, penalty, register_enterprises
from testkit.clients import ISSUER, ClientKey, register
from testkit.services import redis_server
from tests.identity.test_token_flow import get_token
from tests.loans.test_ledger import RULES
from tests.policies.test_gate_http import stop

URL = f"/v1/enterprises/{code(1)}/credit-report"


def ingest(engine: Engine, category: str, *rows: dict[str, Any]) -> None:
    Ingestor(engine, category, b"test-pii-key", 10).run(
        read_ndjson(ndjson(*rows).splitlines()), "test"
    )


def recent_penalty(n: int = 1, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "record_id": f"P-NEW-{n}",
        "decision_date": (datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
        "publication_until": None,
        "fine_wan": "2",
        "credit_code": code(1),
    }
    fields.update(overrides)
    return penalty(1, **fields)


def bearer(client: TestClient, key: ClientKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(client, key)}"}


def consent(client: TestClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "credit_code": code(1),
        "grantee": "BOCD",
        "purpose": "loan_application",
        "scopes": ["basic", "penalties", "tax"],
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "evidence": {"document_sha256": "ab" * 32, "signer": "法定代表人", "channel": "direct"},
    }
    body.update(overrides)
    answer = client.post("/v1/consents", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def fetch(client: TestClient, auth: dict[str, str], consent_id: str | None, **headers: str):  # type: ignore[no-untyped-def]
    sent = dict(auth)
    if consent_id is not None:
        sent["Consent-Id"] = consent_id
    sent.update(headers)
    return client.get(URL, headers=sent)


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_with_jwks_only(client: TestClient, report: dict[str, Any], detached: str) -> bool:
    """What a bank does: canonical JSON, the JWKS, and nothing of ours."""
    head, _, signature = detached.split(".")
    header = json.loads(b64(head))
    jwk = next(
        k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == header["kid"]
    )
    payload = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signing_input = f"{head}.{base64.urlsafe_b64encode(payload.encode()).rstrip(b'=').decode()}"
    key = jose.public_key_from_jwk(jwk)
    raw = b64(signature)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@pytest.fixture
def bank_auth(app_client: TestClient, bank: ClientKey, engine: Engine) -> dict[str, str]:
    ingest(engine, "penalty", recent_penalty())
    return bearer(app_client, bank)


def test_report_has_only_consented_sections_and_a_verifiable_signature(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    answer = fetch(app_client, bank_auth, granted["id"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["ratelimit-policy"].startswith('"rate";q=40;w=2, "daily";q=5000')
    body = answer.json()
    signature = body.pop("signature")
    assert set(body["sections"]) == {"basic", "penalties", "tax"}
    assert "lists" in body["sections_not_consented"]
    assert set(body["completeness"]) == {"basic", "penalties", "tax"}
    assert body["consent_id"] == granted["id"]
    assert body["purpose"] == "loan_application"
    assert body["credit_code"] == code(1)
    [shown] = body["sections"]["penalties"]["items"]
    assert shown["source_record_id"] == "P-NEW-1"
    assert shown["fine_fen"] == 2_000_000
    assert shown["legal_rep_masked"].startswith("张")
    assert "legal_rep_hash" not in shown
    assert "张三丰" not in answer.text
    score = body["score"]
    assert score["value"] == score["base"] + sum(r["points"] for r in score["reasons"])
    assert score["model_version"]
    assert len(body["score_trend"]) == 4
    assert verify_with_jwks_only(app_client, body, signature)
    body["sections"]["penalties"]["items"][0]["fine_fen"] += 1
    assert not verify_with_jwks_only(app_client, body, signature)
    with engine.connect() as conn:
        entry = conn.execute(select(audit_entries).order_by(audit_entries.c.seq.desc())).first()
    assert entry is not None
    assert (entry.decision, entry.consent_id, entry.purpose) == (
        "allow",
        granted["id"],
        "loan_application",
    )
    assert entry.response_sha256 == hashlib.sha256(answer.content).hexdigest()


def test_compact_jws_and_html_and_406(app_client: TestClient, bank_auth: dict[str, str]) -> None:
    granted = consent(app_client, bank_auth)
    jws = fetch(app_client, bank_auth, granted["id"], Accept="application/jose")
    assert jws.status_code == 200
    assert jws.headers["content-type"] == "application/jose"
    head, payload, _ = jws.text.split(".")
    report = json.loads(b64(payload))
    assert report["consent_id"] == granted["id"]
    assert json.loads(b64(head))["typ"] == "xyd-credit-report+jws"
    page = fetch(app_client, bank_auth, granted["id"], Accept="text/html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "企业信用报告" in page.text
    assert "<script" not in page.text
    refused = fetch(app_client, bank_auth, granted["id"], Accept="image/png")
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"


def platform_says(engine: Engine, n: int, kind: str, days_ago: int, **fields: Any) -> None:
    """科创通's event on code(1)'s loan KCT-API-1, into the ledger as its adapter stores it."""
    event = LoanEvent(
        platform="kechuangtong", message_id=f"api-{n}",
        event_type=kind,  # type: ignore[arg-type]
        occurred_at=datetime.now(UTC) - timedelta(days=days_ago), raw_sha256=digest(b"%d" % n),
        credit_code=code(1), bank_code="BOCD", loan_no="KCT-API-1", **fields,
    )  # fmt: skip
    with engine.begin() as conn:
        assert store(conn, event, rules=RULES).outcome == "accepted"


def test_a_loan_event_changes_the_next_reports_score(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    covering = consent(app_client, bank_auth, scopes=["basic", "penalties", "loans"])
    other = consent(app_client, bank_auth, scopes=["basic", "penalties"])
    before = fetch(app_client, bank_auth, covering["id"]).json()
    assert before["sections"]["loans"]["items"] == []
    assert fetch(app_client, bank_auth, other["id"]).status_code == 200  # both cuts cached

    platform_says(engine, 1, "loan_disbursed", 50, amount_fen=30_000_000)
    platform_says(engine, 2, "repayment_overdue", 0, days_overdue=35)
    after_data_change(app_client)

    after = fetch(app_client, bank_auth, covering["id"]).json()
    [loan] = after["sections"]["loans"]["items"]
    assert (loan["status"], loan["days_overdue"]) == ("overdue", 35)
    [reason] = [r for r in after["score"]["reasons"] if r["indicator"].startswith("LOAN-")]
    assert {k: reason[k] for k in ("indicator", "department", "points", "evidence")} == {
        "indicator": "LOAN-OVERDUE-31D", "department": "kechuangtong", "points": -40,
        "evidence": ["kechuangtong:KCT-API-1"],
    }  # fmt: skip
    assert after["score"]["value"] == before["score"]["value"] - 40
    # A consent without `loans` sees the reason and its points, not the loan.
    cut = fetch(app_client, bank_auth, other["id"]).json()
    [withheld] = [r for r in cut["score"]["reasons"] if r["indicator"] == "LOAN-OVERDUE-31D"]
    assert (withheld["evidence"], withheld["evidence_withheld"]) == ([], 1)
    assert cut["score"]["value"] == after["score"]["value"]
    assert "KCT-API-1" not in json.dumps(cut, ensure_ascii=False)


def denial(answer: Any) -> str:
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/consent-denied")
    return str(problem["reason"])


def test_every_consent_denial_reason_over_http(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    other = register(engine, "bank-b", org_code="CCB")
    other_auth = bearer(app_client, other)
    mine = consent(app_client, bank_auth)
    theirs = consent(app_client, other_auth, grantee="CCB")
    register_enterprises(engine, code(2))
    elsewhere = consent(app_client, bank_auth, credit_code=code(2))
    assert denial(fetch(app_client, bank_auth, None)) == "missing"
    assert denial(fetch(app_client, bank_auth, "cns_nope")) == "not_found"
    assert denial(fetch(app_client, bank_auth, theirs["id"])) == "not_found"
    assert denial(fetch(app_client, bank_auth, elsewhere["id"])) == "wrong_enterprise"
    # A platform registered it for bank-b: bank-a sees it as registrant, not grantee.
    platform = register(engine, "kct", client_type="platform", org_code="kechuangtong")
    witnessed = consent(app_client, bearer(app_client, platform), grantee="CCB")
    with engine.begin() as conn:
        conn.execute(
            update(consents)
            .where(consents.c.id == witnessed["id"])
            .values(registrant_client_id="bank-a")
        )
    assert denial(fetch(app_client, bank_auth, witnessed["id"])) == "wrong_grantee"
    now = datetime.now(UTC)
    expired = consent(app_client, bank_auth)
    later = consent(app_client, bank_auth)
    with engine.begin() as conn:
        conn.execute(
            update(consents)
            .where(consents.c.id == expired["id"])
            .values(valid_until=now - timedelta(seconds=1))
        )
        conn.execute(
            update(consents)
            .where(consents.c.id == later["id"])
            .values(valid_from=now + timedelta(days=1))
        )
    assert denial(fetch(app_client, bank_auth, expired["id"])) == "expired"
    assert denial(fetch(app_client, bank_auth, later["id"])) == "not_yet_valid"
    assert fetch(app_client, bank_auth, mine["id"]).status_code == 200
    with engine.connect() as conn:
        reasons = [
            r.reason
            for r in conn.execute(
                select(audit_entries.c.reason)
                .where(audit_entries.c.decision == "deny")
                .order_by(audit_entries.c.seq)
            )
        ]
    assert reasons == [
        f"consent-denied:{r}"
        for r in (
            "missing", "not_found", "not_found", "wrong_enterprise", "wrong_grantee",
            "expired", "not_yet_valid",
        )
    ]  # fmt: skip


def after_data_change(client: TestClient) -> None:
    """With Redis a process decides from its copy of a consent and data version
    for `consent_copy_s`: a data change shows within that (a revocation at once)."""
    time.sleep(state_of(client.app).reports.copy_s)  # type: ignore[arg-type]


def test_revocation_at_once_and_record_changes_despite_the_caches(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    granted = consent(app_client, bank_auth)
    first = fetch(app_client, bank_auth, granted["id"]).json()
    again = fetch(app_client, bank_auth, granted["id"]).json()
    assert again["data_version"] == first["data_version"]  # served from the cache
    ingest(engine, "penalty", recent_penalty(2, decision_number="成市监罚〔2026〕77号"))
    after_data_change(app_client)
    changed = fetch(app_client, bank_auth, granted["id"]).json()
    assert changed["data_version"] > first["data_version"]
    ids = {i["source_record_id"] for i in changed["sections"]["penalties"]["items"]}
    assert ids == {"P-NEW-1", "P-NEW-2"}
    # A copy of the consent was just made (or none is kept): the revocation still
    # holds for the very next request.
    assert fetch(app_client, bank_auth, granted["id"]).status_code == 200
    revoked = app_client.post(
        f"/v1/consents/{granted['id']}/revoke", json={"reason": "企业撤回"}, headers=bank_auth
    )
    assert revoked.status_code == 200
    assert denial(fetch(app_client, bank_auth, granted["id"])) == "revoked"


def copies(client: TestClient, outcome: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^xyd_consent_copies_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_grants_from_a_copy_are_checked_against_the_change_mark(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    # Copies kept long enough that a loaded machine cannot age them out between
    # two requests; shortened again where the test waits for one to age.
    reports = state_of(app_client.app).reports  # type: ignore[arg-type]
    configured, reports.copy_s = reports.copy_s, 60.0
    granted = consent(app_client, bank_auth)
    before_used, before_changed = copies(app_client, "used"), copies(app_client, "changed")
    assert [fetch(app_client, bank_auth, granted["id"]).status_code for _ in range(4)] == [200] * 4
    # The first read the store; the next three were decided from the copy.
    assert copies(app_client, "used") - before_used == 3
    # Revoked behind the gateway's back (no mark): the copy is used until it ages out...
    with engine.begin() as conn:
        conn.execute(
            update(consents)
            .where(consents.c.id == granted["id"])
            .values(revoked_at=datetime.now(UTC))
        )
    reports.copy_s = configured
    after_data_change(app_client)
    assert denial(fetch(app_client, bank_auth, granted["id"])) == "revoked"
    reports.copy_s = 60.0
    # ...while through the API the mark reaches the copy at once.
    second = consent(app_client, bank_auth)
    assert fetch(app_client, bank_auth, second["id"]).status_code == 200
    assert fetch(app_client, bank_auth, second["id"]).status_code == 200
    revoked = app_client.post(
        f"/v1/consents/{second['id']}/revoke", json={"reason": "企业撤回"}, headers=bank_auth
    )
    assert revoked.status_code == 200
    assert denial(fetch(app_client, bank_auth, second["id"])) == "revoked"
    assert copies(app_client, "changed") - before_changed == 1


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_no_copy_is_trusted_while_redis_is_away(
    id_settings: Settings, bank: ClientKey, engine: Engine
) -> None:
    """The change mark lives in Redis: without it a copy cannot be checked, so the
    consent is read per request, and a revocation made meanwhile holds at once."""
    ingest(engine, "penalty", recent_penalty())
    with redis_server() as private:
        id_settings.redis_url = private.url
        id_settings.rate_limit_redis_down = "local_fallback"
        id_settings.consent_copy_s = 5
        with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
            auth = bearer(client, bank)
            granted = consent(client, auth)
            assert fetch(client, auth, granted["id"]).status_code == 200
            assert fetch(client, auth, granted["id"]).status_code == 200  # from the copy
            stop(private.pid())
            revoked = client.post(
                f"/v1/consents/{granted['id']}/revoke", json={"reason": "企业撤回"}, headers=auth
            )
            assert revoked.status_code == 200, revoked.text
            assert denial(fetch(client, auth, granted["id"])) == "revoked"


def test_post_loan_monitoring_frequency_is_enforced(
    app_client: TestClient, bank_auth: dict[str, str]
) -> None:
    monitoring = consent(
        app_client, bank_auth, purpose="post_loan_monitoring", max_daily_accesses=2
    )
    answers = [fetch(app_client, bank_auth, monitoring["id"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["limit"] == "consent"
    assert '"consent";q=2;w=86400' in answers[2].headers["ratelimit-policy"]


def test_unknown_enterprise_and_bad_codes(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    register_enterprises(engine, code(7))  # a consent names a registered enterprise
    granted = consent(app_client, bank_auth, credit_code=code(7))
    # The registry no longer holds it (a correction): the report says so, whatever the consent.
    with engine.begin() as conn:
        conn.execute(delete(enterprises).where(enterprises.c.credit_code == code(7)))
    answer = app_client.get(
        f"/v1/enterprises/{code(7)}/credit-report",
        headers={**bank_auth, "Consent-Id": granted["id"]},
    )
    assert answer.status_code == 404
    bad = app_client.get(
        "/v1/enterprises/91510104000000001X/credit-report",
        headers={**bank_auth, "Consent-Id": granted["id"]},
    )
    assert bad.status_code == 422
    long_id = fetch(app_client, bank_auth, "c" * 65)
    assert long_id.status_code == 422


def test_a_dpop_proof_is_spent_once_on_the_report_route_granted_or_refused(
    app_client: TestClient, bank: ClientKey, engine: Engine
) -> None:
    """The report route passes the gate itself, after its consent read: the
    proof's jti is spent there, on the granted path and on each refusal."""
    ingest(engine, "penalty", recent_penalty())
    key = ec.generate_private_key(ec.SECP256R1())
    token_proof = dpop_proof(key, "POST", f"{ISSUER}/oauth/token")
    answer = app_client.post("/oauth/token", data=bank.form(), headers={"DPoP": token_proof})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    granted = consent(app_client, bearer(app_client, bank))["id"]

    def call(proof: str, consent_id: str) -> Any:
        auth = {"Authorization": f"DPoP {token}", "DPoP": proof}
        return fetch(app_client, auth, consent_id)

    for consent_id, first_status in ((granted, 200), ("cns_nothing", 403)):
        proof = dpop_proof(key, "GET", ISSUER + URL, token)
        assert call(proof, consent_id).status_code == first_status
        replay = call(proof, consent_id)
        assert replay.status_code == 401, replay.text
        assert "replayed" in replay.json()["detail"]
    # A fresh proof is still good: the replays spent nothing of the token.
    assert call(dpop_proof(key, "GET", ISSUER + URL, token), granted).status_code == 200
