"""Interleaved wrk rounds against the bare server and the gateway, with server CPU per request."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import wrkrun
from loadtests.openloop import run_paced
from loadtests.procstat import CpuMeter, MachineMeter
from loadtests.results import PacedFigures, PathFigures
from loadtests.wrkrun import Request, WrkResult

# Single-use requests are made for the fastest rate seen so far, with this much to spare:
# on a shared machine one round can run twice as fast as the last.
HEADROOM = 2.5
FIRST_GUESS_RPS = 2500.0


@dataclass
class Target:
    slug: str
    label: str
    base_url: str
    roots: list[int]  # the server's processes (workers are found below them)
    deps: list[int]  # PostgreSQL and Redis, when the server uses them
    make: Callable[[int], list[Request]]  # requests for a run of about this many
    single_use: bool = False
    rounds: list[Round] = field(default_factory=list)


@dataclass(frozen=True)
class Round:
    wrk: WrkResult
    cpu_s: float
    deps_cpu_s: float | None


@dataclass(frozen=True)
class Load:
    seconds: float
    connections: int = 32
    threads: int = 1


def run_round(target: Target, work: Path, load: Load, rps_guess: float) -> Round:
    expected = int(rps_guess * load.seconds * HEADROOM) + 500 if target.single_use else 0
    file = work / f"{target.slug}.requests"
    wrkrun.write_requests(file, target.make(expected))
    server, deps = started_meters(target)
    result = wrkrun.run(
        target.base_url, file, seconds=load.seconds, threads=load.threads,
        connections=load.connections,
    )  # fmt: skip
    return Round(result, server.stop(), deps.stop() if target.deps else None)


def started_meters(target: Target) -> tuple[CpuMeter, CpuMeter]:
    """CPU meters of the server's processes and of its PostgreSQL + Redis, running."""
    server, deps = CpuMeter(target.roots), CpuMeter(target.deps)
    server.start()
    deps.start()
    return server, deps


def guess(targets: list[Target]) -> float:
    """The fastest gateway rate seen so far: single-use requests must not run out."""
    seen = [r.wrk.rps for t in targets if t.deps for r in t.rounds]
    return max(seen, default=FIRST_GUESS_RPS)


def interleave(targets: list[Target], work: Path, load: Load, rounds: int, warmup_s: float) -> None:
    """Warm every target, then A B C A B C …: drift in the machine hits every path alike."""
    for target in targets:
        run_round(target, work, Load(warmup_s, load.connections, load.threads), guess(targets))
    for number in range(1, rounds + 1):
        for target in targets:
            target.rounds.append(run_round(target, work, load, guess(targets)))
            print(f"  round {number}: {target.label}: {target.rounds[-1].wrk.rps:,.0f} req/s",
                  flush=True)  # fmt: skip


def median_rps(target: Target) -> float:
    return statistics.median(r.wrk.rps for r in target.rounds)


def cpu_per_request(target: Target) -> float:
    """Median over the rounds, in µs."""
    return statistics.median(r.cpu_s / max(1, r.wrk.requests) * 1e6 for r in target.rounds)


def summarise(target: Target, baseline: Target) -> PathFigures:
    rounds = target.rounds
    requests = [r.wrk.requests for r in rounds]
    deps = [r.deps_cpu_s for r in rounds]
    return PathFigures(
        label=target.label,
        rps=median_rps(target),
        p50_ms=statistics.median(r.wrk.p50_ms for r in rounds),
        p99_ms=statistics.median(r.wrk.p99_ms for r in rounds),
        ratio=median_rps(target) / median_rps(baseline),
        cpu_us=cpu_per_request(target),
        deps_cpu_us=None
        if None in deps
        else statistics.median((d or 0.0) / n * 1e6 for d, n in zip(deps, requests, strict=True)),
        bad=sum(r.wrk.bad_status + r.wrk.socket_errors for r in rounds),
        rounds_rps=tuple(r.wrk.rps for r in rounds),
        cpu_ratio=cpu_per_request(baseline) / cpu_per_request(target),
    )


def paced(target: Target, share: float, seconds: float) -> PacedFigures:
    """`share` of the target's own saturation rate, open loop (see openloop.py)."""
    rate = median_rps(target) * share
    requests = target.make(int(rate * seconds) + 100 if target.single_use else 0)
    machine = MachineMeter()
    machine.start()
    server, deps = started_meters(target)
    result = run_paced(target.base_url, requests, rate=rate, seconds=seconds)
    busy, server_s, deps_s = machine.stop(), server.stop(), deps.stop()
    answered = max(1, result.completed)
    return PacedFigures(
        label=target.label, target_rps=rate, achieved_rps=result.achieved_rps,
        p50_ms=result.p50_ms, p99_ms=result.p99_ms, p999_ms=result.p999_ms,
        bad=result.bad_status + (result.sent - result.completed),
        generator_cpu_us=result.client_cpu_s / answered * 1e6,
        server_cpu_us=server_s / answered * 1e6,
        deps_cpu_us=deps_s / answered * 1e6 if target.deps else None,
        machine_busy=busy,
    )  # fmt: skip
