"""Disputes' SQL: the record a dispute is on, the dispute rows, and the enterprise's
`data_version` bumped when one opens or resolves. On the caller's Connection,
in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from gateway.store.tables import record_disputes, records


def record_of(conn: Connection, category: str, record_id: int) -> Row[int, str | None, str] | None:
    """The record's id, credit code and source department, if it is of `category`."""
    return conn.execute(
        select(records.c.id, records.c.credit_code, records.c.source_department).where(
            records.c.id == record_id, records.c.category == category
        )
    ).first()


def record_owner(conn: Connection, record_id: int) -> str:
    """The department that delivered the record."""
    owner: str = conn.execute(
        select(records.c.source_department).where(records.c.id == record_id)
    ).scalar_one()
    return owner


def open_dispute_on(conn: Connection, record_id: int) -> str | None:
    """The id of the record's open dispute, if it has one."""
    found = conn.execute(
        select(record_disputes.c.id).where(
            record_disputes.c.record_id == record_id, record_disputes.c.status == "open"
        )
    ).first()
    return None if found is None else str(found.id)


def add(
    conn: Connection,
    *,
    dispute_id: str,
    record_id: int,
    credit_code: str | None,
    opened_by: str,
    opened_at: datetime,
    reason: str,
) -> None:
    conn.execute(
        insert(record_disputes).values(
            id=dispute_id,
            record_id=record_id,
            credit_code=credit_code,
            opened_by=opened_by,
            opened_at=opened_at,
            reason=reason,
            status="open",
        )
    )


def close(
    conn: Connection, dispute_id: str, *, outcome: str, by: str, at: datetime, note: str
) -> None:
    """Resolve the dispute if it is still open; a resolved one is left as it is."""
    conn.execute(
        update(record_disputes)
        .where(record_disputes.c.id == dispute_id, record_disputes.c.status == "open")
        .values(status=outcome, resolved_by=by, resolved_at=at, resolution_note=note)
    )


def dispute(conn: Connection, dispute_id: str) -> Row[Any] | None:
    return conn.execute(select(record_disputes).where(record_disputes.c.id == dispute_id)).first()


def disputes_of(conn: Connection, credit_code: str) -> list[Row[Any]]:
    """The enterprise's disputes, the first opened first."""
    return list(
        conn.execute(
            select(record_disputes)
            .where(record_disputes.c.credit_code == credit_code)
            .order_by(record_disputes.c.opened_at)
        )
    )
