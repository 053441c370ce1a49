"""The figures the other load-test scripts measure, run small enough for `make bench`.

Each script runs in its own process, as its README row says to run it, so
its event loop and imports are its own; its printout is read back. A script
that fails or prints something unexpected costs its row, not the run: the
row says what went wrong.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loadtests.results import Figure
from loadtests.stores import ROOT, clean_env


@dataclass(frozen=True)
class Script:
    what: str
    args: list[str]
    read: Callable[[str], str]
    timeout_s: float = 240

    @property
    def how(self) -> str:
        # The throw-away servers' URLs change every run and mean nothing on the page.
        shown = ["URL" if a.startswith(("postgresql", "redis://")) else a for a in self.args]
        return f"`python -m {' '.join(shown)}`"


def run_script(script: Script, env: Mapping[str, str] | None = None) -> Figure:
    """Once more after a failure: on a shared machine a script can lose a race for a
    port or time out on a busy Redis, and one such accident should not cost the row."""
    figure = _run_once(script, env)
    return figure if figure.ok or "timed out" in figure.figure else _run_once(script, env)


def _run_once(script: Script, env: Mapping[str, str] | None) -> Figure:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", *script.args], cwd=ROOT, env=dict(env or clean_env()),
            capture_output=True, text=True, timeout=script.timeout_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Figure(script.what, f"timed out after {script.timeout_s:.0f} s", script.how, False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        why = f"failed (exit {done.returncode}): {tail[0][:160]}"
        return Figure(script.what, why, script.how, ok=False)
    how = f"{script.how} ({seconds:.0f} s)"
    try:
        return Figure(script.what, script.read(done.stdout), how)
    except (ValueError, IndexError, AttributeError):
        last = done.stdout.strip().splitlines()[-1:] or ["no output"]
        return Figure(script.what, f"unreadable output: {last[0][:160]}", how, ok=False)


def _find(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise ValueError(f"no match for {pattern!r}")
    return found


def read_cold(text: str) -> str:
    cold = _find(
        r"^cold build\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms\s+p99\s+([\d.]+) ms\s+\(n=(\d+)\)",
        text,
    )
    warm = _find(r"^warm request\s+p50\s+([\d.]+) ms.*?p99\s+([\d.]+) ms.*?([\d.]+) req/s", text)
    return (
        f"cold build p50 {cold[1]} ms, p95 {cold[2]} ms, p99 {cold[3]} ms (n={cold[4]}); "
        f"warm in process p50 {warm[1]} ms, p99 {warm[2]} ms, {warm[3]} req/s on one loop"
    )


def read_token(text: str) -> str:
    first = _find(r"^new token.*?:\s+([\d.]+) µs", text)
    seen = _find(r"^seen token.*?:\s+([\d.]+) µs", text)
    denylist = _find(r"^denylist check \(([^)]*?)\s*\)\s*:\s+([\d.]+) µs", text)
    return (
        f"verify a new token {first[1]} µs, a seen one {seen[1]} µs; "
        f"denylist check ({denylist[1]}) {denylist[2]} µs"
    )


def read_ingest(text: str) -> str:
    """Each run's rate, then its CPU a record: all of it, and by process."""
    shown = []
    for label, what in (("new records", "new"), ("all duplicates", "all duplicates")):
        found = _find(rf"^{label}.*?=\s+(\d+) records/s.*?CPU µs/record: (\d+) = (.+)$", text)
        shown.append(f"{int(found[1]):,} records/s {what} ({found[2]} µs CPU a record: {found[3]})")
    return ", ".join(shown)


def read_adapters(text: str) -> str:
    rates = re.findall(
        r"^(\S+)\s+\d+ messages in\s+[\d.]+ s =\s+(\d+) msg/s"
        r"(?:.*?CPU µs/message: gateway (\d+)(?:, PostgreSQL (\d+))?)?",
        text,
        re.MULTILINE,
    )
    if not rates:
        raise ValueError("no adapter rates")
    return ", ".join(
        f"{name} {rate} msg/s{_cpu('a message', 'gateway', ours, db)}"
        for name, rate, ours, db in rates
    )


def _cpu(unit: str, who: str, ours: str, database: str) -> str:
    if not ours:
        return ""
    return (
        f" (CPU {unit}: {who} {ours} µs" + (f", PostgreSQL {database} µs" if database else "") + ")"
    )


def read_pull(text: str) -> str:
    found = _find(
        r"^(\S+)\s+(\d+) rows in\s+[\d.]+ s =\s+(\d+) rows/s.*?"
        r"CPU µs/row: adapter (\d+)(?:, PostgreSQL (\d+))?",
        text,
    )
    cpu = _cpu("a row", "adapter", found[4], found[5] or "")
    return f"{int(found[3]):,} rows/s{cpu}, {int(found[2]):,} rows"


def read_monitor(text: str) -> str:
    found = _find(
        r"^(\d+) events, (\d+) worker\(s\): ([\d.]+) s = (\d+) events/s; (\d+) alerts", text
    )
    return f"{found[4]} events/s, {found[2]} worker ({found[1]} events, {found[5]} alerts)"


def read_wake(text: str) -> str:
    found = _find(r"^echo server CPU a message: (\d+) µs paced at (\d+)/s, (\d+) µs back to back",
                  text)  # fmt: skip
    paced, rate, burst = int(found[1]), int(found[2]), int(found[3])
    return (f"{paced} µs a message paced at {rate}/s, {burst} µs back to back "
            f"({paced / max(1, burst):.1f} times)")  # fmt: skip


def scripts(*, store_url: str, enterprises: int, redis_url: str) -> list[Script]:
    return [
        Script(
            f"credit report, cold build at {enterprises:,} enterprises",
            ["loadtests.report_bench", "--url", store_url, "--enterprises", str(enterprises),
             "--cold", "300", "--warm", "500", "--redis"],
            read_cold,
            # The first run at a million enterprises seeds the cached store: 8 minutes.
            timeout_s=900 if enterprises >= 100_000 else 300,
        ),
        Script("access-token verification (in process)",
               ["loadtests.token_bench", "--rounds", "1000", "--redis", redis_url], read_token),
        # Its own throw-away PostgreSQL, whose processes it can count: the CPU a
        # record is the figure that holds on a shared machine, and PostgreSQL's is part of it.
        Script("ingest, penalty records (NDJSON, batches of 1,000, bound and audited)",
               ["loadtests.ingest_bench", "--lines", "20000"], read_ingest),
        Script("push adapters, 32 concurrent senders, 2 gateway workers, PostgreSQL",
               ["loadtests.adapter_bench", "--messages", "2000", "--senders", "32",
                "--workers", "2", "--postgres"], read_adapters),
        Script("pull sync, 天府融通 feed from its simulator, PostgreSQL",
               ["loadtests.pull_bench", "--rows", "20000", "--postgres"], read_pull),
        Script("risk monitor, Redis stream → committed alerts, one worker",
               ["loadtests.monitor_bench", "--events", "5000"], read_monitor),
        Script("the machine: a uvloop echo server's CPU, woken for each message or kept busy",
               ["loadtests.wakeprobe"], read_wake),
    ]  # fmt: skip
