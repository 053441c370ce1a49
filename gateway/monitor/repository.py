"""All SQL of the monitor: a batch of events recorded, rows read by a list of
keys, alerts written in bulk, the batches' turn, the relay's reads past its
watermarks, and the History rules query. Works on a sync Connection inside
the caller's transaction; it never commits.

psycopg parses the text of every statement it sends, and caches only short
ones: a 500-row VALUES list or a 500-placeholder IN list is re-parsed on every
batch (measured: 40% of a worker's time). On PostgreSQL a list of keys or a
batch of rows travels as one JSON parameter of a short statement instead
(psycopg's array dumper checks and escapes each element in Python: measured at
20%). SQLite's own parsing is cheap, and it has neither arrays nor the need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from gateway.store.tables import (
    alerts,
    audit_entries,
    clients,
    enterprises,
    loan_events,
    monitor_events,
    platform_sync_state,
    record_versions,
    records,
)
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


def among(
    conn: Connection, column: ColumnElement[str], values: Sequence[str]
) -> ColumnElement[bool]:
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


def _dumps(rows: object) -> str:
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


CHUNK = 500  # subjects a query asks for: well inside SQLite's parameter limit


def open_alerts(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The unresolved alert of each (rule, subject) in `keys` that has one, as a dict."""
    rules = sorted({rule for rule, _ in keys})
    subjects = sorted({subject for _, subject in keys})
    found: dict[tuple[str, str], Any] = {}
    for start in range(0, len(subjects), CHUNK):
        rows = conn.execute(
            select(alerts).where(
                alerts.c.state != "resolved",
                among(conn, alerts.c.rule, rules),
                among(conn, alerts.c.subject, subjects[start : start + CHUNK]),
            )
        )
        # Rules and subjects are asked for apart: keep only the pairs asked for.
        found.update(
            ((row.rule, row.subject), dict(row._mapping))
            for row in rows
            if (row.rule, row.subject) in keys
        )
    return found


def open_counts(conn: Connection) -> dict[str, int]:
    """Unresolved alerts per severity (those with none left out)."""
    rows = conn.execute(
        select(alerts.c.severity, func.count())
        .where(alerts.c.state != "resolved")
        .group_by(alerts.c.severity)
    )
    return {str(severity): int(n) for severity, n in rows}


def lock_state(conn: Connection, scope: str, name: str) -> str | None:
    """The sync state row's value, its lock held until the transaction ends;
    None when there is no such row."""
    # An UPDATE, not a SELECT: it takes the row lock on PostgreSQL and the write
    # lock on SQLite, which a SELECT ... FOR UPDATE would not.
    return conn.execute(
        update(platform_sync_state)
        .where(platform_sync_state.c.platform == scope, platform_sync_state.c.name == name)
        .values(updated_at=datetime.now(UTC))
        .returning(platform_sync_state.c.value)
    ).scalar()


def add_state(conn: Connection, scope: str, name: str, value: str) -> None:
    """Insert the sync state row; a racing insert's row is kept instead."""
    stmt: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        platform_sync_state
    )
    conn.execute(
        stmt.values(
            platform=scope, name=name, value=value, updated_at=datetime.now(UTC)
        ).on_conflict_do_nothing(index_elements=["platform", "name"])
    )


def save_state(conn: Connection, scope: str, name: str, value: str) -> None:
    conn.execute(
        update(platform_sync_state)
        .where(platform_sync_state.c.platform == scope, platform_sync_state.c.name == name)
        .values(value=value, updated_at=datetime.now(UTC))
    )


def applied_events(
    conn: Connection, occurred_from: datetime, stamped_after: datetime | None
) -> Iterable[Row[Any]]:
    """Applied events that occurred from `occurred_from` (stamped after
    `stamped_after` when given)."""
    query = select(monitor_events).where(monitor_events.c.occurred_at >= occurred_from)
    if stamped_after is not None:
        query = query.where(monitor_events.c.applied_at > stamped_after)
    return conn.execute(query)


def events_between(
    conn: Connection, since: datetime, until: datetime, kind: str | None, credit_code: str | None
) -> Iterable[Row[Any]]:
    """Applied events of `kind` about `credit_code` (None: any) in [since, until],
    by event time."""
    rows = select(monitor_events).where(
        monitor_events.c.occurred_at >= since, monitor_events.c.occurred_at <= until
    )
    if kind is not None:
        rows = rows.where(monitor_events.c.kind == kind)
    if credit_code is not None:
        rows = rows.where(monitor_events.c.credit_code == credit_code)
    return conn.execute(rows.order_by(monitor_events.c.occurred_at, monitor_events.c.id))


def registration_facts(
    conn: Connection, codes: Sequence[str]
) -> Iterable[Row[str, date | None, str | None]]:
    """(credit_code, registered_on, legal_rep_hash) of the enterprises `codes` name."""
    return conn.execute(
        select(
            enterprises.c.credit_code, enterprises.c.registered_on, enterprises.c.legal_rep_hash
        ).where(among(conn, enterprises.c.credit_code, codes))
    )


def codes_with_rep(conn: Connection, legal_rep_hash: str) -> list[str]:
    return list(
        conn.execute(
            select(enterprises.c.credit_code)
            .where(enterprises.c.legal_rep_hash == legal_rep_hash)
            .order_by(enterprises.c.credit_code)
        ).scalars()
    )


def loan_events_after(conn: Connection, after: int, limit: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(loan_events)
            .where(loan_events.c.id > after)
            .order_by(loan_events.c.id)
            .limit(limit)
        )
    )


def audit_entries_after(conn: Connection, after: int, limit: int) -> list[Row[Any]]:
    """Audit entries past seq `after`, each with its client's org code."""
    return list(
        conn.execute(
            select(audit_entries, clients.c.org_code)
            .select_from(
                audit_entries.outerjoin(clients, clients.c.client_id == audit_entries.c.client_id)
            )
            .where(audit_entries.c.seq > after)
            .order_by(audit_entries.c.seq)
            .limit(limit)
        )
    )


def records_changed_after(
    conn: Connection, after: tuple[datetime, int] | None, settled_before: datetime, limit: int
) -> list[Row[Any]]:
    """Records with a subject, each with its current version's data, changed
    past `after` ((updated_at, id)) and before `settled_before`, oldest first."""
    columns = (
        records.c.id, records.c.category, records.c.credit_code, records.c.version,
        records.c.effective_date, records.c.updated_at, record_versions.c.data,
    )  # fmt: skip
    current = and_(
        record_versions.c.record_id == records.c.id,
        record_versions.c.version == records.c.version,
    )
    query = (
        select(*columns)
        .select_from(records.join(record_versions, current))
        .where(records.c.credit_code.is_not(None), records.c.updated_at < settled_before)
        .order_by(records.c.updated_at, records.c.id)
        .limit(limit)
    )
    if after:
        at, last_id = after
        query = query.where(
            or_(
                records.c.updated_at > at,
                and_(records.c.updated_at == at, records.c.id > last_id),
            )
        )
    return list(conn.execute(query))
