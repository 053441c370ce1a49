"""The ingest benchmark, run small: its printout is what `make bench` reads."""

from __future__ import annotations

import subprocess
import sys

from loadtests import figures
from loadtests.stores import ROOT, clean_env


def test_a_small_run_prints_rates_and_cpu_that_make_bench_reads() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.ingest_bench", "--lines", "300", "--workers", "1"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "{'accepted': 300}" in done.stdout
    assert "{'duplicate': 300}" in done.stdout
    shown = figures.read_ingest(done.stdout)
    # Its own throw-away server: PostgreSQL's processes are counted too.
    assert shown.count("PostgreSQL") == 2, shown
    assert "records/s new (" in shown and "records/s all duplicates (" in shown
