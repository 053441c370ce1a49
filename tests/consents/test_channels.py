"""A consent's channel (`portal`, `platform:<key>`, `direct`): stored, answered, and
refused where XYD_CONSENT_CHANNELS does not accept it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.consents.principal import PortalPrincipal
from gateway.consents.schemas import ConsentTerms
from gateway.consents.service import ChannelNotAccepted, create_from_portal
from gateway.loans.events import Authorization, LoanEvent
from gateway.loans.ledger import store
from gateway.pii import keyed_hash
from gateway.settings import Settings
from gateway.store.tables import (
    audit_entries,
    consent_events,
    consents,
    loan_events,
    platform_dead_letters,
)
from policies.consent import ConsentRules
from testkit.builders import code, count, register_enterprises
from testkit.clients import ClientKey, register
from testkit.kechuangtong import CODE, kct, running
from tests.consents.test_consents_api import auth, body
from tests.loans.test_ledger import RULES, event
from xyd_demo.simulators.kechuangtong import authorization

PII_KEY = b"test-pii-key"
SUBJECT = "idp|Zhang-San-0042"
PAGE = "<html>工商银行 请求 贷款申请 …</html>".encode()
NO_DIRECT = ConsentRules.load(Path("config/consent.yaml"), ["portal", "platform"])
NO_PLATFORM = ConsentRules.load(Path("config/consent.yaml"), ["portal", "direct"])


def signed(n: int) -> LoanEvent:
    until = (datetime.now(UTC) + timedelta(days=30)).date()
    return event(
        n, "consent_granted", loan_no=None,
        authorization=Authorization("BOCD", ("basic",), until, "ab" * 32),
    )  # fmt: skip


def terms(**overrides: object) -> ConsentTerms:
    values = {
        "credit_code": code(1),
        "grantee": "bank-a",
        "purpose": "loan_application",
        "scopes": ["basic", "tax"],
        "valid_until": datetime.now(UTC) + timedelta(days=30),
        **overrides,
    }
    return ConsentTerms.model_validate(values)


def test_settings_take_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().consent_channels == ["portal", "platform", "direct"]
    monkeypatch.setenv("XYD_CONSENT_CHANNELS", " portal, platform ")
    assert Settings().consent_channels == ["portal", "platform"]
    for wrong in ("portal,email", ","):
        monkeypatch.setenv("XYD_CONSENT_CHANNELS", wrong)
        with pytest.raises(ValidationError, match="consent_channels"):
            Settings()


def test_direct_and_platform_channels_are_stored_and_answered(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    headers = auth(app_client, bank)
    created = app_client.post("/v1/consents", json=body(), headers=headers)
    assert created.status_code == 201, created.text
    direct = created.json()["id"]
    assert created.json()["channel"] == "direct"
    with engine.begin() as conn:
        platform = store(conn, signed(1), rules=RULES).consent_id
    assert platform is not None
    expected = {direct: "direct", platform: "platform:kechuangtong"}
    registrants = {direct: "bank-a", platform: "platform:kechuangtong"}
    for consent_id, channel in expected.items():
        got = app_client.get(f"/v1/consents/{consent_id}", headers=headers).json()
        assert (got["channel"], got["registrant"]) == (channel, registrants[consent_id])
    feed = app_client.get("/v1/consents", headers=headers).json()["items"]
    assert {c["id"]: c["channel"] for c in feed} == expected
    with engine.connect() as conn:
        stored = {row.id: row.channel for row in conn.execute(select(consents))}
        reasons = conn.execute(
            select(audit_entries.c.reason).where(audit_entries.c.consent_id == direct)
        ).scalars()
        assert list(reasons) == ["consent active via direct"]
    assert stored == expected


@pytest.fixture
def strict_client(id_settings: Settings) -> Iterator[TestClient]:
    """The production profile: portal and platform only."""
    id_settings.consent_channels = ["portal", "platform"]
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield client


def test_a_direct_consent_where_direct_is_not_accepted_is_403_and_audited(
    strict_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    headers = {**auth(strict_client, bank), "Idempotency-Key": "k-1"}
    refused = strict_client.post("/v1/consents", json=body(), headers=headers)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/channel-not-accepted")
    assert "direct" in problem["detail"] and "portal, platform" in problem["detail"]
    assert (problem["channel"], problem["accepted"]) == ("direct", ["portal", "platform"])
    # Retried with the same key: refused again, not replayed from a half-made answer.
    assert strict_client.post("/v1/consents", json=body(), headers=headers).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(consents)).all() == []
        entries = audit_entries.c
        denials = conn.execute(
            select(entries.client_id, entries.decision, entries.reason).where(
                entries.route == "POST /v1/consents", entries.credit_code == code(1)
            )
        ).all()
    assert [tuple(d) for d in denials] == [("bank-a", "deny", "channel-not-accepted:direct")] * 2


def test_a_platform_authorisation_through_a_refused_channel_is_dead_lettered_once(
    engine: Engine,
) -> None:
    register(engine, "bank-a", org_code="BOCD")
    register_enterprises(engine, code(1))
    for _ in range(2):  # delivered again: refused again, one dead letter
        with engine.begin() as conn:
            stored = store(conn, signed(2), rules=NO_PLATFORM)
        assert (stored.outcome, stored.consent_id) == ("rejected", None)
        assert "channel platform:kechuangtong" in (stored.reason or "")
    with engine.connect() as conn:
        assert conn.execute(select(consents)).all() == []
        assert conn.execute(select(loan_events)).all() == []
        [letter] = conn.execute(select(platform_dead_letters)).all()
    assert "channel platform:kechuangtong" in letter.reason
    assert "accepts consents through portal, direct only" in letter.reason


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_platform_hears_the_refusal_in_its_own_protocol(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    register(engine, "bank-bocd", org_code="BOCD")
    register_enterprises(engine, CODE)
    settings.consent_channels = ["portal", "direct"]
    with running(settings, tmp_path) as gateway:
        auth_ = authorization("BOCD", date.today() + timedelta(days=60), ["basic"])
        answer = gateway.sender.send(kct("AUTHORIZATION_SIGNED", 1, authorization=auth_))
        # 科创通's refusal, as for an enterprise that cannot consent: 400, code 40000.
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == 40000
        assert "platform:kechuangtong" in answer.json()["message"]
        loan = gateway.sender.send(kct("LOAN_DISBURSED", 2, amount="1000.00"))
        assert loan.status_code == 200  # only authorisations go through the channel
    assert count(engine, consents) == 0
    assert count(engine, platform_dead_letters) == 1


def test_a_portal_consent_keeps_the_hashed_subject_and_the_page_hash(
    app_client: TestClient, engine: Engine, bank: ClientKey
) -> None:
    person = PortalPrincipal.of(PII_KEY, SUBJECT, code(1), "legal_representative")
    page_sha256 = hashlib.sha256(PAGE).hexdigest()
    approved_at = datetime.now(UTC)
    with engine.begin() as conn:
        made = create_from_portal(
            conn, person, terms(grantee="BOCD"),
            approved_at=approved_at, page_sha256=page_sha256, rules=RULES,
        )  # fmt: skip
    assert (made["channel"], made["registrant"], made["grantee"]) == ("portal", "portal", "bank-a")
    assert made["evidence"] == {
        "approver": keyed_hash(PII_KEY, "oidc-sub", SUBJECT, exact=True),
        "approver_role": "legal_representative",
        "approved_at": approved_at.isoformat(),
        "page_sha256": page_sha256,
    }
    # Case matters in a subject: another person's is another hash.
    assert PortalPrincipal.of(PII_KEY, SUBJECT.lower(), code(1), "agent").subject_hash != (
        person.subject_hash
    )
    with engine.connect() as conn:
        row = conn.execute(select(consents)).one()
        history = conn.execute(select(consent_events)).all()
    assert row.channel == "portal"
    stored = repr([tuple(row), [tuple(e) for e in history]])
    assert SUBJECT.lower() not in stored.lower()
    # The bank sees it as any other consent it holds, channel and all.
    got = app_client.get(f"/v1/consents/{made['id']}", headers=auth(app_client, bank))
    assert got.status_code == 200
    assert got.json()["channel"] == "portal"
    assert got.json()["evidence"]["page_sha256"] == page_sha256


def test_a_portal_consent_is_refused_through_a_refused_channel_or_with_a_bad_hash(
    engine: Engine, bank: ClientKey
) -> None:
    register_enterprises(engine, code(1), code(2))
    person = PortalPrincipal.of(PII_KEY, SUBJECT, code(1), "agent")
    page = hashlib.sha256(PAGE).hexdigest()
    now = datetime.now(UTC)
    no_portal = ConsentRules.load(Path("config/consent.yaml"), ["platform", "direct"])
    with engine.begin() as conn, pytest.raises(ChannelNotAccepted, match="channel portal"):
        create_from_portal(
            conn, person, terms(),
            approved_at=now, page_sha256=page, rules=no_portal,
        )  # fmt: skip
    with engine.begin() as conn, pytest.raises(ValidationError, match="page_sha256"):
        create_from_portal(
            conn, person, terms(),
            approved_at=now, page_sha256="not a digest", rules=RULES,
        )  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(select(consents)).all() == []
