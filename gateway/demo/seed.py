"""`xyd demo seed`: write generated chunks into the credit store, fast.

On PostgreSQL, chunks are generated in worker processes and written with
COPY, one transaction per chunk (a crash leaves whole chunks); elsewhere they
go through executemany. One million enterprises and about ten million records
take minutes, not hours (measured figures in loadtests/README.md).
"""

from __future__ import annotations

import csv
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.progress import Progress
from sqlalchemy import Connection, Engine, func, select, text

from gateway.demo.generate import (
    ENTERPRISE_COLS,
    LICENSE_COLS,
    PENALTY_COLS,
    PROFILES,
    RECORD_COLS,
    VERSION_COLS,
    Chunk,
    Spec,
    make_chunk,
)
from gateway.store.bulk import copy_text
from gateway.store.tables import (
    enterprises,
    ingest_runs,
    license_details,
    penalty_details,
    record_versions,
    records,
)

CHUNK = 5_000
SAMPLES_PER_PROFILE = 30
_STAMPED = {"enterprises": ("created_at", "updated_at"), "records": ("created_at", "updated_at"),
            "record_versions": ("received_at",)}  # fmt: skip
_TABLES = (
    ("enterprises", ENTERPRISE_COLS),
    ("records", RECORD_COLS),
    ("record_versions", VERSION_COLS),
    ("penalty_details", ("record_id", "version", *PENALTY_COLS)),
    ("license_details", ("record_id", "version", *LICENSE_COLS)),
)
_CLEARED = (penalty_details, license_details, record_versions, records, enterprises, ingest_runs)


class SeedError(Exception):
    """The store cannot be seeded as asked (e.g. it already holds data)."""


@dataclass
class SeedSummary:
    enterprises: int = 0
    records: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _rows_of(chunk: Chunk, table: str) -> list[tuple[Any, ...]]:
    return {
        "enterprises": chunk.enterprises,
        "records": chunk.records,
        "record_versions": chunk.versions,
        "penalty_details": chunk.penalties,
        "license_details": chunk.licenses,
    }[table]


def seed_demo(
    engine: Engine,
    pii_key: bytes,
    *,
    enterprises: int,
    seed: int,
    out_dir: Path,
    reset: bool = False,
    progress: bool = False,
    as_of: date | None = None,
    chunk_size: int = CHUNK,
) -> SeedSummary:
    """Seed `enterprises` enterprises; same seed and `as_of` (default today), same data."""
    started = time.perf_counter()
    spec = Spec(seed=seed, as_of=as_of or date.today(), pii_key=pii_key, first_id=1)
    _prepare_store(engine, reset)
    now = datetime.now(UTC).isoformat()
    summary = SeedSummary()
    samples: dict[str, list[tuple[str, str, str]]] = {p: [] for p in PROFILES}
    postgres = engine.dialect.name == "postgresql"
    starts = [(spec, start, min(chunk_size, enterprises - start), now) for start in
              range(0, enterprises, chunk_size)]  # fmt: skip
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("seeding", total=enterprises)
        for chunk, payloads in _chunks(starts, postgres):
            with engine.begin() as conn:
                if payloads is not None:
                    _copy(conn, payloads)
                else:
                    _insert(conn, chunk, now)
            summary.enterprises += len(chunk.enterprises)
            for category, n in chunk.counts.items():
                summary.records[category] = summary.records.get(category, 0) + n
            for sample in chunk.samples:
                if len(samples[sample[2]]) < SAMPLES_PER_PROFILE:
                    samples[sample[2]].append(sample)
            bar.advance(task, len(chunk.enterprises))
    if postgres:
        _advance_sequences(engine)
    _write_samples(out_dir / "enterprises.csv", samples)
    summary.seconds = time.perf_counter() - started
    return summary


def _prepare_store(engine: Engine, reset: bool) -> None:
    with engine.begin() as conn:
        if reset:
            if conn.dialect.name == "postgresql":
                names = ", ".join(table.name for table in _CLEARED)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
            else:
                for table in _CLEARED:
                    conn.execute(table.delete())
            return
        held = conn.execute(select(func.count()).select_from(records)).scalar_one()
        held += conn.execute(select(func.count()).select_from(enterprises)).scalar_one()
        if held:
            raise SeedError("the credit store already holds data; pass --reset to replace it")


def _chunks(
    starts: list[tuple[Spec, int, int, str]], postgres: bool
) -> Iterator[tuple[Chunk, dict[str, bytes] | None]]:
    if not postgres:
        for spec, start, count, _ in starts:
            yield make_chunk(spec, start, count, SAMPLES_PER_PROFILE), None
        return
    if len(starts) == 1:
        yield _generate_for_copy(starts[0])
        return
    # Two generators keep PostgreSQL busy while Python makes the next chunk.
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        yield from pool.imap(_generate_for_copy, starts)


def _generate_for_copy(args: tuple[Spec, int, int, str]) -> tuple[Chunk, dict[str, bytes]]:
    spec, start, count, now = args
    chunk = make_chunk(spec, start, count, SAMPLES_PER_PROFILE)
    payloads = {
        table: b"".join(
            _copy_line(row, _STAMPED.get(table, ()), now) for row in _rows_of(chunk, table)
        )
        for table, _ in _TABLES
    }
    # Only what the parent needs travels back.
    light = Chunk(enterprises=[()] * len(chunk.enterprises), samples=chunk.samples,
                  counts=chunk.counts)  # fmt: skip
    return light, payloads


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text_value: str
    if isinstance(value, bytes):
        text_value = value.decode()
    elif isinstance(value, list):
        text_value = orjson.dumps(value).decode()
    elif isinstance(value, str):
        text_value = value
    else:
        return str(value)
    if "\\" in text_value or "\t" in text_value or "\n" in text_value or "\r" in text_value:
        text_value = (
            text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r")
        )  # fmt: skip
    return text_value


def _copy_line(row: tuple[Any, ...], stamps: tuple[str, ...], now: str) -> bytes:
    values = [_copy_value(v) for v in row]
    values.extend(now for _ in stamps)
    return ("\t".join(values) + "\n").encode()


def _copy(conn: Connection, payloads: dict[str, bytes]) -> None:
    for table, columns in _TABLES:
        if payloads[table]:
            copy_text(conn, table, (*columns, *_STAMPED.get(table, ())), payloads[table])


def _insert(conn: Connection, chunk: Chunk, now: str) -> None:
    for table, columns in _TABLES:
        rows = _rows_of(chunk, table)
        if not rows:
            continue
        stamps = _STAMPED.get(table, ())
        names = (*columns, *stamps)
        placeholders = ", ".join("?" for _ in names)
        prepared = [
            tuple(
                v.decode() if isinstance(v, bytes)
                else orjson.dumps(v).decode() if isinstance(v, list) else v
                for v in row
            ) + (now,) * len(stamps)
            for row in rows
        ]  # fmt: skip
        conn.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})",  # noqa: S608
            prepared,
        )


def _advance_sequences(engine: Engine) -> None:
    # Ids were assigned here, not by the sequences: move them past what we used.
    with engine.begin() as conn:
        for table in ("enterprises", "records"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            )


def _write_samples(path: Path, samples: dict[str, list[tuple[str, str, str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("credit_code", "name", "profile"))
        for profile in PROFILES:
            writer.writerows(samples[profile])
