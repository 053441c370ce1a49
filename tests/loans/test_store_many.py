"""store_many answers and writes what store does, one event after the other."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from gateway.loans.events import Authorization, LoanEvent
from gateway.loans.ledger import Stored, store, store_many
from gateway.store.tables import consents, enterprises, loan_events, loans, platform_dead_letters
from testkit.builders import code, register_enterprises
from testkit.clients import register
from tests.loans.test_ledger import RULES, event

FAR = (datetime.now(UTC) + timedelta(days=400)).date()


def authorised(n: int, credit_code: str, bank: str = "BOCD", **fields: Any) -> LoanEvent:
    auth = Authorization(bank, ("basic", "tax"), FAR, "ab" * 32)
    return event(
        n, "consent_granted", n, loan_no=None, credit_code=credit_code, authorization=auth, **fields
    )


def page() -> list[LoanEvent]:
    """Two loans' events out of order, copies inside the page and of an event
    stored before it, a second platform with the same message ids, a person,
    authorisations granted, refused (unknown, closed) and for an unknown bank."""
    one = [
        event(1, "application_submitted", 0, amount_fen=150_000_000),
        event(3, "loan_disbursed", 2, amount_fen=150_000_000),
        event(2, "loan_approved", 1),
        event(5, "repayment_overdue", 4, days_overdue=31),
        event(4, "repayment_received", 3, amount_fen=12_500_000),
    ]
    two = [
        event(20, "loan_approved", 11, loan_no="KCT-2", credit_code=code(2)),
        event(21, "application_submitted", 10, loan_no="KCT-2", credit_code=code(2),
              amount_fen=9_000_000),
        event(22, "loan_disbursed", 10, loan_no="KCT-2", credit_code=code(2)),
    ]  # fmt: skip
    other = [
        event(1, "application_submitted", 0, platform="nongdaitong", loan_no="N-1"),
        event(30, "loan_approved", 1, platform="nongdaitong", loan_no="N-1",
              credit_code=None, borrower_hash="f" * 64),
    ]  # fmt: skip
    granted = [
        authorised(40, code(1)),
        authorised(41, code(9)),  # not in the registry: refused
        authorised(42, code(3)),  # deregistered: refused
        authorised(43, code(2), bank="NOPE-CD"),  # unknown bank: kept, no consent
        authorised(44, code(2)),
    ]
    return [
        *one[:3], event(0, "application_submitted", -5, loan_no="KCT-0"), *two[:2], granted[1],
        *other, one[3], one[0], granted[0], granted[2], *one[3:], two[2], granted[1],
        granted[3], granted[2], two[0], granted[4],
        event(0, "application_submitted", -5, loan_no="KCT-0"),
    ]  # fmt: skip


def without(row: Row[Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k not in names}


def snapshot(conn: Connection, results: list[Stored]) -> dict[str, Any]:
    """Everything the ledger writes, less what differs by the clock and by ids."""
    ids = [r.event_id for r in results if r.event_id is not None]
    return {
        "answers": [(r.outcome, r.reason, r.consent_id is not None) for r in results],
        "ids ascend in page order": ids == sorted(ids),
        "events": [
            without(row, "id", "received_at")
            for row in conn.execute(select(loan_events).order_by(loan_events.c.id))
        ],
        "loans": [
            without(row, "updated_at")
            for row in conn.execute(select(loans).order_by(loans.c.platform, loans.c.loan_no))
        ],
        "dead letters": sorted(
            (r.platform, r.reason, r.raw) for r in conn.execute(select(platform_dead_letters))
        ),
        "consents": sorted(
            (r.credit_code, r.grantee_client_id, r.registrant_client_id, r.channel, str(r.scopes))
            for r in conn.execute(select(consents))
        ),
        "versions": sorted(
            conn.execute(select(enterprises.c.credit_code, enterprises.c.data_version)).all()
        ),
    }


def test_a_page_stored_at_once_is_the_page_stored_event_by_event(engine: Engine) -> None:
    register(engine, "bank-a", org_code="BOCD")
    register_enterprises(engine, code(1), code(2))
    register_enterprises(engine, code(3), status="注销")
    with engine.begin() as conn:
        store(conn, event(0, "application_submitted", -5, loan_no="KCT-0"), rules=RULES)
    events = page()
    with engine.connect() as conn:
        with conn.begin() as trans:
            one_by_one = snapshot(conn, [store(conn, e, rules=RULES) for e in events])
            trans.rollback()
        with conn.begin() as trans:
            at_once = snapshot(conn, store_many(conn, events, rules=RULES))
            trans.rollback()
    assert at_once == one_by_one
    answers = [outcome for outcome, _, _ in at_once["answers"]]
    assert answers.count("rejected") == 4
    assert answers[0] == "accepted" and answers[3] == "duplicate"
    assert sum(consent for _, _, consent in at_once["answers"]) == 2
    assert {row["loan_no"]: row["status"] for row in at_once["loans"]}["KCT-1"] == "overdue"


def test_an_empty_page_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        assert store_many(conn, [], rules=RULES) == []
        assert conn.execute(select(loans)).first() is None


def test_more_than_a_statement_holds(engine: Engine) -> None:
    """Over the rows one statement takes: still one answer per event, each stored once."""
    events = [
        event(n, "application_submitted", n % 7, loan_no=f"L-{n % 40}", due_date=date(2027, 1, 1))
        for n in range(1, 1201)
    ]
    with engine.begin() as conn:
        first = store_many(conn, events + events[:10], rules=RULES)
    assert [s.outcome for s in first] == ["accepted"] * 1200 + ["duplicate"] * 10
    with engine.begin() as conn:
        again = store_many(conn, events, rules=RULES)
        assert {s.outcome for s in again} == {"duplicate"}
        assert len(conn.execute(select(loans)).all()) == 40
