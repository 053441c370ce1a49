"""An enterprise's access log: who looked at its data, when, and under what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from gateway.errors import InvalidValue
from gateway.identifiers import UnknownEnterprise
from gateway.store.tables import audit_entries, clients, enterprises

MAX_PAGE = 200


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are opaque to clients; here they are the last sequence number shown."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidValue("cursor: not a cursor this endpoint gave out", field="cursor")
    return int(cursor)


def page(conn: Connection, credit_code: str, *, before: int | None, limit: int) -> dict[str, Any]:
    """Newest first; `next_cursor` is null on the last page."""
    known = conn.execute(
        select(enterprises.c.credit_code).where(enterprises.c.credit_code == credit_code)
    ).first()
    if known is None:
        raise UnknownEnterprise(f"no enterprise with credit code {credit_code}")
    query = (
        select(
            audit_entries.c.seq,
            audit_entries.c.at,
            audit_entries.c.client_id,
            clients.c.display_name.label("client_name"),
            clients.c.client_type,
            clients.c.org_code,
            audit_entries.c.route,
            audit_entries.c.decision,
            audit_entries.c.reason,
            audit_entries.c.consent_id,
            audit_entries.c.purpose,
            audit_entries.c.request_id,
        )
        .select_from(
            audit_entries.outerjoin(clients, clients.c.client_id == audit_entries.c.client_id)
        )
        .where(audit_entries.c.credit_code == credit_code)
        .order_by(audit_entries.c.seq.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(audit_entries.c.seq < before)
    rows = [{str(k): v for k, v in row._mapping.items()} for row in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "credit_code": credit_code,
        "items": rows,
        "next_cursor": str(rows[-1]["seq"]) if more else None,
    }
