"""The benchmark's figures, the machine they came from, and their Markdown page."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testkit.services import PG_BIN_DIRS


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    os_name: str
    kernel: str
    python: str
    postgresql: str
    redis: str
    wrk: str

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("CPU", f"{self.cpu}, {self.cores} cores"),
            ("RAM", f"{self.ram_gib:.1f} GiB"),
            ("OS, kernel", f"{self.os_name}, Linux {self.kernel}"),
            ("Python", self.python),
            ("PostgreSQL", self.postgresql),
            ("Redis", self.redis),
            ("wrk", self.wrk),
        ]


def _first_line(command: list[str]) -> str:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "?"
    )


def _match(pattern: str, text: str, default: str = "?") -> str:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else default


def describe_machine() -> Machine:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    meminfo = Path("/proc/meminfo").read_text()
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    postgres = str(PG_BIN_DIRS[0] / "postgres") if PG_BIN_DIRS else "postgres"
    return Machine(
        cpu=_match(r"^model name\s*:\s*(.+)$", cpuinfo),
        cores=os.cpu_count() or 0,
        ram_gib=int(_match(r"^MemTotal:\s*(\d+)", meminfo, "0")) / 2**20,
        os_name=_match(r'^PRETTY_NAME="?([^"\n]+)', os_release, platform.system()),
        kernel=platform.release(),
        python=platform.python_version(),
        postgresql=_match(r"(\d+\.\d+\S*)", _first_line([postgres, "--version"])),
        redis=_match(r"v=(\S+)", _first_line(["redis-server", "--version"])),
        wrk=_match(r"wrk (\S+)", _first_line(["wrk", "-v"])),
    )


@dataclass(frozen=True)
class PathFigures:
    """One request path over HTTP: medians over the interleaved rounds."""

    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    ratio: float
    cpu_us: float  # the server's own processes, per request
    deps_cpu_us: float | None  # PostgreSQL and Redis, per request
    bad: int  # answers >= 400 and socket errors, all rounds
    rounds_rps: tuple[float, ...] = ()
    cpu_ratio: float = 1.0  # the bare route's CPU/req over this path's: steadier than req/s


@dataclass(frozen=True)
class PacedFigures:
    label: str
    target_rps: float
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    bad: int
    generator_cpu_us: float
    # Paced load costs this machine more CPU a request than wrk's back-to-back
    # load; these say how much, and how near the cores were to full.
    server_cpu_us: float
    deps_cpu_us: float | None
    machine_busy: float


@dataclass(frozen=True)
class Figure:
    what: str
    figure: str
    how: str
    ok: bool = True


@dataclass
class BenchReport:
    date: str
    wall_s: float
    machine: Machine
    method: list[str] = field(default_factory=list)
    paths: list[PathFigures] = field(default_factory=list)
    paced: list[PacedFigures] = field(default_factory=list)
    others: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} µs"


PATH_HEADER = ("path", "req/s", "p50", "p99", "ratio to bare", "server CPU/req", "ratio by CPU",
               "PostgreSQL + Redis CPU/req", "errors", "req/s by round")  # fmt: skip
PACED_HEADER = ("path", "target req/s", "achieved", "p50", "p99", "p99.9", "errors",
                "generator CPU/req", "server CPU/req", "PostgreSQL + Redis CPU/req",
                "machine busy")  # fmt: skip


def path_row(p: PathFigures) -> list[str]:
    return [
        p.label,
        f"{p.rps:,.0f}",
        f"{p.p50_ms:.2f} ms",
        f"{p.p99_ms:.2f} ms",
        f"{p.ratio:.2f}",
        _us(p.cpu_us),
        f"{p.cpu_ratio:.2f}",
        _us(p.deps_cpu_us),
        str(p.bad),
        " / ".join(f"{r:,.0f}" for r in p.rounds_rps),
    ]


def paced_row(p: PacedFigures) -> list[str]:
    return [
        p.label,
        f"{p.target_rps:,.0f}",
        f"{p.achieved_rps:,.0f}",
        f"{p.p50_ms:.2f} ms",
        f"{p.p99_ms:.2f} ms",
        f"{p.p999_ms:.2f} ms",
        str(p.bad),
        _us(p.generator_cpu_us),
        _us(p.server_cpu_us),
        _us(p.deps_cpu_us),
        f"{p.machine_busy:.0%}",
    ]


def render(report: BenchReport) -> str:
    minutes, seconds = divmod(round(report.wall_s), 60)
    out = [
        "# Benchmark results",
        "",
        f"`make bench` (loadtests/bench.py), {report.date}; the whole run took "
        f"{minutes} min {seconds:02d} s. Every run rewrites this page.",
        "",
        "## Machine",
        "",
        *table(("", ""), report.machine.rows()),
        "",
        "## Warm credit report through every gate, over HTTP",
        "",
        *report.method,
        "",
        *table(PATH_HEADER, map(path_row, report.paths)),
    ]
    if report.paced:
        out += ["", "### p99 at 70 % of the gateway's own saturation (open loop)", ""]
        out += table(PACED_HEADER, map(paced_row, report.paced))
    if report.others:
        out += ["", "## Other figures", ""]
        out += table(("what", "figure", "how"), ((f.what, f.figure, f.how) for f in report.others))
    if report.notes:
        out += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(out) + "\n"
