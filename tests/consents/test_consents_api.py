"""The consents API: register, read, list, revoke; tenants cannot see each other's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.loans.events import Authorization
from gateway.loans.ledger import store
from testkit.builders import code, register_enterprises
from testkit.clients import ClientKey, register
from tests.identity.test_token_flow import get_token
from tests.loans.test_ledger import RULES, event


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "credit_code": code(1),
        "grantee": "BOCD",
        "purpose": "loan_application",
        "scopes": ["basic", "penalties", "tax"],
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "evidence": {"document_sha256": "ab" * 32, "signer": "法定代表人", "channel": "direct"},
    }
    base.update(overrides)
    return base


def auth(client: TestClient, key: ClientKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(client, key)}"}


def test_register_read_list_revoke(app_client: TestClient, bank: ClientKey) -> None:
    headers = auth(app_client, bank)
    created = app_client.post("/v1/consents", json=body(), headers=headers)
    assert created.status_code == 201, created.text
    consent = created.json()
    assert consent["status"] == "active"
    assert consent["grantee"] == "bank-a"
    assert consent["grantee_bank_code"] == "BOCD"
    assert consent["registrant"] == "bank-a"
    assert [h["event"] for h in consent["history"]] == ["created"]
    got = app_client.get(f"/v1/consents/{consent['id']}", headers=headers)
    assert got.json()["id"] == consent["id"]
    listed = app_client.get(f"/v1/consents?credit_code={code(1)}", headers=headers).json()
    assert [c["id"] for c in listed["items"]] == [consent["id"]]
    revoked = app_client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "企业撤回授权"}, headers=headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["history"][-1]["reason"] == "企业撤回授权"
    again = app_client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "again"}, headers=headers
    )
    assert again.status_code == 409


def test_other_tenants_see_404_never_403(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    consent = app_client.post("/v1/consents", json=body(), headers=auth(app_client, bank)).json()
    other = register(engine, "bank-b", org_code="CCB-CD")
    headers = auth(app_client, other)
    assert app_client.get(f"/v1/consents/{consent['id']}", headers=headers).status_code == 404
    assert app_client.get("/v1/consents/cns_nothing", headers=headers).status_code == 404
    revoke = app_client.post(
        f"/v1/consents/{consent['id']}/revoke", json={"reason": "x"}, headers=headers
    )
    assert revoke.status_code == 404
    assert app_client.get("/v1/consents", headers=headers).json()["items"] == []


def test_platform_registers_as_witness_and_grantee_sees_it(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    platform = register(engine, "kechuangtong", client_type="platform")
    created = app_client.post(
        "/v1/consents", json=body(grantee="bank-a"), headers=auth(app_client, platform)
    )
    assert created.status_code == 201
    assert created.json()["registrant"] == "kechuangtong"
    seen = app_client.get(f"/v1/consents/{created.json()['id']}", headers=auth(app_client, bank))
    assert seen.status_code == 200


def test_the_platform_that_witnessed_an_authorisation_revokes_it(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    """An authorisation signed on 科创通 is registered by its adapter with the platform
    as witness (`platform:kechuangtong`). The platform's client (org code
    `kechuangtong`) is that witness: it sees the consent and revokes it when the
    enterprise withdraws it there. Another platform's client does not see it."""
    until = (datetime.now(UTC) + timedelta(days=30)).date()
    signed = event(
        1, "consent_granted", loan_no=None,
        authorization=Authorization("BOCD", ("basic",), until, "ab" * 32),
    )  # fmt: skip
    with engine.begin() as conn:
        consent_id = store(conn, signed, rules=RULES).consent_id
    assert consent_id is not None
    kct = auth(app_client, register(engine, "kct", client_type="platform", org_code="kechuangtong"))
    ndt = auth(app_client, register(engine, "ndt", client_type="platform", org_code="nongdaitong"))
    url = f"/v1/consents/{consent_id}"
    withdrawn = {"reason": "企业在平台撤回授权"}
    assert app_client.get(url, headers=ndt).status_code == 404
    assert app_client.post(f"{url}/revoke", json=withdrawn, headers=ndt).status_code == 404
    assert app_client.get("/v1/consents", headers=ndt).json()["items"] == []
    assert app_client.get(url, headers=kct).status_code == 200
    assert [c["id"] for c in app_client.get("/v1/consents", headers=kct).json()["items"]] == [
        consent_id
    ]
    revoked = app_client.post(f"{url}/revoke", json=withdrawn, headers=kct)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["history"][-1]["by"] == "kct"
    assert app_client.get(url, headers=auth(app_client, bank)).json()["status"] == "revoked"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"valid_until": (datetime.now(UTC) + timedelta(days=120)).isoformat()}, "90 days"),
        ({"valid_until": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, "after valid_from"),
        ({"scopes": ["basic", "gossip"]}, "unknown section"),
        ({"grantee": "NOBANK"}, "no bank"),
        ({"credit_code": "9144030071526726XA"}, "check character"),
        ({"purpose": "curiosity"}, "purpose"),
        ({"max_daily_accesses": 4}, "post_loan_monitoring"),
        ({"evidence": {"document_sha256": "x", "signer": "a", "channel": "direct"}}, "document"),
        ({"scopes": False}, "scopes"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_consents_are_422(
    app_client: TestClient, bank: ClientKey, overrides: dict, reason: str
) -> None:
    answer = app_client.post("/v1/consents", json=body(**overrides), headers=auth(app_client, bank))
    assert answer.status_code == 422, answer.text
    assert reason in answer.text


def test_a_bank_cannot_register_for_another_bank(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    register(engine, "bank-b", org_code="CCB-CD")
    answer = app_client.post(
        "/v1/consents", json=body(grantee="CCB-CD"), headers=auth(app_client, bank)
    )
    assert answer.status_code == 422
    assert "for itself" in answer.json()["detail"]


def test_idempotency_key_on_registration(app_client: TestClient, bank: ClientKey) -> None:
    headers = {**auth(app_client, bank), "Idempotency-Key": "consent-001"}
    payload = body()
    first = app_client.post("/v1/consents", json=payload, headers=headers)
    second = app_client.post("/v1/consents", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    listed = app_client.get("/v1/consents", headers=headers).json()["items"]
    assert len(listed) == 1
    changed = app_client.post("/v1/consents", json=body(scopes=["basic"]), headers=headers)
    assert changed.status_code == 422


def test_changed_since_shows_revocations(app_client: TestClient, bank: ClientKey) -> None:
    headers = auth(app_client, bank)
    consent = app_client.post("/v1/consents", json=body(), headers=headers).json()
    mark = datetime.now(UTC).isoformat()
    app_client.post(f"/v1/consents/{consent['id']}/revoke", json={"reason": "r"}, headers=headers)
    changed = app_client.get("/v1/consents", params={"changed_since": mark}, headers=headers)
    items = changed.json()["items"]
    assert [(c["id"], c["status"]) for c in items] == [(consent["id"], "revoked")]


def test_change_feed_pages_without_loss_and_names_each_change(
    app_client: TestClient, bank: ClientKey
) -> None:
    headers = auth(app_client, bank)
    created = [
        app_client.post("/v1/consents", json=body(credit_code=code(1)), headers=headers).json()
        for _ in range(5)
    ]
    revoked = created[1]["id"]
    app_client.post(f"/v1/consents/{revoked}/revoke", json={"reason": "r"}, headers=headers)
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/v1/consents", params=params, headers=headers).json()
        seen += [(c["id"], c["change"]) for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(i for i, _ in seen) == sorted(c["id"] for c in created)
    assert seen[-1] == (revoked, "consent.revoked")  # the latest change comes last
    assert {change for i, change in seen if i != revoked} == {"consent.created"}


@pytest.mark.parametrize(
    "params",
    [
        {"changed_since": "0.49"},  # lax parsing would take it as a Unix time
        {"changed_since": "1732700000"},
        {"changed_since": "2026-11-27T10:00:00"},  # no offset: which day is it?
        {"changed_since": "2026-11-27"},
        {"credit_code": ""},
        {"credit_code": "9151010MA6CAB7F0"},  # too short
        {"credit_code": "91510100MA6CAB7F0X"},  # shaped right, wrong check character
    ],
)
def test_filters_are_taken_only_as_written(
    app_client: TestClient, bank: ClientKey, params: dict[str, str]
) -> None:
    answer = app_client.get("/v1/consents", params=params, headers=auth(app_client, bank))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_changed_since_takes_z_and_offsets(app_client: TestClient, bank: ClientKey) -> None:
    headers = auth(app_client, bank)
    app_client.post("/v1/consents", json=body(), headers=headers)
    for mark in ("2000-01-01T00:00:00Z", "2000-01-01T08:00:00.5+08:00"):
        answer = app_client.get("/v1/consents", params={"changed_since": mark}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["items"]) == 1


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WyJ4IiwiYSJd", "%%%"])
def test_a_forged_cursor_is_422(app_client: TestClient, bank: ClientKey, cursor: str) -> None:
    answer = app_client.get(
        "/v1/consents", params={"cursor": cursor}, headers=auth(app_client, bank)
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("/invalid-value")


def test_beijing_offsets_are_kept_exactly(app_client: TestClient, bank: ClientKey) -> None:
    until = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    beijing = until.astimezone(timezone(timedelta(hours=8))).isoformat()
    created = app_client.post(
        "/v1/consents", json=body(valid_until=beijing), headers=auth(app_client, bank)
    ).json()
    assert datetime.fromisoformat(created["valid_until"]) == until


def test_a_consent_names_an_enterprise_that_exists_and_still_can_grant_it(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    register_enterprises(engine, code(3), status="注销")
    register_enterprises(engine, code(4), status="吊销")
    headers = auth(app_client, bank)
    unknown = app_client.post("/v1/consents", json=body(credit_code=code(2)), headers=headers)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["type"].endswith("/unknown-enterprise")
    assert code(2) in unknown.json()["detail"]
    for closed, word in ((code(3), "注销"), (code(4), "吊销")):
        answer = app_client.post("/v1/consents", json=body(credit_code=closed), headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/enterprise-closed")
        assert word in answer.json()["detail"] and closed in answer.json()["detail"]
    listed = app_client.get("/v1/consents", headers=headers).json()["items"]
    assert listed == []
