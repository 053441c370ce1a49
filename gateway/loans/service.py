"""Reading the loan ledger (written by gateway/loans/ledger.py): its rows as answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import Connection, Row

from gateway.errors import InvalidValue
from gateway.loans import repository
from gateway.loans.schemas import LoanStatus
from gateway.timeutil import aware

STATUSES: tuple[LoanStatus, ...] = get_args(LoanStatus)


def _iso(value: object) -> object:
    if isinstance(value, datetime):
        return aware(value).isoformat()
    return value


def _row(row: Row[Any]) -> dict[str, Any]:
    item = {str(k): _iso(v) for k, v in row._mapping.items()}
    # A natural person's loan names no one: only that the borrower is a person.
    item["borrower"] = "enterprise" if item["credit_code"] else "natural_person"
    return item


def for_enterprise(conn: Connection, credit_code: str) -> list[dict[str, Any]]:
    return [_row(r) for r in repository.loans_of(conn, credit_code)]


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """What the score needs of one event of a loan: enough to fold it again."""

    platform: str
    loan_no: str
    event_type: str
    occurred_at: datetime
    amount_fen: int | None
    days_overdue: int | None


def history(conn: Connection, credit_code: str) -> list[LedgerEvent]:
    """Every event of the enterprise's loans, in the order `gateway.loans.ledger` folds
    them: the score folds them again as of each day it looks at."""
    return [
        LedgerEvent(
            platform=row.platform,
            loan_no=row.loan_no,
            event_type=row.event_type,
            occurred_at=aware(row.occurred_at),
            amount_fen=row.amount_fen,
            days_overdue=row.days_overdue,
        )
        for row in repository.events_of(conn, credit_code)
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
    if status and status not in STATUSES:
        raise InvalidValue(f"status: one of {', '.join(STATUSES)}", field="status")
    after = None
    if cursor:
        after_platform, sep, after_loan = cursor.partition("|")
        if not sep:
            raise InvalidValue("cursor: not a cursor this endpoint gave out", field="cursor")
        after = (after_platform, after_loan)
    rows = repository.loans_page(
        conn,
        credit_code=credit_code,
        platform=platform,
        status=status,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = [_row(r) for r in rows[:limit]]
    last = items[-1] if more else None
    return {
        "items": items,
        "next_cursor": f"{last['platform']}|{last['loan_no']}" if last else None,
    }
