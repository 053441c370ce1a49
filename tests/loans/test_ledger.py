"""The ledger: events stored once, loans folded in occurrence order, platform consents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from gateway.bounds import InvalidAmount, fen_from_wan, fen_from_yuan
from gateway.loans.events import BEIJING, Authorization, LoanEvent, digest
from gateway.loans.ledger import fold, store
from gateway.positions import read_position, save_position
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.store.tables import (
    consent_events,
    consents,
    enterprises,
    loan_events,
    loans,
    platform_dead_letters,
)
from policies.consent import ConsentRules
from testkit.builders import code, ndjson, register_enterprises, registration
from testkit.clients import register

RULES = ConsentRules.load(__import__("pathlib").Path("config/consent.yaml"))
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=BEIJING)


def event(n: int, kind: str, minutes: int = 0, **fields: Any) -> LoanEvent:
    values: dict[str, Any] = {
        "platform": "kechuangtong",
        "message_id": f"m-{n}",
        "event_type": kind,
        "occurred_at": T0 + timedelta(minutes=minutes),
        "raw_sha256": digest(f"m-{n}".encode()),
        "credit_code": code(1),
        "bank_code": "BOCD",
        "loan_no": "KCT-1",
    }
    values.update(fields)
    return LoanEvent(**values)


def run(engine: Engine, *events: LoanEvent) -> list[str]:
    outcomes = []
    for e in events:
        with engine.begin() as conn:
            outcomes.append(store(conn, e, rules=RULES).outcome)
    return outcomes


def loan(engine: Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(loans)).one()


def test_an_event_is_stored_once_and_its_loan_folded(engine: Engine) -> None:
    history = [
        event(1, "application_submitted", 0, amount_fen=150_000_000),
        event(2, "loan_approved", 1),
        event(3, "loan_disbursed", 2, amount_fen=150_000_000),
        event(4, "repayment_received", 3, amount_fen=12_500_000),
        event(5, "repayment_overdue", 4, days_overdue=31),
    ]
    assert run(engine, *history) == ["accepted"] * 5
    assert run(engine, history[2]) == ["duplicate"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(loan_events)).scalar() == 5
    state = loan(engine)
    assert (state.status, state.outstanding_fen, state.days_overdue) == ("overdue", 137_500_000, 31)
    run(engine, event(6, "loan_settled", 9))
    assert (loan(engine).status, loan(engine).outstanding_fen) == ("settled", 0)


def test_out_of_order_arrival_folds_to_the_same_loan(engine: Engine) -> None:
    run(
        engine,
        event(3, "loan_disbursed", 2, amount_fen=1000),
        event(1, "application_submitted", 0),
        event(4, "loan_defaulted", 5),
        event(2, "loan_approved", 1),
    )
    assert (loan(engine).status, loan(engine).outstanding_fen) == ("defaulted", 1000)


def test_fold_rules() -> None:
    class E:
        def __init__(self, kind: str, amount: int | None = None, days: int | None = None):
            self.event_type, self.amount_fen, self.days_overdue = kind, amount, days

    assert fold([E("loan_rejected")])["status"] == "rejected"
    paid_up = fold([E("loan_disbursed", 100), E("repayment_overdue", days=5),
                    E("repayment_received", 40)])  # fmt: skip
    assert paid_up == {"status": "disbursed", "amount_fen": 100, "outstanding_fen": 60,
                       "days_overdue": 0}  # fmt: skip
    assert fold([E("loan_disbursed", 10), E("repayment_received", 25)])["outstanding_fen"] == 0


def test_authorisation_becomes_a_consent_witnessed_by_the_platform(engine: Engine) -> None:
    register(engine, "bank-a", org_code="BOCD")
    register_enterprises(engine, code(1))
    far = (datetime.now(UTC) + timedelta(days=400)).date()
    granted = event(
        7, "consent_granted", loan_no=None,
        authorization=Authorization("BOCD", ("basic", "tax", "nonsense"), far, "ab" * 32),
    )  # fmt: skip
    with engine.begin() as conn:
        stored = store(conn, granted, rules=RULES)
    assert stored.consent_id is not None
    with engine.connect() as conn:
        row = conn.execute(select(consents)).one()
    assert (row.grantee_client_id, row.registrant_client_id) == ("bank-a", "platform:kechuangtong")
    with engine.connect() as conn:
        history = conn.execute(select(consent_events.c.event, consent_events.c.actor_client_id))
    # The consent's history names the platform as who wrote it.
    assert list(history) == [("created", "platform:kechuangtong")]
    assert row.scopes == ["basic", "tax"]  # unknown sections dropped
    assert row.evidence["channel"] == "kechuangtong"
    until = row.valid_until if row.valid_until.tzinfo else row.valid_until.replace(tzinfo=UTC)
    # Longer than a loan application may last: cut to its 90 days.
    assert until <= datetime.now(UTC) + timedelta(days=90, minutes=1)


def test_unknown_bank_keeps_the_event_but_registers_no_consent(engine: Engine) -> None:
    register_enterprises(engine, code(1))
    lonely = event(
        8, "consent_granted", loan_no=None,
        authorization=Authorization("NOPE-CD", ("basic",), date(2027, 1, 1)),
    )  # fmt: skip
    with engine.begin() as conn:
        stored = store(conn, lonely, rules=RULES)
    assert stored.outcome == "accepted"
    assert stored.consent_id is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(loan_events)).scalar() == 1


@pytest.mark.parametrize(
    ("status", "why"),
    [(None, "no enterprise with credit code"), ("注销", "deregistered"), ("吊销", "revoked")],
)
def test_an_authorisation_for_an_enterprise_that_cannot_consent_is_dead_lettered(
    engine: Engine, status: str | None, why: str
) -> None:
    register(engine, "bank-a", org_code="BOCD")
    if status is not None:
        register_enterprises(engine, code(1), status=status)
    granted = event(
        7, "consent_granted", loan_no=None,
        authorization=Authorization("BOCD", ("basic",), date(2099, 1, 1), "ab" * 32),
    )  # fmt: skip
    for _ in range(2):  # delivered again: still refused, one dead letter
        with engine.begin() as conn:
            stored = store(conn, granted, rules=RULES)
        assert (stored.outcome, stored.consent_id) == ("rejected", None)
        assert why in (stored.reason or "")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(consents)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(loan_events)).scalar() == 0
        [letter] = conn.execute(select(platform_dead_letters)).all()
    assert letter.platform == "kechuangtong" and why in letter.reason
    assert granted.raw_sha256 in letter.raw.decode()


def test_a_loan_event_moves_the_enterprises_data_version(engine: Engine) -> None:
    Ingestor(engine, "registration", b"k", 10).run(
        read_ndjson(ndjson(registration(1)).splitlines()), "t"
    )
    with engine.connect() as conn:
        before = conn.execute(select(enterprises.c.data_version)).scalar_one()
    run(engine, event(9, "application_submitted"))
    with engine.connect() as conn:
        assert conn.execute(select(enterprises.c.data_version)).scalar_one() == before + 1


def test_a_person_is_a_hash_never_a_code(engine: Engine) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        event(10, "loan_approved", credit_code=None)
    with pytest.raises(ValueError, match="offset"):
        event(11, "loan_approved", occurred_at=datetime(2026, 1, 1))
    run(engine, event(12, "loan_approved", credit_code=None, borrower_hash="f" * 64))
    assert loan(engine).borrower_hash == "f" * 64


def test_sync_positions_commit_with_the_events(engine: Engine) -> None:
    with engine.begin() as conn:
        save_position(conn, "tianfu-rongtong", "cursor", "abc")
        save_position(conn, "tianfu-rongtong", "cursor", "def")

    def crash() -> None:
        with engine.begin() as conn:
            store(conn, event(13, "loan_approved"), rules=RULES)
            save_position(conn, "tianfu-rongtong", "cursor", "ghi")
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash()
    with engine.connect() as conn:
        assert read_position(conn, "tianfu-rongtong", "cursor") == "def"
        assert conn.execute(select(func.count()).select_from(loan_events)).scalar() == 0


@pytest.mark.parametrize(("text", "fen"), [("1500000.00", 150_000_000), ("0.01", 1), ("7", 700)])
def test_yuan_to_fen(text: str, fen: int) -> None:
    assert fen_from_yuan(text) == fen


@pytest.mark.parametrize(
    ("text", "fen"), [("150.00", 150_000_000), ("0.000001", 1), ("1.5", 1_500_000)]
)
def test_wan_to_fen(text: str, fen: int) -> None:
    assert fen_from_wan(text) == fen


@pytest.mark.parametrize("text", ["1.001", "-1", "NaN", "Infinity", "1e3x", "", "1" * 40])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(InvalidAmount):
        fen_from_yuan(text)
    with pytest.raises(InvalidAmount):
        fen_from_wan(text + "0000001" if text == "1.001" else text)
