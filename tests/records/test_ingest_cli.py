"""`xyd ingest` as a user runs it: a real process, a real file, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from testkit.builders import MARKET, ndjson, penalty


def xyd(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XYD_STATE_DIR": str(state), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ingest_command_counts_and_reruns_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert xyd("db", "upgrade", state=state).returncode == 0
    feed = tmp_path / "feed.ndjson"
    feed.write_bytes(
        ndjson(penalty(1), penalty(2), penalty(3, fine_wan="x")) + "坏行\n".encode("gbk")
    )

    first = xyd("ingest", str(feed), "--category", "penalty", "--department", MARKET, state=state)
    assert first.returncode == 0, first.stderr
    assert "│        2 │       0 │         0 │        2 │" in first.stdout
    rejects = (tmp_path / "feed.ndjson.rejects.ndjson").read_bytes().splitlines()
    assert [orjson.loads(r)["line"] for r in rejects] == [3, 4]

    again = xyd("ingest", str(feed), "--category", "penalty", "--department", MARKET, state=state)
    assert "│        0 │       0 │         2 │        2 │" in again.stdout


def test_ingest_command_refuses_unknown_category_and_missing_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    xyd("db", "upgrade", state=state)
    feed = tmp_path / "feed.ndjson"
    feed.write_bytes(ndjson(penalty(1)))
    unknown = xyd("ingest", str(feed), "--category", "gossip", "--department", MARKET, state=state)
    assert unknown.returncode == 2
    assert "unknown category 'gossip'" in unknown.stderr
    missing = xyd(
        "ingest",
        str(tmp_path / "nope.csv"),
        "--category",
        "penalty",
        "--department",
        MARKET,
        state=state,
    )
    assert missing.returncode == 2
