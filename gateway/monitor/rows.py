"""The monitor's bulk SQL: a batch of events recorded, rows read by a list of keys.

psycopg parses the text of every statement it sends, and caches only short
ones: a 500-row VALUES list or a 500-placeholder IN list is re-parsed on every
batch (measured: 40% of a worker's time). On PostgreSQL a list of keys or a
batch of rows travels as one JSON parameter of a short statement instead
(psycopg's array dumper checks and escapes each element in Python: measured at
20%). SQLite's own parsing is cheap, and it has neither arrays nor the need.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, Text, bindparam, cast, func, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB

from gateway.store.tables import monitor_events
from policies.risk.base import MonitorEvent

_RECORD_PG = text(
    """
    INSERT INTO monitor_events (id, kind, occurred_at, credit_code, attrs, applied_at)
    SELECT e.id, e.kind, e.occurred_at, e.credit_code, e.attrs, :stamp
    FROM jsonb_to_recordset(CAST(:events AS jsonb))
         AS e(id text, kind text, occurred_at timestamptz, credit_code text, attrs jsonb)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
)


def among(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    """`column IN values`, the values as one JSON parameter on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        keys = cast(bindparam(None, _dumps(list(values)), type_=Text), JSONB)
        return column.in_(select(func.jsonb_array_elements_text(keys)))
    return column.in_(values)


def record(conn: Connection, events: Sequence[MonitorEvent], stamp: datetime) -> set[str]:
    """Insert the events not applied before, `applied_at` = `stamp`; the ids inserted.
    A second copy of an event in `events` is left out (the first one counts)."""
    first: dict[str, MonitorEvent] = {}
    for event in events:
        first.setdefault(event.id, event)
    unique = list(first.values())
    if conn.dialect.name == "postgresql":
        document = _dumps(
            [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "occurred_at": e.occurred_at,
                    "credit_code": e.credit_code,
                    "attrs": e.attrs if type(e.attrs) is dict else dict(e.attrs),
                }
                for e in unique
            ]
        )
        return set(conn.execute(_RECORD_PG, {"stamp": stamp, "events": document}).scalars())
    rows = [
        {
            "id": e.id,
            "kind": e.kind,
            "occurred_at": e.occurred_at.astimezone(UTC),
            "credit_code": e.credit_code,
            "attrs": dict(e.attrs),
            "applied_at": stamp,
        }
        for e in unique
    ]
    stmt = sqlite.insert(monitor_events).on_conflict_do_nothing(index_elements=["id"])
    return set(conn.execute(stmt.returning(monitor_events.c.id), rows).scalars())


def _dumps(rows: Any) -> str:
    # orjson: several times faster than json.dumps, and it writes datetimes as
    # ISO 8601 itself. Non-string keys become strings, as with json.dumps.
    return orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode()


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) in one statement."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    columns = ", ".join(rows[0])
    conn.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} "  # noqa: S608 (our names)
            f"FROM jsonb_populate_recordset(NULL::{table.name}, CAST(:rows AS jsonb))"
        ),
        {"rows": _dumps(rows)},
    )


def update_rows(conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE the rows of `table` whose `key` column equals each dict's `key`, setting the
    dict's other columns (every dict has the same keys)."""
    if not rows:
        return
    names = [name for name in rows[0] if name != key]
    if conn.dialect.name != "postgresql":
        stmt = (
            update(table)
            .where(table.c[key] == bindparam(f"b_{key}"))
            .values({name: bindparam(f"b_{name}", type_=table.c[name].type) for name in names})
        )
        conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return
    assignments = ", ".join(f"{name} = u.{name}" for name in names)
    conn.execute(
        text(
            f"UPDATE {table.name} SET {assignments} "  # noqa: S608 (our names)
            f"FROM jsonb_populate_recordset(NULL::{table.name}, CAST(:rows AS jsonb)) AS u "
            f"WHERE {table.name}.{key} = u.{key}"
        ),
        {"rows": _dumps(rows)},
    )
