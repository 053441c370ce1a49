"""The demo seeder on SQLite and PostgreSQL: valid, complete, as ingestion stores, safe."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, Engine, Row, create_engine, func, inspect, select, text

from gateway.identifiers import validate_credit_code
from gateway.records.readers import Line
from gateway.records.schemas import SCHEMAS
from gateway.records.service import Ingestor, LineOutcome
from gateway.store.migrate import upgrade
from gateway.store.tables import (
    CATEGORIES,
    enterprises,
    ingest_runs,
    license_details,
    penalty_details,
    record_versions,
    records,
)
from testkit.builders import penalty, registration
from xyd_demo import seed as seed_module
from xyd_demo.base import NOT_CONNECTED, STALE_FEEDS_DAYS
from xyd_demo.generate import PROFILES, Spec, legal_representative
from xyd_demo.seed import SeedError, SeedSummary, seed_demo

KEY = b"test-pii-key"
AS_OF = date(2026, 11, 26)
SEED = 7
PERSONAL = ("legal_rep_masked", "legal_rep_hash")


def seed(engine: Engine, out: Path, n: int = 300, **kwargs: Any) -> SeedSummary:
    # chunk_size 100: on PostgreSQL, several chunks go through the worker processes.
    options: dict[str, Any] = {"seed": SEED, "as_of": AS_OF, "chunk_size": 100, **kwargs}
    return seed_demo(engine, KEY, enterprises=n, out_dir=out, **options)


def stored(conn: Connection) -> list[Row[Any]]:
    """Every record with its (only) version's data."""
    query = select(
        records.c.id,
        records.c.category,
        records.c.source_department,
        records.c.subject_kind,
        records.c.effective_date,
        records.c.content_sha256,
        record_versions.c.data,
    ).join(record_versions, record_versions.c.record_id == records.c.id)
    return list(conn.execute(query))


def count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def ingest(engine: Engine, category: str, *lines: dict[str, Any]) -> list[LineOutcome]:
    outcomes: list[LineOutcome] = []
    batch = [Line(number, fields) for number, fields in enumerate(lines, start=1)]
    Ingestor(engine, category, KEY, 100).run(batch, "test", outcomes.append)
    return outcomes


def test_seeds_valid_enterprises_with_complete_records(engine: Engine, tmp_path: Path) -> None:
    summary = seed(engine, tmp_path)
    with engine.connect() as conn:
        codes = conn.execute(select(enterprises.c.credit_code)).scalars().all()
        divisions = set(conn.execute(select(enterprises.c.division_code)).scalars())
        by_category: dict[str, int] = dict(
            conn.execute(
                select(records.c.category, func.count()).group_by(records.c.category)
            ).all()
        )
        unversioned = conn.execute(
            select(func.count())
            .select_from(records.outerjoin(record_versions))
            .where(record_versions.c.record_id.is_(None))
        ).scalar_one()
        details = {
            table.name: conn.execute(
                select(func.count())
                .select_from(records.join(record_versions).join(table))
                .where(records.c.category == category)
            ).scalar_one()
            for table, category in ((penalty_details, "penalty"), (license_details, "license"))
        }
        created = conn.execute(select(enterprises.c.created_at)).scalars().first()
    assert summary.enterprises == len(codes) == len(set(codes)) == 300
    assert all(validate_credit_code(code) == code for code in codes)
    assert all(division.startswith("5101") for division in divisions)
    assert set(by_category) == set(CATEGORIES) - NOT_CONNECTED
    assert by_category == summary.records
    assert 8 <= sum(by_category.values()) / 300 <= 12
    assert unversioned == 0
    assert details == {"penalty_details": by_category["penalty"],
                       "license_details": by_category["license"]}  # fmt: skip
    assert created is not None and created.year >= 2026  # readable as a timestamp


def test_record_data_is_what_ingestion_would_store(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=200)
    with engine.connect() as conn:
        rows = stored(conn)
        penalty_rows = {
            row.source_record_id: row
            for row in conn.execute(
                select(records.c.source_record_id, penalty_details).join(
                    penalty_details, penalty_details.c.record_id == records.c.id
                )
            )
        }
    departments = set()
    for row in rows:
        data = row.data
        record = SCHEMAS[row.category].model_validate(data)
        # The personal fields stand in for a name and ID number the store never sees.
        expected = {**record.normalise(KEY), **{k: data[k] for k in PERSONAL if k in data}}
        assert expected == data
        assert record.effective_date() == row.effective_date
        assert record.subject_kind == row.subject_kind
        digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
        assert digest == row.content_sha256
        assert data["source_department"] == row.source_department
        departments.add(row.source_department)
        if row.category == "penalty":
            detail = penalty_rows[data["record_id"]]
            assert detail.decision_number == data["decision_number"]
            assert detail.fine_fen == data["fine_fen"]
            assert detail.decision_date.isoformat() == data["decision_date"]
            assert detail.publication_until.isoformat() == data["publication_until"]
    assert len(departments) >= 10


def test_no_personal_data_in_clear(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=300)
    with engine.connect() as conn:
        reps = conn.execute(select(enterprises.c.legal_rep_hash, enterprises.c.legal_rep_masked))
        masks_by_person: dict[str, set[str]] = {}
        for rep_hash, masked in reps:
            masks_by_person.setdefault(rep_hash, set()).add(masked)
        payloads = [orjson.dumps(row.data).decode() for row in stored(conn)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", rep) for rep in masks_by_person)
    assert all("*" in mask for masks in masks_by_person.values() for mask in masks)
    # Some people stand behind several enterprises, each time under the same (masked) name.
    assert len(masks_by_person) < 300
    assert all(len(masks) == 1 for masks in masks_by_person.values())
    spec = Spec(seed=SEED, as_of=AS_OF, pii_key=KEY)
    id_numbers = {legal_representative(spec, index).resident_id for index in range(300)}
    assert not [p for p in payloads if "legal_rep_name" in p or "legal_rep_id" in p]
    assert not [p for p in payloads if any(number in p for number in id_numbers)]


def test_sample_file_lists_each_profile_as_stored(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=600)
    with (tmp_path / "enterprises.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["credit_code", "name", "profile"]
        samples = list(reader)
    assert set(Counter(row["profile"] for row in samples)) == set(PROFILES)
    assert max(Counter(row["profile"] for row in samples).values()) <= 30
    with engine.connect() as conn:
        facts = {
            row.credit_code: row
            for row in conn.execute(
                select(enterprises.c.credit_code, enterprises.c.name, enterprises.c.status,
                       enterprises.c.registered_on)
            )
        }  # fmt: skip
        held: dict[str, set[str]] = {}
        for code, category in conn.execute(select(records.c.credit_code, records.c.category)):
            held.setdefault(code, set()).add(category)
    for row in samples:
        fact, profile = facts[row["credit_code"]], row["profile"]
        assert fact.name == row["name"]
        assert (fact.status == "deregistered") == (profile == "deregistered")
        # New ones were registered 10-170 days before as_of, all others over half a year.
        assert (fact.registered_on > AS_OF - timedelta(days=180)) == (profile == "new")
        wanted = {"penalised": {"penalty"}, "repaired": {"penalty", "credit_repair"},
                  "black_listed": {"penalty", "black_list", "judgment_debtor"}}  # fmt: skip
        assert wanted.get(profile, set()) <= held[row["credit_code"]]


def test_repairs_point_at_a_penalty_of_the_same_enterprise(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=300)
    with engine.connect() as conn:
        rows = stored(conn)
    penalties = {
        (row.data["record_id"], row.source_department): row.data
        for row in rows
        if row.category == "penalty"
    }
    repairs = [row.data for row in rows if row.category == "credit_repair"]
    assert repairs
    for repair in repairs:
        target = penalties[(repair["repaired_record_id"], repair["repaired_source_department"])]
        assert target["credit_code"] == repair["credit_code"]
        assert target["severity"] != "minor"  # only published penalties need repairing
        assert repair["effective_on"] >= target["decision_date"]


def canonical(engine: Engine) -> tuple[list[bytes], list[tuple[Any, ...]]]:
    """Records' data as a sorted multiset, and enterprise rows, timestamps aside."""
    with engine.connect() as conn:
        data = sorted(orjson.dumps(row.data, option=orjson.OPT_SORT_KEYS) for row in stored(conn))
        columns = [c for c in enterprises.c if c.name not in ("created_at", "updated_at")]
        rows = sorted(tuple(row) for row in conn.execute(select(*columns)))
    return data, rows


def test_same_seed_same_data_whatever_the_chunking(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=250)
    first = canonical(engine)
    seed(engine, tmp_path, n=250, reset=True, chunk_size=5_000)
    assert canonical(engine) == first
    # A second store, always SQLite, gets byte-identical data too.
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    seed(other, tmp_path / "other", n=250, chunk_size=70)
    assert canonical(other) == first
    other.dispose()
    seed(engine, tmp_path, n=250, reset=True, seed=SEED + 1)
    assert canonical(engine)[0] != first[0]


def test_refuses_a_store_with_data_unless_reset(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=20)
    ingest(engine, "penalty", penalty(1))
    with pytest.raises(SeedError, match="--reset"):
        seed(engine, tmp_path, n=30)
    with engine.connect() as conn:
        assert count(conn, enterprises) == 20  # nothing was touched
    summary = seed(engine, tmp_path, n=30, reset=True)
    with engine.connect() as conn:
        assert count(conn, enterprises) == summary.enterprises == 30
        # The old runs are gone; the seed leaves one finished feed per connected category.
        assert count(conn, ingest_runs) == len(summary.records) == 12 - len(NOT_CONNECTED)
        assert count(conn, records) == sum(summary.records.values())
        # The ingested penalty is gone with the rest.
        assert (
            conn.execute(
                select(func.count()).where(records.c.source_record_id == "P-000001")
            ).scalar_one()
            == 0
        )


def test_ingestion_after_seeding_gets_fresh_ids(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=300)
    with engine.connect() as conn:
        top_record = conn.execute(select(func.max(records.c.id))).scalar_one()
        top_enterprise = conn.execute(select(func.max(enterprises.c.id))).scalar_one()
    assert [o.outcome for o in ingest(engine, "penalty", penalty(1), penalty(2))] == [
        "accepted",
        "accepted",
    ]
    assert [o.outcome for o in ingest(engine, "registration", registration(3))] == ["accepted"]
    with engine.connect() as conn:
        new_records = conn.execute(
            select(records.c.id).where(records.c.source_record_id.in_(["P-000001", "P-000002"]))
        ).scalars()
        assert min(new_records) > top_record
        new_enterprise = conn.execute(
            select(enterprises.c.id).where(enterprises.c.name == "成都测试3号有限公司")
        ).scalar_one()
        assert new_enterprise > top_enterprise


def test_reingesting_seeded_records_finds_duplicates(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=300)
    with engine.connect() as conn:
        rows = stored(conn)
        index_of = dict(conn.execute(select(enterprises.c.credit_code, enterprises.c.id)).all())
    seeded_penalty = next(row.data for row in rows if row.category == "penalty")
    rating = next(row.data for row in rows if row.category == "tax_rating")
    # The feed line behind the penalty: the person in clear, as a department sends it.
    spec = Spec(seed=SEED, as_of=AS_OF, pii_key=KEY)
    person = legal_representative(spec, index_of[seeded_penalty["credit_code"]] - 1)
    line = {k: v for k, v in seeded_penalty.items() if k not in PERSONAL}
    line.update(legal_rep_name=person.name, legal_rep_id_number=person.resident_id)
    assert [o.outcome for o in ingest(engine, "penalty", line)] == ["duplicate"]
    assert [o.outcome for o in ingest(engine, "tax_rating", rating)] == ["duplicate"]
    changed = {**rating, "rating": "D" if rating["rating"] != "D" else "A"}
    assert [o.outcome for o in ingest(engine, "tax_rating", changed)] == ["updated"]


def test_large_loads_rebuild_the_indexes_they_defer(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("indexes are deferred on PostgreSQL only")

    def index_names() -> set[str]:
        inspector = inspect(engine)
        return {
            str(ix["name"]) for t in ("records", "enterprises") for ix in inspector.get_indexes(t)
        }

    before = index_names()
    assert {"ix_records_credit_code_category", "ix_enterprises_legal_rep_hash"} <= before
    monkeypatch.setattr(seed_module, "DEFER_INDEXES_FROM", 1)
    seed(engine, tmp_path, n=50)
    assert index_names() == before
    # A run killed mid-load leaves them dropped: the next seed builds them again.
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_records_credit_code_category"))
    seed(engine, tmp_path, n=50, reset=True)
    assert index_names() == before


def test_the_demo_world_has_a_stale_feed_and_a_category_never_fed(
    engine: Engine, tmp_path: Path
) -> None:
    """Reports on seeded enterprises show every state of completeness: the seed
    leaves the utilities' feed stale and the housing fund centre unconnected."""
    from gateway.reports.build import ReportBuilder
    from gateway.reports.repository import latest_feeds
    from gateway.reports.sections import completeness

    seed(engine, tmp_path, n=30)
    with engine.connect() as conn:
        feeds = latest_feeds(conn)
        held = set(conn.execute(select(records.c.category).distinct()).scalars())
    assert NOT_CONNECTED and not NOT_CONNECTED & (set(feeds) | held)
    now = datetime.now(UTC)
    assert {c for c, at in feeds.items() if now - at > timedelta(days=60)} == set(STALE_FEEDS_DAYS)
    sections = ReportBuilder.load(Path(__file__).resolve().parents[2] / "config").sections
    state = completeness(sections, feeds, now)
    assert state["housing_fund"]["status"] == "unavailable"
    assert state["utilities"]["status"] == "partial"
    assert "older than" in state["utilities"]["reason"]
    assert state["penalties"]["status"] == "complete"
    assert "delivered" in state["penalties"]["reason"]
