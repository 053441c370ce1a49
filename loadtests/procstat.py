"""CPU time of process trees, read from /proc: steadier than req/s on a shared 2-core box.

A server's CPU per request is (utime + stime summed over its processes after
a round, minus before) / requests. Workers are children of the process we
started, PostgreSQL backends children of the postmaster, so each tree is
found afresh at every reading.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name sits in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def ticks(pids: Iterable[int]) -> dict[int, int]:
    """utime + stime per live process, in clock ticks."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = int(fields[11]) + int(fields[12])
    return out


class CpuMeter:
    """CPU seconds spent by the trees under `roots` between `start()` and `stop()`."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self.before: dict[int, int] = {}

    def snapshot(self) -> dict[int, int]:
        return ticks(pid for root in self.roots for pid in tree(root))

    def start(self) -> None:
        self.before = self.snapshot()

    def stop(self) -> float:
        after = self.snapshot()
        # A process born during the round counts from zero; one that died is lost
        # (servers keep their workers and pooled connections, so that is rare).
        spent = sum(now - self.before.get(pid, 0) for pid, now in after.items())
        return spent * TICK_S


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every CPU since boot, from /proc/stat's first line."""
    fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


class MachineMeter:
    """The share of the whole machine's CPU time that was busy between
    `start()` and `stop()`: 1.0 means every core ran all the time."""

    def __init__(self) -> None:
        self.before = (0, 0)

    def start(self) -> None:
        self.before = _machine_ticks()

    def stop(self) -> float:
        busy, total = _machine_ticks()
        elapsed = total - self.before[1]
        return (busy - self.before[0]) / elapsed if elapsed > 0 else 0.0
