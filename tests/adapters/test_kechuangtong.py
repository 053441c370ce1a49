"""科创通 Kechuangtong over real HTTP: the simulator signs and posts, the gateway stores.

Behaviour is asserted in the database (loan_events, loans, consents,
platform_dead_letters, outbox), on SQLite and PostgreSQL where it could differ.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.base import PlatformContext, PlatformServices
from adapters.http import RetryPolicy
from adapters.kechuangtong.adapter import (
    PATH,
    KechuangtongAdapter,
    NotificationFailed,
    UnknownNotification,
)
from adapters.kechuangtong.config import KechuangtongConfig
from adapters.kechuangtong.wire import parse
from gateway.identifiers import make_credit_code
from gateway.outbox import enqueue
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import consents, loan_events, loans, outbox, platform_dead_letters
from policies.consent import ConsentRules
from testkit.builders import codes_in, count, register_enterprises
from testkit.clients import register
from testkit.kechuangtong import CODE, CONFIG, T0, Gateway, kct, repayment, running
from testkit.live import serve
from testkit.platforms import build_adapter
from testkit.services import free_port
from xyd_demo.simulators.kechuangtong import (
    CallbackReceiver,
    Message,
    Sender,
    authorization,
    sign,
    stream,
    write_demo_credentials,
)

OK = {"code": 0, "message": "ok"}
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def gateway(settings: Settings, tmp_path: Path, engine: Engine) -> Iterator[Gateway]:
    register_enterprises(engine, CODE)
    with running(settings, tmp_path) as gw:
        yield gw


def loan(engine: Engine, loan_no: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(loans).where(loans.c.loan_no == loan_no)).one()
    return dict(row._mapping)


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- accepted messages ---------------------------------------------------------------------


def test_every_event_type_is_stored_and_folded_into_its_loan(
    gateway: Gateway, engine: Engine
) -> None:
    send = gateway.sender.send
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (kct("APPLICATION_SUBMITTED", 1, amount="1500000.00"), {"status": "applied"}),
        (kct("LOAN_APPROVED", 2, amount="1500000.00"), {"status": "approved"}),
        (
            kct("LOAN_DISBURSED", 3, amount="1500000.00"),
            {"status": "disbursed", "amount_fen": 150_000_000, "outstanding_fen": 150_000_000},
        ),
        (
            kct("REPAYMENT_RECEIVED", 4, repayment=repayment("125000.00", 0)),
            {"status": "disbursed", "outstanding_fen": 137_500_000},
        ),
        (
            kct("REPAYMENT_OVERDUE", 5, repayment=repayment("125000.00", 12, "2027-01-20")),
            {"status": "overdue", "days_overdue": 12, "outstanding_fen": 137_500_000},
        ),
        (
            kct("LOAN_SETTLED", 6),
            {"status": "settled", "outstanding_fen": 0, "days_overdue": 0},
        ),
    ]
    for body, expected in steps:
        answer = send(body)
        assert (answer.status_code, answer.json()) == (200, OK)
        state = loan(engine, "KCT2026110400123")
        assert {k: state[k] for k in expected} == expected, body["eventType"]
    auth = authorization("BOCD", date.today() + timedelta(days=30))
    for body in (
        kct("AUTHORIZATION_SIGNED", 7, "KCT-B", authorization=auth),
        kct("LOAN_REJECTED", 8, "KCT-B"),
        kct("LOAN_DISBURSED", 9, "KCT-C", amount="800000.50"),
        kct("LOAN_DEFAULTED", 10, "KCT-C"),
    ):
        assert send(body).status_code == 200
    assert loan(engine, "KCT-B")["status"] == "rejected"
    assert {k: loan(engine, "KCT-C")[k] for k in ("status", "outstanding_fen", "bank_code")} == {
        "status": "defaulted",
        "outstanding_fen": 80_000_050,
        "bank_code": "BOCD",
    }
    with engine.connect() as conn:
        rows = {r.message_id: r for r in conn.execute(select(loan_events))}
    assert len(rows) == 10
    assert {r.event_type for r in rows.values()} == {
        "application_submitted",
        "consent_granted",
        "loan_approved",
        "loan_rejected",
        "loan_disbursed",
        "repayment_received",
        "repayment_overdue",
        "loan_defaulted",
        "loan_settled",
    }
    overdue = rows["kct-20261120-000005"]
    assert (overdue.amount_fen, overdue.days_overdue, overdue.due_date) == (
        12_500_000,
        12,
        date(2027, 1, 20),
    )
    assert overdue.credit_code == CODE
    assert as_utc(overdue.occurred_at) == (T0 + timedelta(hours=5)).astimezone(UTC)
    assert overdue.details == {
        "enterprise_name": "成都某某科技有限公司",
        "product": "科创贷",
        "term_months": 12,
    }
    assert rows["kct-20261120-000007"].bank_code == "BOCD"
    assert count(engine, platform_dead_letters) == 0


def test_authorization_signed_registers_a_consent_witnessed_by_the_platform(
    gateway: Gateway, engine: Engine
) -> None:
    register(engine, "bank-bocd", org_code="BOCD")
    until = date.today() + timedelta(days=60)
    auth = authorization("BOCD", until, ["basic", "tax", "judicial"])
    answer = gateway.sender.send(kct("AUTHORIZATION_SIGNED", 1, authorization=auth))
    assert (answer.status_code, answer.json()) == (200, OK)
    with engine.connect() as conn:
        consent = conn.execute(select(consents)).one()
    assert consent.credit_code == CODE
    assert consent.registrant_client_id == "platform:kechuangtong"
    assert (consent.grantee_client_id, consent.grantee_org_code) == ("bank-bocd", "BOCD")
    assert consent.purpose == "loan_application"
    assert consent.scopes == ["basic", "judicial", "tax"]
    assert consent.evidence["document_sha256"] == auth["documentSha256"]
    assert consent.valid_until.date() == until
    assert count(engine, loan_events, loan_events.c.event_type == "consent_granted") == 1


def test_an_authorisation_for_an_unknown_or_deregistered_enterprise_is_refused(
    gateway: Gateway, engine: Engine
) -> None:
    register(engine, "bank-bocd", org_code="BOCD")
    closed = make_credit_code("9", "1", "510100", "MA61R8XX")
    register_enterprises(engine, closed, status="注销")
    auth = authorization("BOCD", date.today() + timedelta(days=60), ["basic"])
    for n, subject in ((1, make_credit_code("9", "1", "510100", "MA61R8XY")), (2, closed)):
        body = kct("AUTHORIZATION_SIGNED", n, authorization=auth)
        body["enterprise"]["creditCode"] = subject
        answer = gateway.sender.send(body)
        # The platform's own refusal: 400, code 40000, the reason named.
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == 40000
        assert subject in answer.json()["message"]
    assert count(engine, consents) == 0
    assert count(engine, loan_events) == 0
    assert count(engine, platform_dead_letters) == 2


def test_a_redelivery_is_answered_ok_and_stored_once(gateway: Gateway, engine: Engine) -> None:
    body = kct("LOAN_DISBURSED", 1, amount="1500000.00")
    first = gateway.sender.send(body)
    again = gateway.sender.send(body)
    # Same eventId with other content is still the same event: the first copy stands.
    changed = gateway.sender.send({**body, "loan": {**body["loan"], "amount": "1.00"}})
    assert [r.status_code for r in (first, again, changed)] == [200, 200, 200]
    assert again.json() == changed.json() == OK
    assert count(engine, loan_events) == 1
    assert loan(engine, "KCT2026110400123")["outstanding_fen"] == 150_000_000


def test_a_simulated_stream_lands_with_duplicates_once_and_malformed_dead_lettered(
    gateway: Gateway, engine: Engine
) -> None:
    messages = stream(150, seed=11)
    register_enterprises(engine, *codes_in(*(m.raw for m in messages)))
    kinds = [m.kind for m in messages]
    assert {"valid", "duplicate", "malformed"} <= set(kinds)
    statuses = gateway.sender.send_all(messages)
    assert statuses == {
        200: kinds.count("valid") + kinds.count("duplicate"),
        400: kinds.count("malformed"),
    }
    assert count(engine, loan_events) == kinds.count("valid")
    assert count(engine, platform_dead_letters) == kinds.count("malformed")
    valid = [orjson.loads(m.raw) for m in messages if m.kind == "valid"]
    assert count(engine, loans) == len({b["loan"]["applicationNo"] for b in valid})


def test_parse_reads_local_times_as_beijing_and_money_exactly() -> None:
    body = kct("REPAYMENT_RECEIVED", 1, repayment=repayment("0.10", 0), amount="1500000.00")
    body["occurredAt"] = "2026-11-20T10:15:00"  # no offset: Beijing time
    body["futureField"] = {"ignored": True}
    raw = orjson.dumps(body)
    parsed = parse(raw, body["eventId"])
    assert parsed.occurred_at == datetime(2026, 11, 20, 2, 15, tzinfo=UTC)
    assert (parsed.event_type, parsed.amount_fen, parsed.loan_no) == (
        "repayment_received",
        10,
        "KCT2026110400123",
    )
    assert parsed.raw_sha256 == hashlib.sha256(raw).hexdigest()


# --- authentication ------------------------------------------------------------------------


@SQLITE_ONLY
def test_unauthenticated_requests_are_refused_and_never_kept(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    with running(settings, tmp_path) as gw:
        sender = gw.sender
        body = Message.of(kct("LOAN_APPROVED", 1, amount="10.00"))
        now = int(time.time())
        other = sign(b"not-the-secret", str(now), body.raw)
        forged = sender.headers(body.raw, body.header_event_id)
        forged["X-KCT-Timestamp"] = str(now + 5)  # signature made for another time
        no_stamp = sender.headers(body.raw, body.header_event_id)
        del no_stamp["X-KCT-Timestamp"]
        answers = [
            sender.send(body, signature=other),
            sender.send(body, signature=""),
            sender.send(body, signature=other[3:]),  # no v1= prefix
            sender.send(body, timestamp=now - 400),
            sender.send(body, timestamp=now + 400),
            sender.post_raw(body.raw, forged),
            sender.post_raw(body.raw, no_stamp),
        ]
        for answer in answers:
            assert answer.status_code == 401
            assert answer.json()["code"] == 40100
        assert count(engine, loan_events) == 0
        assert count(engine, platform_dead_letters) == 0
        # Inside the window (and the same message, now well signed) is fine.
        assert sender.send(body, timestamp=now - 290).status_code == 200
        assert count(engine, loan_events) == 1


@SQLITE_ONLY
def test_during_a_rotation_either_secret_is_accepted(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    old, new = b"old-" + secrets.token_hex(8).encode(), b"new-" + secrets.token_hex(8).encode()
    with running(settings, tmp_path, secret_lines=[old, new]) as gw:
        base = str(gw.sender.client.base_url)
        with (
            Sender(base, old) as by_old,
            Sender(base, new) as by_new,
            Sender(base, [b"x", new]) as both,
        ):
            assert by_old.send(kct("LOAN_APPROVED", 1)).status_code == 200
            assert by_new.send(kct("LOAN_APPROVED", 2)).status_code == 200
            assert both.send(kct("LOAN_APPROVED", 3)).status_code == 200
            gw.secret_file.write_bytes(new + b"\n")  # the rotation ends, no restart
            assert by_old.send(kct("LOAN_APPROVED", 4)).status_code == 401
            assert by_new.send(kct("LOAN_APPROVED", 5)).status_code == 200
    assert count(engine, loan_events) == 4


# --- invalid messages ----------------------------------------------------------------------


def _bad_check_digit() -> dict[str, Any]:
    body = kct("LOAN_APPROVED", 2)
    last = "0" if CODE[-1] != "0" else "1"
    body["enterprise"]["creditCode"] = CODE[:-1] + last
    return body


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


INVALID: list[tuple[str, bytes, str | None, str]] = [
    ("unknown type", orjson.dumps(kct("LOAN_RESTRUCTURED", 1)), "kct-20261120-000001", "eventType"),
    (
        "check digit",
        orjson.dumps(_bad_check_digit()),
        "kct-20261120-000002",
        "enterprise.creditCode",
    ),
    (
        "3 decimals",
        orjson.dumps(kct("LOAN_DISBURSED", 3, amount="1500000.005")),
        "kct-20261120-000003",
        "loan.amount",
    ),
    (
        "number amount",
        orjson.dumps(kct("LOAN_DISBURSED", 4, amount=1500000)),
        "kct-20261120-000004",
        "loan.amount",
    ),
    ("no eventId", orjson.dumps(_without(kct("LOAN_APPROVED", 5), "eventId")), "kct-5", "eventId"),
    ("id mismatch", orjson.dumps(kct("LOAN_APPROVED", 6)), "kct-20261120-999999", "X-KCT-Event-Id"),
    ("no id header", orjson.dumps(kct("LOAN_APPROVED", 7)), None, "X-KCT-Event-Id"),
    ("not JSON", b"eventId=kct-8&eventType=LOAN_APPROVED", "kct-8", "body"),
    ("JSON array", b'[{"eventId": "kct-9"}]', "kct-9", "body"),
    (
        "no applicationNo",
        orjson.dumps(_without(kct("LOAN_APPROVED", 10), "loan", "applicationNo")),
        "kct-20261120-000010",
        "loan.applicationNo",
    ),
    (
        "no repayment",
        orjson.dumps(kct("REPAYMENT_RECEIVED", 11)),
        "kct-20261120-000011",
        "repayment",
    ),
    (
        "overdue without days",
        orjson.dumps(
            kct("REPAYMENT_OVERDUE", 12, repayment={"dueDate": "2026-12-20", "amount": "1.00"})
        ),
        "kct-20261120-000012",
        "repayment.daysOverdue",
    ),
    (
        "bad due date",
        orjson.dumps(kct("REPAYMENT_RECEIVED", 13, repayment=repayment("1.00", 0, "20/12/2026"))),
        "kct-20261120-000013",
        "repayment.dueDate",
    ),
    (
        "no authorization",
        orjson.dumps(kct("AUTHORIZATION_SIGNED", 14)),
        "kct-20261120-000014",
        "authorization",
    ),
    (
        "bad occurredAt",
        orjson.dumps({**kct("LOAN_APPROVED", 15), "occurredAt": "yesterday"}),
        "kct-20261120-000015",
        "occurredAt",
    ),
]


def test_invalid_messages_are_refused_naming_the_field_and_dead_lettered(
    gateway: Gateway, engine: Engine
) -> None:
    for case, raw, header_id, field in INVALID:
        answer = gateway.sender.post_raw(raw, gateway.sender.headers(raw, header_id))
        assert answer.status_code == 400, case
        assert answer.json()["code"] == 40000, case
        assert answer.json()["message"].startswith(f"{field}:"), (case, answer.json())
    assert count(engine, loan_events) == 0
    with engine.connect() as conn:
        dead = list(
            conn.execute(select(platform_dead_letters).order_by(platform_dead_letters.c.id))
        )
    assert [bytes(d.raw) for d in dead] == [raw for _, raw, _, _ in INVALID]
    assert {d.platform for d in dead} == {"kechuangtong"}
    assert dead[1].reason.startswith("enterprise.creditCode: check character")


@SQLITE_ONLY
def test_a_body_over_64_kib_is_refused_and_one_at_the_limit_accepted(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    def padded(n: int, size: int) -> bytes:
        body = kct("LOAN_APPROVED", n)
        bare = len(orjson.dumps({**body, "padding": ""}))
        return orjson.dumps({**body, "padding": "x" * (size - bare)})

    with running(settings, tmp_path) as gw:
        sender = gw.sender
        over, at_limit = padded(1, 64 * 1024 + 1), padded(2, 64 * 1024)
        assert (len(over), len(at_limit)) == (65537, 65536)
        declared = sender.post_raw(over, sender.headers(over, "kct-20261120-000001"))
        chunked = sender.client.post(
            PATH,
            content=iter([over[:40_000], over[40_000:]]),  # no Content-Length: streamed
            headers=sender.headers(over, "kct-20261120-000001"),
        )
        for answer in (declared, chunked):
            assert answer.status_code == 400
            assert answer.json()["code"] == 40000
            assert answer.json()["message"].startswith("body:")
        assert count(engine, loan_events) == 0
        assert count(engine, platform_dead_letters) == 0
        ok = sender.post_raw(at_limit, sender.headers(at_limit, "kct-20261120-000002"))
        assert ok.status_code == 200
        assert count(engine, loan_events) == 1


# --- unavailable -------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("source", ["file", "env"])
def test_without_its_secret_the_endpoint_answers_retry_later_until_it_appears(
    settings: Settings,
    tmp_path: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    secret = secrets.token_hex(16).encode()
    variable = f"KCT_TEST_SECRET_{secrets.token_hex(4).upper()}"
    block = {"secret_file": None, "secret_env": variable} if source == "env" else {}
    with running(settings, tmp_path, secret_lines=[], block=block, sign_with=[secret]) as gw:
        body = kct("LOAN_APPROVED", 1)
        answer = gw.sender.send(body)
        assert (answer.status_code, answer.json()) == (
            503,
            {"code": 50300, "message": "retry later"},
        )
        assert count(engine, loan_events) + count(engine, platform_dead_letters) == 0
        if source == "env":
            monkeypatch.setenv(variable, secret.decode())
        else:
            gw.secret_file.parent.mkdir(parents=True, exist_ok=True)
            gw.secret_file.write_bytes(secret)
        assert gw.sender.send(body).status_code == 200
    assert count(engine, loan_events) == 1


def test_a_store_that_cannot_take_the_event_answers_retry_later(
    gateway: Gateway, engine: Engine
) -> None:
    state = state_of(gateway.app)
    working = state.engine
    dead = create_async_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    body = kct("LOAN_DISBURSED", 1, amount="100.00")
    state.platform_services.bind(dead, state.identity.keys)
    try:
        answer = gateway.sender.send(body)
    finally:
        state.platform_services.bind(working, state.identity.keys)
        dead.sync_engine.dispose()
    assert (answer.status_code, answer.json()) == (503, {"code": 50300, "message": "retry later"})
    assert count(engine, loan_events) == 0
    assert gateway.sender.send(body).status_code == 200  # Kechuangtong's retry lands
    assert count(engine, loan_events) == 1


# --- notifications -------------------------------------------------------------------------


ALERT = {
    "alertId": "alert-000017",
    "creditCode": CODE,
    "applicationNo": "KCT2026110400123",
    "rule": "overdue_over_30_days",
    "severity": "high",
    "raisedAt": "2026-11-27T09:00:00+08:00",
}


def adapter_for(tmp_path: Path, callback_url: str | None, *lines: bytes) -> KechuangtongAdapter:
    secret_file = tmp_path / f"notify-secret-{secrets.token_hex(4)}"
    secret_file.write_bytes(b"\n".join(lines))
    ctx = PlatformContext(
        services=PlatformServices(),
        consent_rules=ConsentRules.load(CONFIG / "consent.yaml"),
        pii_key=b"test",
        state_dir=tmp_path,
    )
    block = {"enabled": True, "secret_file": str(secret_file), "callback_url": callback_url}
    adapter = build(ctx, block)
    adapter.policy = RetryPolicy(attempts=3, base_s=0.01)
    return adapter


async def test_notify_posts_a_signed_risk_alert(tmp_path: Path) -> None:
    old, new = b"old-secret", b"new-secret"
    receiver = CallbackReceiver([new])  # the platform already moved to the new secret
    with serve(receiver.app) as base:
        adapter = adapter_for(tmp_path, base + receiver.path, old, new)
        await adapter.notify("risk_alert", {**ALERT, "internal_note": "not for the platform"})
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.verified
    assert got.body == ALERT
    assert got.event_id == ALERT["alertId"]


async def test_notify_raises_so_the_outbox_retries(tmp_path: Path) -> None:
    receiver = CallbackReceiver([b"s3cret"], fail_with=500)
    with serve(receiver.app) as base:
        adapter = adapter_for(tmp_path, base + receiver.path, b"s3cret")
        with pytest.raises(NotificationFailed, match="500"):
            await adapter.notify("risk_alert", ALERT)
        assert len(receiver.received) == 3  # bounded retries, then give up
        receiver.fail_with = None
        wrong = adapter_for(tmp_path, base + receiver.path, b"wrong")
        with pytest.raises(NotificationFailed, match="401"):
            await wrong.notify("risk_alert", ALERT)
        with pytest.raises(UnknownNotification):
            await adapter.notify("loan_report", ALERT)
        with pytest.raises(ValueError, match="alertId"):
            await adapter.notify("risk_alert", {k: v for k, v in ALERT.items() if k != "alertId"})
    assert [(r.verified, r.status) for r in receiver.received] == [(True, 500)] * 3 + [(False, 401)]
    unreachable = adapter_for(tmp_path, f"http://127.0.0.1:{free_port()}/cb", b"s3cret")
    with pytest.raises(NotificationFailed, match="ConnectError"):
        await unreachable.notify("risk_alert", ALERT)
    with pytest.raises(NotificationFailed, match="callback_url"):
        await adapter_for(tmp_path, None, b"s3cret").notify("risk_alert", ALERT)


async def test_notify_reads_the_callback_url_from_its_file_at_each_delivery(
    tmp_path: Path,
) -> None:
    """The demo picks its receiver's port at start and writes it where the adapter
    reads it; until the file exists, a delivery fails (and the outbox retries)."""
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(b"s3cret\n")
    block = {"enabled": True, "secret_file": "secret", "callback_file": "kct/callback_url"}
    ctx = PlatformContext(
        services=PlatformServices(),
        consent_rules=ConsentRules.load(CONFIG / "consent.yaml"),
        pii_key=b"test",
        state_dir=tmp_path,
    )
    adapter = build(ctx, block)
    adapter.policy = RetryPolicy(attempts=1, base_s=0.01)
    assert KechuangtongConfig.model_validate(block).notifies()
    assert not KechuangtongConfig(callback_file=None).notifies()
    with pytest.raises(NotificationFailed, match="callback_url"):
        await adapter.notify("risk_alert", ALERT)
    receiver = CallbackReceiver([b"s3cret"])
    with serve(receiver.app) as base:
        (tmp_path / "kct").mkdir()
        (tmp_path / "kct" / "callback_url").write_text(base + receiver.path + "\n")
        await adapter.notify("risk_alert", ALERT)
        async with httpx.AsyncClient() as client:
            listed = (await client.get(base + receiver.path)).json()["received"]
    assert receiver.verified() == [ALERT]
    assert [(r["alertId"], r["verified"]) for r in listed] == [(ALERT["alertId"], True)]
    (tmp_path / "kct" / "callback_url").write_text("ftp://127.0.0.1/x")
    with pytest.raises(NotificationFailed, match="http"):
        await adapter.notify("risk_alert", ALERT)
    with pytest.raises(ValueError, match="at most one"):
        build(ctx, {**block, "callback_url": "http://127.0.0.1:9/x"})


def test_the_outbox_delivers_a_risk_alert_exactly_once(
    settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    secret = secrets.token_hex(16).encode()
    receiver = CallbackReceiver([secret])
    with serve(receiver.app) as callback_base:
        block = {"callback_url": callback_base + receiver.path}
        with running(settings, tmp_path, secret_lines=[secret], block=block, background=True):
            with engine.begin() as conn:
                row_id = enqueue(conn, "kechuangtong", "risk_alert", ALERT)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    row = conn.execute(select(outbox).where(outbox.c.id == row_id)).one()
                if row.delivered_at is not None:
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # a few more outbox rounds: nothing may be sent twice
    assert row.delivered_at is not None
    assert row.attempts == 1
    assert receiver.verified() == [ALERT]
    assert len(receiver.received) == 1


# --- wiring ----------------------------------------------------------------------------------


def test_the_config_block_is_checked_at_build(tmp_path: Path) -> None:
    def build_with(**block: Any) -> KechuangtongAdapter:
        ctx = PlatformContext(
            services=PlatformServices(),
            consent_rules=ConsentRules.load(CONFIG / "consent.yaml"),
            pii_key=b"test",
            state_dir=tmp_path,
        )
        return build(ctx, {"enabled": True, **block})

    for bad in (
        {"secret_file": "s", "secret_env": "KCT_SECRET"},
        {},
        {"secret_file": "s", "callback": "http://x"},
        {"secret_file": "s", "callback_url": "ftp://x"},
        {"secret_file": 5},
    ):
        with pytest.raises(ValueError, match="kechuangtong"):
            build_with(**bad)
    # A relative path is resolved against the state directory; missing is not an error.
    write_demo_credentials(tmp_path / "demo")
    adapter = build_with(secret_file="demo/secret")
    assert adapter.secrets.current() == (
        (tmp_path / "demo" / "secret").read_text().strip().encode(),
    )
    assert build_with(secret_file="nowhere/secret").secrets.current() == ()


@SQLITE_ONLY
def test_the_endpoint_and_its_answers_are_documented(settings: Settings, tmp_path: Path) -> None:
    with running(settings, tmp_path) as gw:
        answer = httpx.get(str(gw.sender.client.base_url) + "/openapi.json")
    operation = answer.json()["paths"][PATH]["post"]
    assert operation["tags"] == ["platforms"]
    assert set(operation["responses"]) == {"200", "400", "401", "503"}
    for documented in operation["responses"].values():
        schema = documented["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Answer"}
    assert "requestBody" in operation


def build(ctx: PlatformContext, block: dict[str, Any]) -> KechuangtongAdapter:
    return build_adapter("kechuangtong", block, ctx, KechuangtongAdapter)


def test_a_misspelled_setting_stops_start_up() -> None:
    from adapters.registry import check_block

    block = {"enabled": True, "secret_file": "s", "calback_url": "https://kct.example/cb"}
    with pytest.raises(ValueError, match="kechuangtong: unknown setting 'calback_url'"):
        check_block("kechuangtong", block)
