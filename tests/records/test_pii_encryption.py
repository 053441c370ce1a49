"""Personal fields sealed at rest, on SQLite and PostgreSQL: recovered only with the key,
never in the stored JSON nor in a report; rotation and resumable re-encryption."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update
from starlette.testclient import TestClient

from gateway.keys.pii import KeyRing, PersonalDataError, load_key_ring, rotate_key_ring
from gateway.records.personal import recover, reencrypt, rows_per_key_version
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, LineOutcome
from gateway.settings import Settings
from gateway.store.tables import record_versions, records
from testkit.builders import code, ndjson, penalty, resident_id
from testkit.clients import ClientKey
from tests.reports.test_reports_api import bearer, consent, fetch, recent_penalty

KEY = b"test-pii-key"
REP_ID = resident_id("51010419750202456")
PARTY_ID = resident_id("51010519900303789")


def person_penalty(n: int, **overrides: Any) -> dict[str, Any]:
    """A penalty on a natural person, with a company-style legal representative block too."""
    fields: dict[str, Any] = {
        "party_category": "自然人",
        "credit_code": None,
        "subject_name": "王小明",
        "party_id_number": PARTY_ID,
        "legal_rep_name": "赵六丰",
        "legal_rep_id_number": REP_ID,
    }
    fields.update(overrides)
    return penalty(n, **fields)


def ingest(
    engine: Engine, keys: KeyRing | None, *rows: dict[str, Any], batch: int = 3
) -> list[LineOutcome]:
    outcomes: list[LineOutcome] = []
    Ingestor(engine, "penalty", KEY, batch, keys=keys).run(
        read_ndjson(ndjson(*rows).splitlines()), "test", outcomes.append
    )
    return outcomes


def record_id(engine: Engine, source_record_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(records.c.id).where(records.c.source_record_id == source_record_id)
            ).scalar_one()
        )


def versions(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(record_versions).order_by(record_versions.c.record_id)))


def clear_values(row: dict[str, Any]) -> set[str]:
    return {v for k, v in row.items() if k in ("legal_rep_name", "legal_rep_id_number",
                                               "party_id_number") and v} | (
        {row["subject_name"]} if row.get("party_category") == "自然人" else set()
    )  # fmt: skip


def test_round_trip_and_nothing_clear_in_the_stored_json(
    engine: Engine, settings: Settings
) -> None:
    keys = load_key_ring(settings)
    rows = [
        person_penalty(1),
        penalty(2),
        penalty(3, legal_rep_name=None, legal_rep_id_number=None),
    ]
    assert [o.outcome for o in ingest(engine, keys, *rows)] == ["accepted"] * 3
    stored = {row.data["record_id"]: row for row in versions(engine)}
    for row in stored.values():
        text = orjson.dumps(row.data).decode()
        for value in (REP_ID, PARTY_ID, "王小明", "赵六丰", "张三丰", resident_id()):
            assert value not in text
    assert stored["P-000001"].data["subject_name"] == "王*明"
    assert stored["P-000001"].personal.startswith("v1.")
    assert stored["P-000001"].personal_key_version == 1
    assert stored["P-000003"].personal is None and stored["P-000003"].personal_key_version is None
    with engine.connect() as conn:
        assert recover(conn, keys, record_id(engine, "P-000001")) == {
            "subject_name": "王小明",
            "party_id_number": PARTY_ID,
            "legal_rep_name": "赵六丰",
            "legal_rep_id_number": REP_ID,
        }
        assert recover(conn, keys, record_id(engine, "P-000002")) == {
            "legal_rep_name": "张三丰",
            "legal_rep_id_number": resident_id(),
        }
        assert recover(conn, keys, record_id(engine, "P-000003")) == {}
        assert rows_per_key_version(conn) == {1: 2}


def test_same_file_again_is_duplicate_and_a_personal_only_change_a_new_version(
    engine: Engine, settings: Settings
) -> None:
    keys = load_key_ring(settings)
    ingest(engine, keys, person_penalty(1))
    # A fresh nonce every time, yet re-delivering the same record changes nothing.
    assert [o.outcome for o in ingest(engine, keys, person_penalty(1))] == ["duplicate"]
    # Same mask (王*明), same ID number: only the sealed name differs.
    changed = ingest(engine, keys, person_penalty(1, subject_name="王大明"))
    assert [(o.outcome, o.version) for o in changed] == [("updated", 2)]
    rid = record_id(engine, "P-000001")
    with engine.connect() as conn:
        assert recover(conn, keys, rid)["subject_name"] == "王大明"
        assert recover(conn, keys, rid, version=1)["subject_name"] == "王小明"
    # Without a key ring nothing personal is kept (callers that only need hashes).
    ingest(engine, None, person_penalty(2))
    with engine.connect() as conn:
        assert recover(conn, keys, record_id(engine, "P-000002")) == {}


def test_tampered_moved_or_foreign_ciphertext_is_refused(
    engine: Engine, settings: Settings
) -> None:
    keys = load_key_ring(settings)
    ingest(engine, keys, person_penalty(1), person_penalty(2))
    first, second = record_id(engine, "P-000001"), record_id(engine, "P-000002")
    with engine.connect() as conn:
        with pytest.raises(PersonalDataError):
            recover(conn, KeyRing({1: bytes(32)}), first)  # another deployment's key
        with pytest.raises(PersonalDataError):
            recover(conn, KeyRing({2: keys.keys[1]}), first)  # the key, under another version
    sealed = {row.record_id: row.personal for row in versions(engine)}
    head, nonce, body = sealed[first].split(".")
    with engine.begin() as conn:
        # Record 2 given record 1's ciphertext: bound to record 1, it does not open.
        conn.execute(
            update(record_versions)
            .where(record_versions.c.record_id == second)
            .values(personal=sealed[first])
        )
        conn.execute(
            update(record_versions)
            .where(record_versions.c.record_id == first)
            .values(personal=f"{head}.{nonce}.{body[:-3]}{'AAA' if body[-3:] != 'AAA' else 'BBB'}")
        )
    with engine.connect() as conn:
        for rid in (first, second):
            with pytest.raises(PersonalDataError):
                recover(conn, keys, rid)


def many(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        person_penalty(offset + i, subject_name=f"王{offset + i}明", credit_code=None)
        for i in range(1, n + 1)
    ]


def recovered(engine: Engine, keys: KeyRing) -> dict[int, dict[str, str]]:
    with engine.connect() as conn:
        ids = conn.execute(select(records.c.id)).scalars().all()
        return {rid: recover(conn, keys, rid) for rid in ids}


def test_rotate_then_reencrypt_leaves_nothing_under_the_old_version(
    engine: Engine, settings: Settings
) -> None:
    ingest(engine, load_key_ring(settings), *many(23))
    before = recovered(engine, load_key_ring(settings))
    assert rotate_key_ring(settings) == 2
    keys = load_key_ring(settings)
    ingest(engine, keys, *many(4, offset=100))  # sealed under v2 from the start
    with engine.connect() as conn:
        assert rows_per_key_version(conn) == {1: 23, 2: 4}

    summary = reencrypt(engine, keys, batch_size=5)
    assert (summary.reencrypted, summary.batches, summary.remaining) == (23, 5, {2: 27})
    assert all(row.personal.startswith("v2.") for row in versions(engine))
    after = recovered(engine, keys)
    assert {rid: after[rid] for rid in before} == before
    assert after[record_id(engine, "P-000101")]["subject_name"] == "王101明"
    # v1 is no longer needed: a ring without it opens everything.
    assert recovered(engine, KeyRing({2: keys.keys[2]})) == after
    again = reencrypt(engine, keys, batch_size=5)
    assert (again.reencrypted, again.batches) == (0, 0)


class Crash(Exception):
    """The process dying between two batches."""


def test_reencrypt_interrupted_then_resumed(engine: Engine, settings: Settings) -> None:
    ingest(engine, load_key_ring(settings), *many(20), batch=7)
    before = recovered(engine, load_key_ring(settings))
    rotate_key_ring(settings)
    keys = load_key_ring(settings)
    batches = 0

    def crash_in_third_batch(rows: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise Crash  # the process dies before this batch commits

    with pytest.raises(Crash):
        reencrypt(engine, keys, batch_size=6, before_commit=crash_in_third_batch)
    with engine.connect() as conn:
        assert rows_per_key_version(conn) == {1: 8, 2: 12}  # two batches committed
    assert recovered(engine, keys) == before  # mixed versions: all still open

    summary = reencrypt(engine, keys, batch_size=6)
    assert (summary.reencrypted, summary.batches, summary.remaining) == (8, 2, {2: 20})
    assert recovered(engine, keys) == before


def test_cli_rotate_reencrypt_status(engine: Engine, settings: Settings) -> None:
    ingest(engine, load_key_ring(settings), *many(7))
    env = {
        "XYD_STATE_DIR": str(settings.state_dir),
        "XYD_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "XYD_PII_KEY": "test-pii-key",
        "PATH": "/usr/bin:/bin",
    }

    def xyd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "pii", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    rotated = xyd("rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "v2 is active" in rotated.stdout
    moved = xyd("reencrypt", "--batch-size", "3")
    assert moved.returncode == 0, moved.stderr
    assert "re-encrypted 7 rows in 3 batches onto v2" in moved.stdout
    assert "rows per key version: v2: 7 (active)" in moved.stdout
    status = xyd("status")
    assert status.returncode == 0, status.stderr
    assert "key versions v1, v2; active v2" in status.stdout
    assert "v2: 7 (active)" in status.stdout
    for run in (status, rotated, moved):
        assert "王1明" not in run.stdout + run.stderr
        assert (settings.state_dir / "pii-keys" / "2.key").read_text() not in run.stdout


def test_report_never_shows_the_sealed_values(
    app_client: TestClient, bank: ClientKey, engine: Engine, id_settings: Settings
) -> None:
    keys = load_key_ring(id_settings)
    row = recent_penalty(legal_rep_name="赵六丰", legal_rep_id_number=REP_ID)
    ingest(engine, keys, row)
    auth = bearer(app_client, bank)
    answer = fetch(app_client, auth, consent(app_client, auth)["id"])
    assert answer.status_code == 200, answer.text
    [shown] = answer.json()["sections"]["penalties"]["items"]
    assert shown["legal_rep_masked"] == "赵*丰"
    for value in ("赵六丰", REP_ID, *clear_values(row)):
        assert value not in answer.text
    [sealed] = [v.personal for v in versions(engine) if v.personal]
    assert sealed.startswith("v1.") and sealed not in answer.text
    with engine.connect() as conn:
        assert recover(conn, keys, record_id(engine, "P-NEW-1"))["legal_rep_name"] == "赵六丰"
    assert code(1) in answer.text
