"""Reading the loan ledger (written by gateway/loans/ledger.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import Connection, and_, or_, select

from gateway.errors import InvalidValue
from gateway.loans.schemas import LoanStatus
from gateway.store.tables import loan_events, loans
from gateway.timeutil import aware

_PUBLIC = (
    loans.c.platform, loans.c.loan_no, loans.c.credit_code, loans.c.bank_code, loans.c.status,
    loans.c.amount_fen, loans.c.outstanding_fen, loans.c.days_overdue,
    loans.c.core_enterprise_code, loans.c.first_event_at, loans.c.last_event_at,
)  # fmt: skip
STATUSES: tuple[LoanStatus, ...] = get_args(LoanStatus)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware(value).isoformat()
    return value


def _row(row: Any) -> dict[str, Any]:
    item = {str(k): _iso(v) for k, v in row._mapping.items()}
    # A natural person's loan names no one: only that the borrower is a person.
    item["borrower"] = "enterprise" if item["credit_code"] else "natural_person"
    return item


def for_enterprise(conn: Connection, credit_code: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(*_PUBLIC)
        .where(loans.c.credit_code == credit_code)
        .order_by(loans.c.first_event_at, loans.c.platform, loans.c.loan_no)
    )
    return [_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """What the score needs of one event of a loan: enough to fold it again."""

    platform: str
    loan_no: str
    event_type: str
    occurred_at: datetime
    amount_fen: int | None
    days_overdue: int | None


_HISTORY = (
    select(
        loan_events.c.platform, loan_events.c.loan_no, loan_events.c.event_type,
        loan_events.c.occurred_at, loan_events.c.amount_fen, loan_events.c.days_overdue,
    )
    .where(loan_events.c.loan_no.is_not(None), loan_events.c.event_type != "consent_granted")
    .order_by(loan_events.c.occurred_at, loan_events.c.id)
)  # fmt: skip


def history(conn: Connection, credit_code: str) -> list[LedgerEvent]:
    """Every event of the enterprise's loans, in the order `gateway.loans.ledger.refold`
    folds them: the score folds them again as of each day it looks at. Every
    event names its borrower (`gateway.loans.events.LoanEvent`), so one indexed read."""
    rows = conn.execute(_HISTORY.where(loan_events.c.credit_code == credit_code))
    return [
        LedgerEvent(
            platform=row.platform,
            loan_no=row.loan_no,
            event_type=row.event_type,
            occurred_at=aware(row.occurred_at),
            amount_fen=row.amount_fen,
            days_overdue=row.days_overdue,
        )
        for row in rows
    ]


def page(
    conn: Connection,
    *,
    credit_code: str | None,
    platform: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    query = select(*_PUBLIC)
    if credit_code:
        query = query.where(loans.c.credit_code == credit_code)
    if platform:
        query = query.where(loans.c.platform == platform)
    if status:
        if status not in STATUSES:
            raise InvalidValue(f"status: one of {', '.join(STATUSES)}", field="status")
        query = query.where(loans.c.status == status)
    if cursor:
        after_platform, sep, after_loan = cursor.partition("|")
        if not sep:
            raise InvalidValue("cursor: not a cursor this endpoint gave out", field="cursor")
        query = query.where(
            or_(
                loans.c.platform > after_platform,
                and_(loans.c.platform == after_platform, loans.c.loan_no > after_loan),
            )
        )
    rows = list(conn.execute(query.order_by(loans.c.platform, loans.c.loan_no).limit(limit + 1)))
    more = len(rows) > limit
    items = [_row(r) for r in rows[:limit]]
    last = items[-1] if more else None
    return {
        "items": items,
        "next_cursor": f"{last['platform']}|{last['loan_no']}" if last else None,
    }
