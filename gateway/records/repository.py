"""All SQL of record ingestion: classify a batch against the store, write it.

Works on any SQLAlchemy connection (SQLite or PostgreSQL) inside the
caller's transaction; it never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, any_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.store.bulk import allocate_ids, copy_rows
from gateway.store.tables import (
    enterprises,
    license_details,
    penalty_details,
    record_versions,
    records,
)

_KEY_CHUNK = 900  # keeps IN lists under SQLite's parameter limit


@dataclass(slots=True)
class Incoming:
    """A validated line ready to store."""

    line: int
    source_department: str
    source_record_id: str
    credit_code: str | None
    subject_kind: str
    effective_date: Any
    sha256: str
    data: dict[str, Any]
    details: dict[str, Any] | None = None
    enterprise: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source_department, self.source_record_id)


@dataclass(slots=True)
class _State:
    record_id: int | None
    version: int
    sha256: str
    last: Incoming | None = None
    versions: list[tuple[int, Incoming]] = field(default_factory=list)


def existing_state(
    conn: Connection, category: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], _State]:
    # Grouped by department so each query is equality on the unique index's
    # leading columns plus IN on the last: an index range scan on both databases.
    by_department: dict[str, list[str]] = {}
    for department, record_id in keys:
        by_department.setdefault(department, []).append(record_id)
    found: dict[tuple[str, str], _State] = {}
    for department, record_ids in by_department.items():
        for start in range(0, len(record_ids), _KEY_CHUNK):
            rows = conn.execute(
                select(
                    records.c.id,
                    records.c.source_record_id,
                    records.c.version,
                    records.c.content_sha256,
                ).where(
                    records.c.category == category,
                    records.c.source_department == department,
                    _in(conn, records.c.source_record_id, record_ids[start : start + _KEY_CHUNK]),
                )
            )
            for row in rows:
                found[(department, row.source_record_id)] = _State(
                    row.id, row.version, row.content_sha256
                )
    return found


def _in(conn: Connection, column: Any, values: Sequence[str]) -> Any:
    # psycopg parses a statement with a thousand placeholders for ~50 ms; one
    # array parameter costs nothing. SQLite has no arrays.
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


def apply_batch(
    conn: Connection, category: str, batch: Sequence[Incoming], now: datetime, run_id: str
) -> list[tuple[Incoming, str, int]]:
    """Store a batch; return (line, outcome, version) per line, in input order.

    Outcomes: `accepted` (new record), `duplicate` (same id and content as the
    current version: nothing written), `updated` (same id, new content: a new
    version, the old one kept).
    """
    states = existing_state(conn, category, list(dict.fromkeys(item.key for item in batch)))
    outcomes: list[tuple[Incoming, str, int]] = []
    for item in batch:
        state = states.get(item.key)
        if state is None:
            state = states[item.key] = _State(None, 1, item.sha256)
            outcome = "accepted"
        elif state.sha256 == item.sha256:
            outcomes.append((item, "duplicate", state.version))
            continue
        else:
            state.version += 1
            state.sha256 = item.sha256
            outcome = "updated"  # of a stored record, or of one new earlier in this batch
        state.last = item
        state.versions.append((state.version, item))
        outcomes.append((item, outcome, state.version))

    changed = [s for s in states.values() if s.last is not None]
    stored = [s for s in changed if s.record_id is not None]
    _insert_new_records(conn, category, [s for s in changed if s.record_id is None], now)
    _advance_records(conn, stored, now)
    _insert_versions(conn, category, changed, now, run_id)
    _touch_enterprises(conn, category, changed, now)
    return outcomes


def _insert_new_records(conn: Connection, category: str, new: list[_State], now: datetime) -> None:
    if not new:
        return
    rows = []
    for state in new:
        last = state.last
        assert last is not None
        rows.append(
            {
                "category": category,
                "source_department": last.source_department,
                "source_record_id": last.source_record_id,
                "credit_code": last.credit_code,
                "subject_kind": last.subject_kind,
                "version": state.version,
                "content_sha256": state.sha256,
                "effective_date": last.effective_date,
                "created_at": now,
                "updated_at": now,
            }
        )
    if conn.dialect.name == "postgresql":
        ids = allocate_ids(conn, records, len(rows))
        for row, record_id in zip(rows, ids, strict=True):
            row["id"] = record_id
        copy_rows(conn, records, rows)
    else:
        result = conn.execute(
            insert(records).returning(records.c.id, sort_by_parameter_order=True), rows
        )
        ids = list(result.scalars())
    for state, record_id in zip(new, ids, strict=True):
        state.record_id = record_id


def _advance_records(conn: Connection, states: list[_State], now: datetime) -> None:
    rows = []
    for state in states:
        last = state.last
        assert last is not None
        rows.append(
            {
                "b_id": state.record_id,
                "b_version": state.version,
                "b_sha": state.sha256,
                "b_code": last.credit_code,
                "b_kind": last.subject_kind,
                "b_date": last.effective_date,
                "b_now": now,
            }
        )
    if not rows:
        return
    stmt = (
        update(records)
        .where(records.c.id == bindparam("b_id"))
        .values(
            version=bindparam("b_version"),
            content_sha256=bindparam("b_sha"),
            credit_code=bindparam("b_code"),
            subject_kind=bindparam("b_kind"),
            effective_date=bindparam("b_date"),
            updated_at=bindparam("b_now"),
        )
    )
    conn.execute(stmt, rows)


def _insert_versions(
    conn: Connection, category: str, states: list[_State], now: datetime, run_id: str
) -> None:
    version_rows: list[dict[str, Any]] = []
    detail_rows: list[dict[str, Any]] = []
    for state in states:
        for version, item in state.versions:
            version_rows.append(
                {
                    "record_id": state.record_id,
                    "version": version,
                    "content_sha256": item.sha256,
                    "data": item.data,
                    "received_at": now,
                    "ingest_batch": run_id,
                }
            )
            if item.details is not None:
                detail_rows.append(
                    {"record_id": state.record_id, "version": version, **item.details}
                )
    copy_rows(conn, record_versions, version_rows)
    table = {"penalty": penalty_details, "license": license_details}.get(category)
    if table is not None:
        copy_rows(conn, table, detail_rows)


def _touch_enterprises(
    conn: Connection, category: str, states: list[_State], now: datetime
) -> None:
    if category == "registration":
        upserts = [s.last.enterprise for s in states if s.last and s.last.enterprise]
        if upserts:
            rows = [{**e, "data_version": 1, "created_at": now, "updated_at": now} for e in upserts]
            upsert_enterprises(conn, rows)
        return
    codes = sorted({s.last.credit_code for s in states if s.last and s.last.credit_code})
    for start in range(0, len(codes), _KEY_CHUNK):
        conn.execute(
            update(enterprises)
            .where(_in(conn, enterprises.c.credit_code, codes[start : start + _KEY_CHUNK]))
            .values(data_version=enterprises.c.data_version + 1, updated_at=now)
        )


def upsert_enterprises(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert enterprises, or update them in place when the credit code exists."""
    dialect = conn.dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(enterprises)
    elif dialect == "sqlite":
        stmt = sqlite.insert(enterprises)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[enterprises.c.credit_code],
        set_={
            **{
                name: excluded[name]
                for name in (
                    "name",
                    "entity_type",
                    "division_code",
                    "legal_rep_hash",
                    "legal_rep_masked",
                    "registered_on",
                    "status",
                    "registered_capital_fen",
                    "industry_code",
                    "updated_at",
                )
            },
            "data_version": enterprises.c.data_version + 1,
        },
    )
    # PostgreSQL refuses one statement touching a row twice: keep the last per code.
    latest = {row["credit_code"]: row for row in rows}
    conn.execute(stmt, list(latest.values()))
