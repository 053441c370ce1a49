"""The adapter benches run end to end, small, on SQLite, and print what figures.py reads."""

from __future__ import annotations

import re
import subprocess
import sys

from loadtests import figures
from loadtests.stores import ROOT, clean_env


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=clean_env(), capture_output=True,
        text=True, timeout=180, check=True,
    )  # fmt: skip
    return done.stdout


def test_push_bench_sends_from_concurrent_senders() -> None:
    out = run("loadtests.adapter_bench", "--messages", "40", "--senders", "4")
    assert "4 senders at once" in out
    read = figures.read_adapters(out)
    for platform in ("kechuangtong", "nongdaitong", "chuangfu-tianfu"):
        assert f"{platform} " in read and "CPU a message: gateway" in read
    # Every message answered by the gateway, none lost on the way.
    assert "'0'" not in out and "'503'" not in out and "9999" not in out


def test_pull_bench_times_a_sync() -> None:
    out = run("loadtests.pull_bench", "--rows", "600")
    assert "rows/s" in figures.read_pull(out)
    found = re.search(r"\(accepted (\d+), duplicate (\d+)\)", out)
    assert found is not None
    # The feed's valid events stored, its redeliveries found: its malformed ones neither.
    assert 500 < int(found[1]) < 600 and int(found[2]) > 0
