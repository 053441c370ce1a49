"""`xyd demo seed`: a deterministic Chengdu data set in the credit store, fast.

Same seed, same number of enterprises and same `as_of` give the same rows
(timestamps aside). `as_of` is the data set's "today" (registration ages,
contribution periods, publication windows hang on it); it defaults to
date.today(), so pass it to reproduce a data set on another day.

On PostgreSQL two worker processes each generate a chunk and COPY it over
their own connection, one transaction per chunk, so a crash leaves whole
chunks; elsewhere chunks go in through executemany. For a large load the
non-unique indexes of `records` and `enterprises` are dropped first and built
once at the end (a sort is far cheaper than ten million random inserts into a
B-tree larger than shared_buffers); they are rebuilt even when the load fails,
and any missing one is recreated at the start of every seed, so a killed run
heals on the next `xyd demo seed --reset`. Ids are assigned here
(enterprise i gets id i + 1, its records id * 64 + n), and the id sequences
are moved past them before loading, so later inserts never collide.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import Engine, Index, func, insert, select, text

from gateway.private_files import open_private, private_dir
from gateway.store.tables import (
    CATEGORIES,
    ingest_runs,
    license_details,
    loan_events,
    loans,
    outbox,
    penalty_details,
    platform_dead_letters,
    platform_sync_state,
    record_disputes,
    record_versions,
    records,
    repair_applications,
    repair_evidence,
)
from gateway.store.tables import (
    enterprises as enterprises_table,
)
from xyd_demo import load
from xyd_demo.base import NOT_CONNECTED, RECORD_SLOTS, STALE_FEEDS_DAYS
from xyd_demo.generate import PROFILES, Spec

CHUNK = 5_000
DEFER_INDEXES_FROM = 100_000  # enterprises; below this, rebuilding costs more than it saves
WORKERS = 2
# The platforms' ledger goes too: a fresh demo replays its platform streams. Repair
# applications go with the records they are about (their evidence first).
_CLEARED = (repair_evidence, repair_applications, record_disputes, penalty_details,
            license_details, record_versions, records, enterprises_table, ingest_runs,
            loan_events, loans, platform_dead_letters, platform_sync_state, outbox)  # fmt: skip


class SeedError(Exception):
    """The store cannot be seeded as asked (e.g. it already holds data)."""


@dataclass
class SeedSummary:
    enterprises: int = 0
    records: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


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
    """Seed `enterprises` enterprises with about ten records each; see the module notes."""
    started = time.perf_counter()
    if enterprises < 0 or chunk_size < 1:
        raise ValueError("enterprises must be >= 0 and chunk_size >= 1")
    spec = Spec(seed=seed, as_of=as_of or date.today(), pii_key=pii_key, first_id=1)
    _prepare_store(engine, reset)
    _reserve_ids(engine, spec, enterprises)
    starts = [(s, min(chunk_size, enterprises - s)) for s in range(0, enterprises, chunk_size)]
    summary = SeedSummary(records=dict.fromkeys(sorted(set(CATEGORIES) - NOT_CONNECTED), 0))
    loaded: list[load.Loaded] = []
    deferred = _secondary_indexes() if enterprises >= DEFER_INDEXES_FROM else []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("seeding enterprises", total=enterprises)
        _drop_indexes(engine, deferred)
        try:
            for result in _load_all(engine, spec, starts):
                loaded.append(result)
                summary.enterprises += result.enterprises
                for category, n in result.counts.items():
                    summary.records[category] += n
                bar.advance(task, result.enterprises)
        finally:
            bar.update(task, description="building indexes")
            _build_indexes(engine, deferred)
    _write_samples(out_dir / "enterprises.csv", loaded)
    _record_feeds(engine, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _record_feeds(engine: Engine, summary: SeedSummary) -> None:
    """One finished feed per connected category, as departments' real feeds leave
    (a stale one long ago): reports judge each section's completeness by them."""
    now = datetime.now(UTC)
    finished = {c: now - timedelta(days=days) for c, days in STALE_FEEDS_DAYS.items()}
    with engine.begin() as conn:
        conn.execute(
            insert(ingest_runs),
            [
                {
                    "id": uuid.uuid4().hex,
                    "category": category,
                    "source": "demo seed",
                    "started_at": finished.get(category, now),
                    "finished_at": finished.get(category, now),
                    "accepted": count,
                    "complete": True,
                }
                for category, count in summary.records.items()
            ],
        )


def _secondary_indexes() -> list[Index]:
    """The non-unique indexes of the bulk tables, as tables.py defines them."""
    tables = (records, enterprises_table)
    return sorted(
        (ix for t in tables for ix in t.indexes if not ix.unique), key=lambda ix: str(ix.name)
    )


def _drop_indexes(engine: Engine, indexes: list[Index]) -> None:
    if engine.dialect.name != "postgresql" or not indexes:
        return
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn, checkfirst=True)


def _build_indexes(engine: Engine, indexes: list[Index]) -> None:
    if engine.dialect.name != "postgresql" or not indexes:
        return
    with engine.begin() as conn:
        # A bigger sort budget for this transaction only: fewer passes over disk.
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        for index in indexes:
            index.create(conn, checkfirst=True)


def _prepare_store(engine: Engine, reset: bool) -> None:
    _build_indexes(engine, _secondary_indexes())  # after a run killed mid-load
    with engine.begin() as conn:
        if reset:
            if conn.dialect.name == "postgresql":
                names = ", ".join(table.name for table in _CLEARED)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
            else:
                for table in _CLEARED:
                    conn.execute(table.delete())
            return
        held = conn.execute(select(func.count()).select_from(enterprises_table)).scalar_one()
        held += conn.execute(select(func.count()).select_from(records)).scalar_one()
        if held:
            raise SeedError(
                "the credit store already holds enterprises or records; "
                "pass --reset to delete them and seed afresh"
            )


def _reserve_ids(engine: Engine, spec: Spec, enterprises: int) -> None:
    # Before loading, not after: an ingest running beside the seeder, or one
    # after a crash halfway, must not be handed an id the seeder will use.
    if engine.dialect.name != "postgresql" or enterprises == 0:
        return
    last_enterprise = spec.first_id + enterprises - 1
    tops = {"enterprises": last_enterprise, "records": (last_enterprise + 1) * RECORD_SLOTS}
    with engine.begin() as conn:
        for table, top in tops.items():
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :top)"),
                {"table": table, "top": top},
            )


def _load_all(engine: Engine, spec: Spec, starts: list[tuple[int, int]]) -> Iterator[load.Loaded]:
    now = datetime.now(UTC)
    if engine.dialect.name != "postgresql" or len(starts) < 2:
        for start, count in starts:
            with engine.begin() as conn:
                yield load.load_chunk(conn, spec, start, count, now)
        return
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    with ProcessPoolExecutor(WORKERS, context, load.init_worker, (url,)) as pool:
        pending: deque[Future[load.Loaded]] = deque()
        queue = iter(starts)
        try:
            # A couple of chunks queued per worker keeps both busy without
            # holding the whole run in memory.
            for start, count in queue:
                pending.append(pool.submit(load.load_in_worker, spec, start, count, now))
                if len(pending) >= 2 * WORKERS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _write_samples(path: Path, loaded: list[load.Loaded]) -> None:
    """Up to 30 enterprises of each profile, the first ones by index (so, deterministic)."""
    picked: dict[str, list[tuple[str, str, str]]] = {profile: [] for profile in PROFILES}
    for result in sorted(loaded, key=lambda r: r.start):
        for sample in result.samples:
            if len(picked[sample[2]]) < load.SAMPLES_PER_PROFILE:
                picked[sample[2]].append(sample)
    private_dir(path.parent)
    with io.TextIOWrapper(open_private(path), encoding="utf-8", newline="") as handle:
        # "\n", not the csv module's "\r\n": the README reads it with sed and cut.
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("credit_code", "name", "profile"))
        for profile in PROFILES:
            writer.writerows(picked[profile])
