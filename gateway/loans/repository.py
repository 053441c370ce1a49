"""The loan ledger's SQL: events stored once, loans rewritten from their events,
dead letters, and the read side (an enterprise's loans and events, a page of
loans). Everything runs on the caller's Connection, in its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.tables import loan_events, loans, platform_dead_letters


def insert_event_once(conn: Connection, values: Mapping[str, Any]) -> int | None:
    """Insert unless (platform, message_id) exists; the new id, or None for a duplicate."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(loan_events)
    elif dialect == "sqlite":
        stmt = sqlite.insert(loan_events)
    else:  # pragma: no cover - PostgreSQL and SQLite are the supported stores
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = stmt.values(**values).on_conflict_do_nothing(index_elements=["platform", "message_id"])
    row = conn.execute(stmt.returning(loan_events.c.id)).first()
    return None if row is None else int(row[0])


def event_known(conn: Connection, platform: str, message_id: str) -> bool:
    found = conn.execute(
        select(loan_events.c.id).where(
            loan_events.c.platform == platform, loan_events.c.message_id == message_id
        )
    ).first()
    return found is not None


def loan_events_of(conn: Connection, platform: str, loan_no: str) -> list[Row[Any]]:
    """A loan's events in the order they fold: occurrence, then arrival."""
    return list(
        conn.execute(
            select(loan_events)
            .where(loan_events.c.platform == platform, loan_events.c.loan_no == loan_no)
            .order_by(loan_events.c.occurred_at, loan_events.c.id)
        )
    )


def replace_loan(conn: Connection, row: Mapping[str, Any]) -> None:
    # Delete and insert in one transaction: portable, and the row is small.
    conn.execute(
        delete(loans).where(loans.c.platform == row["platform"], loans.c.loan_no == row["loan_no"])
    )
    conn.execute(insert(loans).values(**row))


def last_event_at(conn: Connection, platform: str) -> datetime | None:
    """When the platform's last stored event (by arrival) happened."""
    last: datetime | None = conn.execute(
        select(loan_events.c.occurred_at)
        .where(loan_events.c.platform == platform)
        .order_by(loan_events.c.id.desc())
        .limit(1)
    ).scalar()
    return last


def dead_letter_kept(conn: Connection, platform: str, reason: str, raw: bytes) -> bool:
    known = conn.execute(
        select(platform_dead_letters.c.id).where(
            platform_dead_letters.c.platform == platform,
            platform_dead_letters.c.reason == reason,
            platform_dead_letters.c.raw == raw,
        )
    ).first()
    return known is not None


def add_dead_letter(conn: Connection, platform: str, reason: str, raw: bytes) -> None:
    conn.execute(
        insert(platform_dead_letters).values(
            platform=platform, reason=reason, raw=raw, received_at=datetime.now(UTC)
        )
    )


# What a reader of the ledger is shown of a loan.
_PUBLIC = (
    loans.c.platform, loans.c.loan_no, loans.c.credit_code, loans.c.bank_code, loans.c.status,
    loans.c.amount_fen, loans.c.outstanding_fen, loans.c.days_overdue,
    loans.c.core_enterprise_code, loans.c.first_event_at, loans.c.last_event_at,
)  # fmt: skip


def loans_of(conn: Connection, credit_code: str) -> list[Row[Any]]:
    """The enterprise's loans, the first lent first."""
    return list(
        conn.execute(
            select(*_PUBLIC)
            .where(loans.c.credit_code == credit_code)
            .order_by(loans.c.first_event_at, loans.c.platform, loans.c.loan_no)
        )
    )


_HISTORY = (
    select(
        loan_events.c.platform, loan_events.c.loan_no, loan_events.c.event_type,
        loan_events.c.occurred_at, loan_events.c.amount_fen, loan_events.c.days_overdue,
    )
    .where(loan_events.c.loan_no.is_not(None), loan_events.c.event_type != "consent_granted")
    .order_by(loan_events.c.occurred_at, loan_events.c.id)
)  # fmt: skip


def events_of(conn: Connection, credit_code: str) -> list[Row[Any]]:
    """Every event of the enterprise's loans in the order they fold. Every event
    names its borrower (`gateway.loans.events.LoanEvent`), so one indexed read."""
    return list(conn.execute(_HISTORY.where(loan_events.c.credit_code == credit_code)))


def loans_page(
    conn: Connection,
    *,
    credit_code: str | None,
    platform: str | None,
    status: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` loans by (platform, loan number), those after `after` only."""
    query = select(*_PUBLIC)
    if credit_code:
        query = query.where(loans.c.credit_code == credit_code)
    if platform:
        query = query.where(loans.c.platform == platform)
    if status:
        query = query.where(loans.c.status == status)
    if after is not None:
        after_platform, after_loan = after
        query = query.where(
            or_(
                loans.c.platform > after_platform,
                and_(loans.c.platform == after_platform, loans.c.loan_no > after_loan),
            )
        )
    return list(conn.execute(query.order_by(loans.c.platform, loans.c.loan_no).limit(limit)))
