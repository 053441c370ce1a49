"""Write generated chunks into the credit store, one transaction per chunk.

PostgreSQL gets COPY text (`copytext`); other databases get executemany.
`load_chunk` runs in worker processes too: each worker generates a chunk and
COPYs it over its own connection, so while one worker is busy in Python the
other's PostgreSQL backend is busy loading, and both cores stay in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine

from gateway.store.bulk import copy_text
from xyd_demo import copytext
from xyd_demo.generate import (
    ENTERPRISE_COLS,
    LICENSE_COLS,
    PENALTY_COLS,
    RECORD_COLS,
    VERSION_COLS,
    Chunk,
    Spec,
    make_chunk,
)

SAMPLES_PER_PROFILE = 30
# Parents before children, so foreign keys hold at every statement.
TABLES = (
    ("enterprises", (*ENTERPRISE_COLS, "created_at", "updated_at")),
    ("records", (*RECORD_COLS, "created_at", "updated_at")),
    ("record_versions", (*VERSION_COLS, "received_at")),
    ("penalty_details", ("record_id", "version", *PENALTY_COLS)),
    ("license_details", ("record_id", "version", *LICENSE_COLS)),
)
_STAMPS = {"enterprises": 2, "records": 2, "record_versions": 1}


@dataclass
class Loaded:
    """What the parent needs back from a loaded chunk."""

    start: int
    enterprises: int
    counts: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[str, str, str]] = field(default_factory=list)


def _rows(chunk: Chunk, table: str) -> list[tuple[Any, ...]]:
    return {
        "enterprises": chunk.enterprises,
        "records": chunk.records,
        "record_versions": chunk.versions,
        "penalty_details": chunk.penalties,
        "license_details": chunk.licenses,
    }[table]


def load_chunk(conn: Connection, spec: Spec, start: int, count: int, now: datetime) -> Loaded:
    """Generate enterprises start .. start+count-1 and write them in `conn`'s transaction."""
    chunk = make_chunk(spec, start, count, SAMPLES_PER_PROFILE)
    if conn.dialect.name == "postgresql":
        payloads = copytext.chunk_payloads(chunk, now.isoformat())
        for table, columns in TABLES:
            if payloads[table]:
                copy_text(conn, table, columns, payloads[table])
    else:
        _insert(conn, chunk, now)
    return Loaded(start, len(chunk.enterprises), dict(chunk.counts), chunk.samples)


def _sql_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return value


def _insert(conn: Connection, chunk: Chunk, now: datetime) -> None:
    # The text form SQLAlchemy itself writes for DateTime on SQLite.
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    for table, columns in TABLES:
        rows = _rows(chunk, table)
        if not rows:
            continue
        stamps = (stamp,) * _STAMPS.get(table, 0)
        prepared = [tuple(map(_sql_value, row)) + stamps for row in rows]
        placeholders = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
            prepared,
        )


# --- worker processes ---------------------------------------------------------

_engine: Engine | None = None


def init_worker(url: str) -> None:
    global _engine
    _engine = create_engine(url, pool_size=1)


def load_in_worker(spec: Spec, start: int, count: int, now: datetime) -> Loaded:
    assert _engine is not None, "init_worker was not called"
    with _engine.begin() as conn:
        return load_chunk(conn, spec, start, count, now)
