"""`xyd serve` with two worker processes: metrics aggregate over both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testkit.services import RedisServer, free_port, start_serve, stop_gently


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
def test_workers_report_one_aggregated_request_count(
    tmp_path: Path, redis_srv: RedisServer, workers: int
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "XYD_REDIS_URL": redis_srv.url,
        "XYD_STATE_DIR": str(tmp_path / ".xyd"),
        "XYD_PORT": str(port),
        "XYD_WORKERS": str(workers),
    }
    proc = start_serve(env, tmp_path / "serve.log")
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


def _sockets_by_process(port: int, state: str) -> dict[int, set[str]]:
    """The sockets on local `port` in `state` (01 established, 0A listening), by the
    process holding each (a socket shared by processes is under each of them)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    held: dict[int, set[str]] = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        held.setdefault(int(fd_dir.parent.name), set()).add(link[8:-1])
    return held


async def _open_pool(port: int, size: int) -> list[socket.socket]:
    """`size` connections opened together, as a client's pool (or a load generator) does."""
    loop = asyncio.get_running_loop()
    socks = [socket.socket() for _ in range(size)]
    for sock in socks:
        sock.setblocking(False)
    await asyncio.gather(*(loop.sock_connect(sock, ("127.0.0.1", port)) for sock in socks))
    for sock in socks:
        sock.setblocking(True)
        sock.settimeout(5)
    return socks


def test_a_pool_of_connections_opened_at_once_spreads_over_the_workers(
    tmp_path: Path, redis_srv: RedisServer
) -> None:
    """A bank's keep-alive pool opens its connections together. With one shared
    listening socket most went to whichever worker woke first (32/0, 28/4 and
    22/10 here); each worker now listens on a socket of its own, and the kernel
    spreads new connections over them."""
    port = free_port()
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path / ".xyd"), "XYD_PORT": str(port),
           "XYD_WORKERS": "2", "XYD_REDIS_URL": redis_srv.url}  # fmt: skip
    proc = start_serve(env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        # Both workers listening, not only the first to start (bounded: a loaded
        # machine starts the second one seconds later).
        deadline = time.monotonic() + 30
        while len(_sockets_by_process(port, "0A")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        pool = asyncio.run(_open_pool(port, 32))
        try:
            for conn in pool:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for conn in pool:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            listening = _sockets_by_process(port, "0A")
            assert len(listening) == 2, listening  # two workers; the supervisor only binds
            assert len(set.union(*listening.values())) == 2, listening  # one socket each
            held = _sockets_by_process(port, "01")
            workers = {pid: len(s) for pid, s in held.items() if pid != os.getpid()}
            assert set(workers) == set(listening), held
            assert sum(workers.values()) == 32, held
            # Spread by a hash of each connection's address and port: 16 each on
            # average, fewer than 4 on one worker about once in 400,000 runs.
            assert min(workers.values()) >= 4, held
        finally:
            for conn in pool:
                conn.close()
    finally:
        stop_gently(proc)


def test_a_second_gateway_on_the_same_port_refuses_to_start(
    tmp_path: Path, redis_srv: RedisServer
) -> None:
    """Workers share their port (SO_REUSEPORT); another gateway must not join them."""
    port = free_port()
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path / ".xyd"), "XYD_PORT": str(port),
           "XYD_WORKERS": "2", "XYD_REDIS_URL": redis_srv.url}  # fmt: skip
    first = start_serve(env, tmp_path / "first.log")
    try:
        _wait_ready(f"http://127.0.0.1:{port}", first)
        second = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env={**env, "XYD_STATE_DIR": str(tmp_path / ".xyd2")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 3, second.stderr[-2000:]  # uvicorn's STARTUP_FAILURE
        assert "cannot listen" in second.stderr
        assert first.poll() is None
    finally:
        stop_gently(first)
