"""The loan ledger's SQL: events stored once, loans rewritten from their events,
dead letters. Everything runs on the caller's Connection, in its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.tables import enterprises, loan_events, loans, platform_dead_letters


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


def bump_data_version(conn: Connection, credit_code: str, now: datetime) -> None:
    conn.execute(
        update(enterprises)
        .where(enterprises.c.credit_code == credit_code)
        .values(data_version=enterprises.c.data_version + 1, updated_at=now)
    )


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
