"""Validation in worker processes: the same outcomes, rejects and rows as in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, delete, select

from gateway.records import ingest_file as ingest_file_module
from gateway.records.ingest_file import ingest_file
from gateway.records.parallel import ValidationPool
from gateway.records.readers import read_csv, read_ndjson
from gateway.records.schemas import Penalty
from gateway.records.service import Ingestor, LineOutcome, prepare
from gateway.settings import Settings
from gateway.store.tables import (
    enterprises,
    ingest_runs,
    penalty_details,
    record_versions,
    records,
)
from testkit.builders import MARKET, ndjson, penalty
from tests.records.test_ingest import CSV_HEADER, KEY, csv_line

# Every kind of line, over several batches of three: a BOM, blank lines, the
# same record twice in the file, a correction, and each way a line is refused.
MIXED = (
    b"\xef\xbb\xbf"
    + ndjson(penalty(1), penalty(2))
    + b"\n"
    + ndjson(
        penalty(1),
        penalty(2, fine_wan="3"),
        penalty(4, credit_code="9144030071526726XA"),
        {k: v for k, v in penalty(5).items() if k != "decision_date"},
        penalty(6, fine_wan="a lot"),
        penalty(7, decision_date="2025-02-30", facts="tab\there\nnewline \\ and \\N"),
    )
    + "不是UTF-8\n".encode("gb18030")
    + b"{not json\n"
    + b"[1, 2]\n"
    + b"   \n"
    + ndjson(penalty(8, facts="tab\there\nnewline \\ and \\N"), penalty(8, fine_wan="0.5"))
    + ndjson(*(penalty(n) for n in range(9, 20)))
)


def lines_of(payload: bytes) -> list[bytes]:
    return payload.splitlines(keepends=True)


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_workers_prepare_exactly_what_one_process_prepares(start_method: str) -> None:
    raw = lines_of(MIXED)
    expected = [prepare(Penalty, line, KEY) for line in read_ndjson(raw)]
    with ValidationPool("penalty", KEY, 2, start_method=start_method) as pool:
        got = [item for batch in pool.prepare_feed(raw, "ndjson", 3) for item in batch]
    assert got == expected
    reasons = {o.line: o.reason for o in got if isinstance(o, LineOutcome)}
    assert "check character should be" in (reasons[6] or "")
    assert reasons[7] == "decision_date: Field required"
    assert "not a number" in (reasons[8] or "")
    assert "not a calendar date" in (reasons[9] or "")
    assert reasons[10] == "not valid UTF-8 (byte 1); feeds must be UTF-8"
    assert (reasons[11] or "").startswith("not valid JSON")
    assert reasons[12] == "each line must be a JSON object"


def test_csv_lines_are_read_here_and_prepared_in_the_workers() -> None:
    payload = (CSV_HEADER + csv_line(1) + csv_line(2, fine="五千") + csv_line(3)).encode()
    expected = [prepare(Penalty, line, KEY) for line in read_csv(lines_of(payload))]
    with ValidationPool("penalty", KEY, 2) as pool:
        got = [item for batch in pool.prepare_feed(lines_of(payload), "csv", 2) for item in batch]
    assert got == expected
    assert [getattr(item, "outcome", "valid") for item in got] == ["valid", "rejected", "valid"]


def stored(engine: Engine) -> list[dict[str, Any]]:
    """Every stored version with its record and detail row, ids and timestamps aside."""
    query = (
        select(
            records.c.source_record_id,
            records.c.version.label("current"),
            records.c.content_sha256.label("current_sha"),
            records.c.credit_code,
            records.c.subject_kind,
            records.c.effective_date,
            record_versions.c.version,
            record_versions.c.content_sha256,
            record_versions.c.data,
            *(c for c in penalty_details.c if c.name not in ("record_id", "version")),
        )
        .join(record_versions, record_versions.c.record_id == records.c.id)
        .join(
            penalty_details,
            (penalty_details.c.record_id == record_versions.c.record_id)
            & (penalty_details.c.version == record_versions.c.version),
        )
        .order_by(records.c.source_record_id, record_versions.c.version)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (penalty_details, record_versions, records, enterprises, ingest_runs):
            conn.execute(delete(table))


def ingest_twice(engine: Engine, workers: int) -> tuple[list[LineOutcome], list[dict[str, Any]]]:
    """The mixed file, then again (duplicates now): every outcome, and what is stored."""
    outcomes: list[LineOutcome] = []
    ingestor = Ingestor(engine, "penalty", KEY, batch_size=3)
    for _ in range(2):
        if workers:
            with ValidationPool("penalty", KEY, workers) as pool:
                batches = pool.prepare_feed(lines_of(MIXED), "ndjson", ingestor.batch_size)
                ingestor.store(batches, "test", outcomes.append)
        else:
            ingestor.run(read_ndjson(lines_of(MIXED)), "test", outcomes.append)
    return outcomes, stored(engine)


def test_workers_store_what_one_process_stores(engine: Engine) -> None:
    alone = ingest_twice(engine, workers=0)
    wipe(engine)
    assert ingest_twice(engine, workers=2) == alone
    outcomes, rows = alone
    assert [o.outcome for o in outcomes[:4]] == ["accepted", "accepted", "duplicate", "updated"]
    again = [(o.record_id, o.outcome) for o in outcomes[len(outcomes) // 2 :]]
    # Records the file carries twice with different content change back and forth.
    changed = {"P-000002", "P-000008"}
    assert {outcome for rid, outcome in again if rid in changed} == {"updated"}
    assert {o for rid, o in again if rid and rid not in changed and o != "rejected"} == {
        "duplicate"
    }
    eighth = [row for row in rows if row["source_record_id"] == "P-000008"]
    facts = "tab\there\nnewline \\ and \\N"  # COPY's special characters, stored as given
    assert [row["facts"] for row in eighth] == [facts, None, facts, None]
    assert eighth[0]["data"]["facts"] == facts
    assert [row["version"] for row in eighth] == [1, 2, 3, 4]


def test_each_reported_line_is_committed_already(engine: Engine) -> None:
    seen: list[str] = []

    def check(outcome: LineOutcome) -> None:
        if outcome.outcome == "accepted":
            with engine.connect() as conn:
                found = conn.execute(
                    select(records.c.id).where(records.c.source_record_id == outcome.record_id)
                ).first()
            assert found is not None, f"{outcome.record_id} reported before it was committed"
            seen.append(outcome.record_id or "")

    payload = lines_of(ndjson(*(penalty(n) for n in range(1, 11))))
    Ingestor(engine, "penalty", KEY, batch_size=2).run(read_ndjson(payload), "test", check)
    assert len(seen) == 10


def test_xyd_ingest_with_workers_writes_the_same_rejects_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.db import make_sync_engine
    from gateway.store.migrate import upgrade

    engine = make_sync_engine(settings)
    upgrade(engine)
    feed = tmp_path / "feed.ndjson"
    feed.write_bytes(MIXED)
    monkeypatch.setattr(ingest_file_module, "default_workers", lambda: 2)
    results = []
    for threshold in (10**12, 0):  # one process, then workers
        monkeypatch.setattr(ingest_file_module, "_WORKERS_ABOVE_BYTES", threshold)
        wipe(engine)
        assert ingest_file(settings, feed, "penalty", None, None, MARKET) == 0
        rejects = (tmp_path / "feed.ndjson.rejects.ndjson").read_bytes()
        with engine.connect() as conn:
            run = conn.execute(
                select(ingest_runs.c.accepted, ingest_runs.c.updated, ingest_runs.c.rejected)
            ).one()
        results.append((rejects, tuple(run), stored(engine)))
    engine.dispose()
    assert results[0] == results[1]
    assert [orjson.loads(r)["line"] for r in results[0][0].splitlines()] == [6, 7, 8, 9, 10, 11, 12]


def test_in_memory_sqlite_is_stored_from_the_calling_thread() -> None:
    from sqlalchemy import create_engine, func

    from gateway.store.migrate import upgrade

    # Each thread of an in-memory SQLite engine sees a database of its own: the
    # batches must not go to a writer thread there.
    engine = create_engine("sqlite://")
    upgrade(engine)
    payload = lines_of(ndjson(*(penalty(n) for n in range(1, 6))))
    outcomes: list[LineOutcome] = []
    Ingestor(engine, "penalty", KEY, batch_size=2).run(read_ndjson(payload), "t", outcomes.append)
    assert [o.outcome for o in outcomes] == ["accepted"] * 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(records)).scalar_one() == 5
    engine.dispose()
