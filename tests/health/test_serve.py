"""`xyd serve` with two worker processes: metrics aggregate over both."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, stop_gently


def _wait_ready(base: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_report_one_aggregated_request_count(tmp_path: Path, workers: int) -> None:
    port = free_port()
    env = {
        **os.environ,
        "XYD_STATE_DIR": str(tmp_path / ".xyd"),
        "XYD_PORT": str(port),
        "XYD_WORKERS": str(workers),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        # New connections each time, so both workers take a share.
        for _ in range(40):
            assert httpx.get(base + "/readyz", timeout=5).status_code == 200
        text = httpx.get(base + "/metrics", timeout=5).text
        match = re.search(
            r'xyd_http_requests_total\{method="GET",route="/readyz",status="200"\} ([0-9.]+)', text
        )
        assert match is not None, text[:2000]
        assert float(match.group(1)) == 40.0
        pids = set(
            re.findall(
                r"^(\d+)\.db$",
                "\n".join(p.name.split("_")[-1] for p in (tmp_path / ".xyd" / "metrics").iterdir()),
                re.M,
            )
        )
        assert len(pids) >= workers, "every worker should have written samples"
    finally:
        stop_gently(proc)
