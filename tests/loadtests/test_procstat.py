"""The CPU meters the benchmark reports beside its latencies."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loadtests import procstat


def _busy(seconds: float) -> None:
    """Spend `seconds` of this process's CPU time, then stop. Counted in CPU time,
    not on the wall clock: on a loaded machine a wall-clock loop gets a fraction
    of a core and the meters would rightly read less. Bounded at 30 s of wall time."""
    until = time.process_time() + seconds
    give_up = time.monotonic() + 30
    while time.process_time() < until and time.monotonic() < give_up:
        sum(range(1000))


def test_machine_meter_is_the_busy_share_of_every_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procstat, "PROC", tmp_path)
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 50 0 0 0 40 0\ncpu0 50 0 25 400 25 0 0 0 20 0\n")
    meter = procstat.MachineMeter()
    meter.start()
    # 300 ticks pass: 150 busy (user 90, system 30, softirq 20, steal 10), 150 idle or waiting.
    stat.write_text("cpu  190 0 80 920 80 0 20 10 70 0\ncpu0 95 0 40 460 40 0 10 5 35 0\n")
    assert meter.stop() == pytest.approx(0.5)


def test_machine_meter_reads_this_machine() -> None:
    meter = procstat.MachineMeter()
    meter.start()
    _busy(0.3)
    share = meter.stop()
    # One core of os.cpu_count() spun; others may be busy or idle.
    assert 0.5 / (os.cpu_count() or 1) < share <= 1.0


def test_cpu_meter_counts_this_process() -> None:
    meter = procstat.CpuMeter([os.getpid()])
    meter.start()
    _busy(0.2)
    assert 0.1 <= meter.stop() <= 1.0
