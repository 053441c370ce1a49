"""Servers under test, each in its own process group, started and stopped by us alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.stores import ROOT, XYD

WORKERS = 2


@dataclass(frozen=True)
class Served:
    name: str
    pid: int
    base_url: str
    log: Path


def wait_healthy(
    base_url: str, process: subprocess.Popen[bytes], log: Path, seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{base_url} not healthy after {seconds:.0f} s; see {log}")


@contextlib.contextmanager
def serve(
    name: str, command: list[str], env: Mapping[str, str], port: int, log_dir: Path
) -> Iterator[Served]:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, log, 60)
        yield Served(name, process.pid, base_url, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets uvicorn's supervisor stop its workers; the group we made is the
    fallback for a worker left behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def bare_command(port: int) -> list[str]:
    # What `xyd serve` asks of uvicorn, minus the gateway: same loop, parser,
    # workers and listening sockets.
    return [
        sys.executable, "-m", "loadtests.bare_app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(WORKERS),
    ]  # fmt: skip


def gateway_command(port: int) -> list[str]:
    return [
        str(XYD),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]
