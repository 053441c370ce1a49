"""Backup and restore as docs/operations.md tells an operator to do it.

A real PostgreSQL archives its WAL (deploy.pgbackup's archive_command), is
migrated by `xyd db upgrade`, and serves `xyd serve`. Audited traffic, a base
backup, more audited traffic, a WAL switch; the server is killed. Restored into
a fresh directory on a new port, the store holds every audit entry and `xyd
audit verify` passes against the witness; restored to a point in time before
the second batch, it holds exactly the first batch's entries, verifies against
the witness as it was then, and the live witness names what the restore dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from deploy.pgbackup import BIN_DIR, archive_settings, conf_lines
from gateway.store.tables import audit_entries
from testkit.clients import ClientKey, register
from testkit.services import Postgres, RedisServer, free_port, postgres_server
from tests.faults.conftest import seed_enterprises
from tests.faults.served import Served, consent_body, xyd_serve

pytestmark = pytest.mark.skipif(not BIN_DIR.exists(), reason=f"no PostgreSQL 15 at {BIN_DIR}")
REPORT = "/v1/enterprises/{code}/credit-report"


@dataclass(frozen=True)
class Trail:
    count: int
    last_seq: int
    request_ids: frozenset[str]


def trail(engine: Engine) -> Trail:
    with engine.connect() as conn:
        count, last = conn.execute(
            select(func.count(), func.coalesce(func.max(audit_entries.c.seq), 0))
        ).one()
        ids = conn.execute(select(audit_entries.c.request_id)).scalars()
        return Trail(int(count), int(last), frozenset(str(i) for i in ids))


def audited_batch(served: Served, bank: ClientKey, rounds: int) -> list[str]:
    """`rounds` consents, each with a report fetched under it: request ids of audited 2xx."""
    audited = []
    with httpx.Client(base_url=served.base, timeout=10) as client:
        got = client.post("/oauth/token", data=bank.form())
        assert got.status_code == 200, got.text
        auth = {"Authorization": f"Bearer {got.json()['access_token']}"}
        for _ in range(rounds):
            body = consent_body()
            made = client.post("/v1/consents", json=body, headers=auth)
            assert made.status_code == 201, made.text
            report = client.get(REPORT.format(code=body["credit_code"]),
                                headers={**auth, "Consent-Id": made.json()["id"]})  # fmt: skip
            assert report.status_code == 200, report.text
            audited += [made.headers["x-request-id"], report.headers["x-request-id"]]
    return audited


def witnessed_up_to(witness: Path, seq: int, seconds: float = 15.0) -> None:
    """Wait until the sealer has exported a checkpoint at `seq` (the head)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            lines = witness.read_text().splitlines()
            if any(json.loads(line)["seq"] == seq for line in lines):
                return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at seq {seq} in {witness} after {seconds} s")


def archived(pg: Engine, archive: Path, seconds: float = 30.0) -> None:
    """Switch to a new WAL segment and wait until the finished one is archived."""
    with pg.connect() as conn:
        segment = conn.execute(text("SELECT pg_walfile_name(pg_switch_wal())")).scalar_one()
    deadline = time.monotonic() + seconds
    while not (archive / segment).exists():
        assert time.monotonic() < deadline, f"{segment} not archived in {seconds} s"
        time.sleep(0.1)


def pgbackup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.pgbackup", *args],
                          capture_output=True, text=True, timeout=150)  # fmt: skip


def verify(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", *args],
        env={**env, "XYD_DATABASE_URL": url}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@contextlib.contextmanager
def restored(
    root: Path, name: str, backup: Path, archive: Path, target_time: datetime | None = None
) -> Iterator[str]:
    """A server restored into root/name on a new port by the runbook's command; its
    URL; stopped afterwards."""
    server = Postgres(BIN_DIR, root / name, root / name, free_port())
    until = ["--target-time", target_time.isoformat()] if target_time is not None else []
    try:
        done = pgbackup("restore", "--backup", str(backup), "--archive-dir", str(archive),
                        "--data-dir", str(server.data_dir), "--port", str(server.port),
                        "--wait", "90", *until)  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield server.url("xyd")
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()


@pytest.fixture
def pg_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="xyd-backup-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    (root / "archive").mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "archive", "postgres", "postgres")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def archiving_postgres(root: Path) -> Iterator[Postgres]:
    with postgres_server(root / "primary") as server:
        with (server.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(conf_lines(archive_settings(root / "archive")))
        server.stop()
        server.start()
        yield server


def test_restore_replays_the_archive_and_the_trail_verifies(
    pg_root: Path, redis_srv: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = pg_root / "archive"
    monkeypatch.setenv("XYD_AUDIT_CHECKPOINT_EVERY", "10")
    monkeypatch.setenv("XYD_AUDIT_SEAL_S", "0.2")
    state = tmp_path / ".xyd"
    env = {**os.environ, "XYD_STATE_DIR": str(state), "XYD_PII_KEY": "test-pii-key"}
    witness = state / "audit-witness.jsonl"
    with archiving_postgres(pg_root) as pg:
        admin = create_engine(pg.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE xyd"))
        url = pg.url("xyd")
        migrate = [sys.executable, "-m", "gateway.cli", "db", "upgrade"]
        subprocess.run(migrate, env={**env, "XYD_DATABASE_URL": url}, check=True, timeout=120)
        engine = create_engine(url)
        seed_enterprises(engine, 1)
        bank = register(engine, "bank-a", org_code="BOCD")
        with xyd_serve(tmp_path, url, redis_srv.url, workers=1) as served:
            first_ids = audited_batch(served, bank, 8)
            first = trail(engine)
            witnessed_up_to(witness, first.last_seq)
            shutil.copy(witness, tmp_path / "witness-then.jsonl")
            took = pgbackup("base", "--backup-dir", str(tmp_path / "backups"),
                            "--port", str(pg.port))  # fmt: skip
            assert took.returncode == 0, took.stderr
            backup = Path(took.stdout.strip())
            with engine.connect() as conn:
                before_second: datetime = conn.execute(text("SELECT now()")).scalar_one()
            time.sleep(1.0)
            second_ids = audited_batch(served, bank, 8)
            whole = trail(engine)
            witnessed_up_to(witness, whole.last_seq)
        archived(admin, archive)
        engine.dispose()
        admin.dispose()
        pg.pg_ctl("-m", "immediate", "-w", "stop")  # the machine is lost

    assert set(first_ids) <= first.request_ids and set(second_ids) <= whole.request_ids
    assert whole.count > first.count

    with restored(pg_root, "full", backup, archive) as full_url:
        again = create_engine(full_url)
        assert trail(again) == whole
        again.dispose()
        checked = verify(env, full_url, "--witness", str(witness))
        assert checked.returncode == 0, checked.stderr
        assert f"{whole.count} entries" in checked.stdout

    with restored(pg_root, "pitr", backup, archive, target_time=before_second) as pitr_url:
        then = create_engine(pitr_url)
        assert trail(then) == first
        then.dispose()
        checked = verify(env, pitr_url, "--witness", str(tmp_path / "witness-then.jsonl"))
        assert checked.returncode == 0, checked.stderr
        # The live witness saw entries this restore dropped, and says so.
        dropped = verify(env, pitr_url, "--witness", str(witness))
        assert dropped.returncode == 1 and "truncated" in dropped.stderr, dropped.stderr
