"""An enterprise's access log: who looked at its data, when, and under what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from gateway.access_log import repository
from gateway.errors import InvalidValue
from gateway.identifiers import UnknownEnterprise

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
    if not repository.enterprise_known(conn, credit_code):
        raise UnknownEnterprise(f"no enterprise with credit code {credit_code}")
    rows = repository.access_entries(conn, credit_code, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "credit_code": credit_code,
        "items": rows,
        "next_cursor": str(rows[-1]["seq"]) if more else None,
    }
