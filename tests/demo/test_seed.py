"""The demo seeder on SQLite and PostgreSQL: valid, complete, deterministic, safe."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from gateway.demo.generate import PROFILES
from gateway.demo.seed import SeedError, seed_demo
from gateway.identifiers import validate_credit_code
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.store.tables import (
    CATEGORIES,
    enterprises,
    license_details,
    penalty_details,
    record_versions,
    records,
)
from tests.builders import ndjson, penalty

KEY = b"test-pii-key"
AS_OF = date(2026, 11, 26)


def seed(engine: Engine, out: Path, n: int = 300, **kwargs):  # type: ignore[no-untyped-def]
    # Small chunks, so PostgreSQL goes through the worker processes and COPY.
    return seed_demo(
        engine, KEY, enterprises=n, seed=7, out_dir=out, as_of=AS_OF, chunk_size=100, **kwargs
    )


def test_seed_writes_valid_enterprises_and_every_category(engine: Engine, tmp_path: Path) -> None:
    summary = seed(engine, tmp_path)
    with engine.connect() as conn:
        codes = conn.execute(select(enterprises.c.credit_code)).scalars().all()
        by_category = dict(
            conn.execute(
                select(records.c.category, func.count()).group_by(records.c.category)
            ).all()
        )
        versions = conn.execute(select(func.count()).select_from(record_versions)).scalar_one()
        penalties = conn.execute(select(func.count()).select_from(penalty_details)).scalar_one()
        licenses = conn.execute(select(func.count()).select_from(license_details)).scalar_one()
        divisions = set(conn.execute(select(enterprises.c.division_code)).scalars())
    assert len(codes) == len(set(codes)) == summary.enterprises == 300
    for code in codes:
        assert validate_credit_code(code) == code
    assert all(d.startswith("5101") for d in divisions)
    assert set(by_category) == set(CATEGORIES)
    assert by_category == summary.records
    assert versions == sum(by_category.values())
    assert penalties == by_category["penalty"]
    assert licenses == by_category["license"]
    assert 8 <= versions / 300 <= 12  # about ten records an enterprise


def test_sample_file_lists_every_profile(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=2000)
    with (tmp_path / "enterprises.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["credit_code", "name", "profile"]
    profiles = Counter(row["profile"] for row in rows)
    assert set(profiles) == set(PROFILES)
    assert all(count <= 30 for count in profiles.values())
    with engine.connect() as conn:
        stored = dict(conn.execute(select(enterprises.c.credit_code, enterprises.c.status)).all())
    for row in rows:
        assert row["credit_code"] in stored
        assert (stored[row["credit_code"]] == "deregistered") == (row["profile"] == "deregistered")


def test_same_seed_same_data(engine: Engine, tmp_path: Path) -> None:
    def snapshot() -> list[tuple[str, str]]:
        with engine.connect() as conn:
            return sorted(
                conn.execute(select(records.c.source_record_id, records.c.content_sha256)).all()
            )

    seed(engine, tmp_path, n=250)
    first = snapshot()
    seed_demo(engine, KEY, enterprises=250, seed=7, out_dir=tmp_path, as_of=AS_OF, reset=True)
    assert snapshot() == first  # chunking does not change the data
    seed_demo(engine, KEY, enterprises=250, seed=8, out_dir=tmp_path, as_of=AS_OF, reset=True)
    assert snapshot() != first


def test_refuses_a_store_with_data_unless_reset(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=20)
    with pytest.raises(SeedError, match="--reset"):
        seed(engine, tmp_path, n=20)
    summary = seed(engine, tmp_path, n=30, reset=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(enterprises)).scalar_one() == 30
    assert summary.enterprises == 30


def test_ingestion_after_seeding_gets_fresh_ids(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=50)
    with engine.connect() as conn:
        top = conn.execute(select(func.max(records.c.id))).scalar_one()
    outcomes = []
    Ingestor(engine, "penalty", KEY, 10).run(
        read_ndjson(ndjson(penalty(1), penalty(2)).splitlines()), "t", outcomes.append
    )
    assert [o.outcome for o in outcomes] == ["accepted", "accepted"]
    with engine.connect() as conn:
        new_ids = (
            conn.execute(
                select(records.c.id).where(records.c.source_record_id.in_(["P-000001", "P-000002"]))
            )
            .scalars()
            .all()
        )
    assert min(new_ids) > top


def test_no_personal_data_in_clear(engine: Engine, tmp_path: Path) -> None:
    seed(engine, tmp_path, n=100)
    with engine.connect() as conn:
        masks = conn.execute(select(enterprises.c.legal_rep_masked)).scalars().all()
        hashes = conn.execute(select(enterprises.c.legal_rep_hash)).scalars().all()
    assert all("*" in mask for mask in masks)
    assert all(len(h) == 64 for h in hashes)
