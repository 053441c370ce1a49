"""Drive a server with wrk from a file of prepared requests; read back its figures.

The request file holds one request a line (see wrk/replay.lua): a fixed
request repeated for the bare server and the Bearer path, a distinct one per
request where the gateway allows each only once (DPoP proofs, client
assertions).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "replay.lua"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: str = ""

    def line(self) -> str:
        fields = [
            self.method,
            self.path,
            self.body,
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        if any("\t" in f or "\n" in f for f in fields):
            raise ValueError("tabs and newlines cannot go into a request line")
        return "\t".join(fields)


def write_requests(path: Path, requests: Iterable[Request]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for request in requests:
            handle.write(request.line() + "\n")
            count += 1
    return count


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bad_status: int  # answers with status >= 400
    socket_errors: int
    wrapped: int  # passes over the request file after the first

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    return found


def run(
    base_url: str,
    requests_file: Path,
    *,
    seconds: float,
    threads: int = 1,
    connections: int = 32,
    timeout_s: int = 5,
) -> WrkResult:
    command = [
        wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
        f"--timeout={timeout_s}s", "-s", str(SCRIPT), base_url, "--",
        str(requests_file), str(threads),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return parse(json.loads(line.removeprefix("WRK_JSON ")))
    raise RuntimeError(f"wrk gave no figures (exit {done.returncode}): {done.stderr[-500:]}")


def parse(raw: Mapping[str, float]) -> WrkResult:
    return WrkResult(
        requests=int(raw["requests"]),
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        bad_status=int(raw["status"]),
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        wrapped=int(raw["wrapped"]),
    )
