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
