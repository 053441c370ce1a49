"""All SQL of record ingestion: classify a batch against the store, write it.

Works on any SQLAlchemy connection (SQLite or PostgreSQL) inside the
caller's transaction; it never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.keys.pii import version_of
from gateway.store import copytext
from gateway.store.bulk import allocate_ids, copy_rows, copy_text
from gateway.store.tables import (
    enterprises,
    license_details,
    penalty_details,
    record_versions,
    records,
)

_KEY_CHUNK = 900  # keeps IN lists under SQLite's parameter limit
DETAIL_TABLES: dict[str, Table] = {"penalty": penalty_details, "license": license_details}
_RECORD_COLUMNS = (
    "id",
    "category",
    "source_department",
    "source_record_id",
    "credit_code",
    "subject_kind",
    "version",
    "content_sha256",
    "effective_date",
    "created_at",
    "updated_at",
)
_VERSION_COLUMNS = (
    "record_id",
    "version",
    "content_sha256",
    "data",
    "received_at",
    "ingest_batch",
    "personal",
    "personal_key_version",
)


def detail_columns(category: str) -> tuple[str, ...]:
    """The detail table's own columns (all but its key), in table order; () if none."""
    table = DETAIL_TABLES.get(category)
    if table is None:
        return ()
    return tuple(c.name for c in table.c if c.name not in ("record_id", "version"))


class Incoming(NamedTuple):
    """A validated line ready to store.

    A named tuple, not a dataclass: worker processes send these to the parent
    by the thousand, and a tuple pickles in half the time.
    """

    line: int
    source_department: str
    source_record_id: str
    credit_code: str | None
    subject_kind: str
    effective_date: date | None
    sha256: str
    # The stored data as canonical JSON (sorted keys): the bytes sha256 is
    # taken of (with a keyed digest of the sealed values when there are
    # some), written to PostgreSQL as they are.
    document: bytes
    # The category's detail columns (`detail_columns`), in table order.
    details: tuple[Any, ...] | None = None
    enterprise: dict[str, Any] | None = None
    # The personal values `document` leaves out, sealed (gateway/keys/pii.py).
    personal: str | None = None
    # A credit repair's target, (category, department, record id), when its
    # writer is bound: it must be stored and about the same subject.
    repairs: tuple[str, str, str] | None = None

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
            ).all()  # one fetchall: row by row, psycopg costs ~10 µs a row
            for record_id, source_record_id, version, sha256 in rows:
                found[(department, source_record_id)] = _State(record_id, version, sha256)
    return found


def record_subjects(
    conn: Connection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], str | None]:
    """The credit code of each stored record among `keys` (category, department, record id)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for category, department, record_id in dict.fromkeys(keys):
        grouped.setdefault((category, department), []).append(record_id)
    found: dict[tuple[str, str, str], str | None] = {}
    for (category, department), record_ids in grouped.items():
        for start in range(0, len(record_ids), _KEY_CHUNK):
            rows = conn.execute(
                select(records.c.source_record_id, records.c.credit_code).where(
                    records.c.category == category,
                    records.c.source_department == department,
                    _in(conn, records.c.source_record_id, record_ids[start : start + _KEY_CHUNK]),
                )
            ).all()
            for record_id, credit_code in rows:
                found[(category, department, record_id)] = credit_code
    return found


def _in(conn: Connection, column: ColumnElement[str], values: Sequence[str]) -> ColumnElement[bool]:
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
    if conn.dialect.name == "postgresql":
        ids = allocate_ids(conn, records, len(new))
        stamp = now.isoformat()
        lines = []
        for state, record_id in zip(new, ids, strict=True):
            last = state.last
            assert last is not None
            lines.append(
                copytext.line(
                    (
                        record_id,
                        category,
                        last.source_department,
                        last.source_record_id,
                        last.credit_code,
                        last.subject_kind,
                        state.version,
                        state.sha256,
                        last.effective_date,
                        stamp,
                        stamp,
                    )
                )
            )
        copy_text(conn, "records", _RECORD_COLUMNS, "".join(lines).encode())
    else:
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
    versions: list[tuple[int, int, Incoming]] = []
    for state in states:
        assert state.record_id is not None  # new records have theirs by now
        versions.extend((state.record_id, version, item) for version, item in state.versions)
    if conn.dialect.name == "postgresql":
        _copy_versions(conn, category, versions, now, run_id)
        return
    table = DETAIL_TABLES.get(category)
    version_rows: list[dict[str, Any]] = []
    detail_rows: list[dict[str, Any]] = []
    columns = detail_columns(category)
    for record_id, version, item in versions:
        version_rows.append(
            {
                "record_id": record_id,
                "version": version,
                "content_sha256": item.sha256,
                "data": orjson.loads(item.document),
                "received_at": now,
                "ingest_batch": run_id,
                "personal": item.personal,
                "personal_key_version": version_of(item.personal) if item.personal else None,
            }
        )
        if item.details is not None:
            detail_rows.append(
                {
                    "record_id": record_id,
                    "version": version,
                    **dict(zip(columns, item.details, strict=True)),
                }
            )
    copy_rows(conn, record_versions, version_rows)
    if table is not None:
        copy_rows(conn, table, detail_rows)


def _copy_versions(
    conn: Connection,
    category: str,
    versions: list[tuple[int, int, Incoming]],
    now: datetime,
    run_id: str,
) -> None:
    if not versions:
        return
    tail = f"\t{now.isoformat()}\t{copytext.value(run_id)}".encode()
    unsealed = tail + b"\t\\N\t\\N\n"
    payload = b"".join(
        b"%d\t%d\t%s\t%s%s"
        % (
            record_id,
            version,
            item.sha256.encode(),
            copytext.json_document(item.document),
            unsealed if item.personal is None else _sealed_tail(tail, item.personal),
        )
        for record_id, version, item in versions
    )
    copy_text(conn, "record_versions", _VERSION_COLUMNS, payload)
    table = DETAIL_TABLES.get(category)
    if table is None:
        return
    details = [
        f"{record_id}\t{version}\t{copytext.line(item.details)}"
        for record_id, version, item in versions
        if item.details is not None
    ]
    if details:
        columns = ("record_id", "version", *detail_columns(category))
        copy_text(conn, table.name, columns, "".join(details).encode())


def _sealed_tail(tail: bytes, personal: str) -> bytes:
    # base64url and dots: nothing COPY text would need escaped.
    return b"%s\t%s\t%d\n" % (tail, personal.encode(), version_of(personal))


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
