"""A serving worker settles its collector once started; an embedded app leaves it alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import heap

# Run in a process of its own: freezing and thresholds are the whole interpreter's.
_PROBE = """
import gc, json, sys
from fastapi.testclient import TestClient
from gateway.app import create_app, create_served_app
factory = create_served_app if sys.argv[1] == "served" else create_app
before = gc.get_threshold()[0]
with TestClient(factory()) as client:
    assert client.get("/healthz").status_code == 200
    print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                      "young": gc.get_threshold()[0]}))
"""


def _probe(kind: str, tmp_path: Path) -> dict[str, int]:
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path / ".xyd")}
    env.pop("XYD_DATABASE_URL", None)
    env.pop("XYD_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, kind],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("kind", ["served", "embedded"])
def test_only_a_served_app_settles_its_heap(kind: str, tmp_path: Path) -> None:
    found = _probe(kind, tmp_path)
    assert found["before"] != heap.YOUNG_THRESHOLD  # the interpreter's own, until start-up
    if kind == "served":
        # The start-up objects (tens of thousands: the imported gateway) are frozen.
        assert found["frozen"] > 10_000
        assert found["young"] == heap.YOUNG_THRESHOLD
    else:
        assert found["frozen"] == 0
        assert found["young"] == found["before"]
