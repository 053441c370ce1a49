"""Slow and idle clients against a real `xyd serve`: a request head or body that
trickles in is cut off in bounded time, and idle connections beyond the cap
neither exhaust a worker nor keep /healthz from answering."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from gateway.connections import RESERVED_FDS
from gateway.settings import Settings
from testkit.services import free_port, start_serve, stop_gently

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 40
MAX_CONCURRENCY = 3
# The worker's descriptor limit: the cap and the gateway's own (RESERVED_FDS)
# fit; IDLE connections without a cap would not.
NOFILE = MAX_CONNECTIONS + RESERVED_FDS
IDLE = NOFILE + 100


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = {
        **os.environ,
        "XYD_STATE_DIR": str(root / ".xyd"),
        "XYD_PORT": str(port),
        "XYD_WORKERS": "1",
        "XYD_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "XYD_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "XYD_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "XYD_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "XYD_RUN_BACKGROUND": "false",
        "XYD_LOG_LEVEL": "WARNING",
    }
    proc = start_serve(env, root / "serve.log", nofile=NOFILE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, (root / "serve.log").read_text()[-2000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "xyd serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        stop_gently(proc)


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_after(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading whatever it sent), or None."""
    started = time.monotonic()
    sock.settimeout(seconds)
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        received = sock.recv(4096)
        while received:  # b"" once the server has closed
            received = sock.recv(4096)
        return time.monotonic() - started
    return None if time.monotonic() - started >= seconds else time.monotonic() - started


def test_a_request_head_sent_slowly_is_cut_after_the_header_timeout(base: str) -> None:
    sock = connect(base)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    cut = None
    with contextlib.suppress(OSError):
        for byte in head:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
        cut = closed_after(sock, 5)
    elapsed = time.monotonic() - started
    sock.close()
    # Cut while still sending (a write failed) or soon after: never served for 4+ s.
    assert elapsed < HEADER_TIMEOUT_S + 1.5, elapsed
    assert cut is None or elapsed < HEADER_TIMEOUT_S + 1.5


def test_a_silent_connection_is_closed_after_the_header_timeout(base: str) -> None:
    sock = connect(base)
    waited = closed_after(sock, 10)
    sock.close()
    assert waited is not None, "the server kept a silent connection open for 10 s"
    assert waited < HEADER_TIMEOUT_S + 1.0, waited


BODY = b"grant_type=client_credentials&client_id=x"


def body_pending(base: str) -> socket.socket:
    """A token request whose head is sent and whose body is not (yet)."""
    sock = connect(base)
    sock.sendall(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BODY)
    )
    return sock


def test_a_body_at_one_byte_a_second_is_answered_408(base: str) -> None:
    sock = body_pending(base)
    body = BODY
    started = time.monotonic()
    answer = b""
    sock.settimeout(0.05)
    with contextlib.suppress(OSError):
        for byte in body:
            sock.sendall(bytes([byte]))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionResetError
                    answer += chunk
            if answer:
                break
    elapsed = time.monotonic() - started
    sock.close()
    assert elapsed < BODY_TIMEOUT_S + 1.5, elapsed
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert re.search(rb"(?im)^content-type: application/problem\+json", head), head
    assert re.search(rb"(?im)^connection: close", head), head
    problem = json.loads(payload)
    assert problem["status"] == 408 and problem["type"].endswith("/request-timeout")


def test_idle_connections_beyond_the_cap_leave_healthz_answering(base: str) -> None:
    idle = [connect(base) for _ in range(IDLE)]
    try:
        time.sleep(0.2)
        for _ in range(5):
            answer = httpx.get(base + "/healthz", timeout=3)
            assert answer.status_code == 200, answer.text
        # The worker holds at most its cap of them (fewer once the head timeout
        # has closed them), within its limit, and says so.
        metrics = httpx.get(base + "/metrics", timeout=3).text
        held = re.search(r"^xyd_process_open_fds(?:\{[^}]*\})? ([0-9.e+]+)$", metrics, re.M)
        limit = re.search(r"^xyd_process_max_fds(?:\{[^}]*\})? ([0-9.e+]+)$", metrics, re.M)
        assert held is not None and limit is not None, metrics[:500]
        assert 0 < float(held.group(1)) < NOFILE, held.group(0)
        assert float(limit.group(1)) == NOFILE
    finally:
        for sock in idle:
            sock.close()


def test_requests_in_flight_beyond_the_limit_are_answered_503(base: str) -> None:
    waiting = [body_pending(base) for _ in range(MAX_CONCURRENCY)]
    try:
        time.sleep(0.3)
        busy = httpx.get(base + "/healthz", timeout=3)
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"] == "application/problem+json"
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["type"].endswith("/server-busy")
        # Their bodies never come: each is answered 408 and room is made.
        time.sleep(BODY_TIMEOUT_S + 0.5)
        assert httpx.get(base + "/healthz", timeout=3).status_code == 200
    finally:
        for sock in waiting:
            sock.close()


def limits_after(nofile: str, wanted: int) -> tuple[int, int]:
    """(connections left room for, soft limit) after `raise_descriptor_limit(wanted)`
    in a process started under `nofile` (soft:hard)."""
    code = (
        "import resource; from gateway.connections import raise_descriptor_limit as r; "
        f"print(r({wanted}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        ["prlimit", f"--nofile={nofile}", sys.executable, "-c", code],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    room, soft = out.split()
    return int(room), int(soft)


def test_serve_raises_the_descriptor_limit_to_fit_the_cap_or_lowers_the_cap() -> None:
    assert limits_after("100:5000", 1000) == (1000, 1000 + RESERVED_FDS)
    assert limits_after("300:300", 1000) == (300 - RESERVED_FDS, 300)


def test_the_bounds_are_settings_with_limits() -> None:
    defaults = Settings()
    assert (defaults.header_timeout_s, defaults.body_timeout_s) == (10.0, 30.0)
    assert (defaults.max_connections, defaults.max_concurrency) == (2048, 512)
    for name, value in [
        ("header_timeout_s", 0), ("header_timeout_s", 301), ("body_timeout_s", 0),
        ("max_connections", 7), ("max_concurrency", 0),
    ]:  # fmt: skip
        with pytest.raises(ValidationError):
            Settings(**{name: value})
