"""Everything under the state directory is the gateway user's alone: files 0600,
directories 0700 (the store and its WAL, keys, the KEK, demo credentials,
serve.json, simulator.json), and an ingest's rejects file 0600 wherever it is."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from gateway.address import announced
from gateway.db import make_sync_engine
from gateway.private_files import private_dir
from gateway.settings import Settings
from testkit.builders import ndjson, registration, resident_id
from xyd_demo.platforms import write_credentials


def _xyd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done


def _open_to_others(root: Path) -> list[str]:
    """Every path under `root` (itself too) whose mode is not 0600 / 0700."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{path.relative_to(root.parent)} {mode:o}")
    return wrong


def test_the_cli_leaves_nothing_under_the_state_dir_readable_by_others(tmp_path: Path) -> None:
    state = tmp_path / ".xyd"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    env.update(XYD_STATE_DIR=str(state))
    _xyd(env, "db", "upgrade")
    _xyd(env, "demo", "seed", "--enterprises", "20")
    _xyd(env, "keys", "rotate")  # the KEK, made on first use
    person, number = "王小明", resident_id()
    lines = ndjson(
        registration(1, legal_rep_name=person, legal_rep_id_number=number, status="不是状态")
    )
    source = tmp_path / "registration.ndjson"
    source.write_bytes(lines)
    done = _xyd(
        env,
        "ingest",
        str(source),
        "--category",
        "registration",
        "--department",
        "成都市市场监督管理局",
    )
    rejects = tmp_path / "registration.ndjson.rejects.ndjson"
    assert rejects.exists(), done.stdout
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    text = rejects.read_text(encoding="utf-8")
    assert person not in text and number not in text and number[:14] not in text
    # The store with its WAL, the keys and the demo's credentials are all there.
    names = {p.name for p in state.rglob("*")}
    assert {"xyd.db", "pii.key", "kek.key", "demo", "enterprises.csv"} <= names, names
    assert _open_to_others(state) == []


def test_files_written_in_process_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """Without the CLI's umask (a test, another embedding): the explicit modes hold."""
    old = os.umask(0o022)
    try:
        state = tmp_path / ".xyd"
        write_credentials(state)  # the platforms' simulator.json, keys, secrets
        with announced(state, "127.0.0.1", 8000) as served:  # serve.json
            assert stat.S_IMODE(served.stat().st_mode) == 0o600
        assert (state / "demo" / "platforms" / "yingchuang" / "simulator.json").exists()
        assert _open_to_others(state) == []
    finally:
        os.umask(old)


def test_an_existing_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / ".xyd"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    private_dir(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_the_sqlite_store_and_its_wal_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        settings = Settings(state_dir=tmp_path / ".xyd")
        engine = make_sync_engine(settings)
        try:
            with engine.begin() as conn:  # open: SQLite's -wal and -shm exist now
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
                names = {p.name for p in settings.state_dir.iterdir()}
                assert {"xyd.db", "xyd.db-wal", "xyd.db-shm"} <= names, names
                assert _open_to_others(settings.state_dir) == []
        finally:
            engine.dispose()
    finally:
        os.umask(old)
