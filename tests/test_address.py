"""`xyd demo token` / `xyd call` find a running gateway by themselves, and say which
URL they tried when none answers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.address import FILE_NAME, announced, find
from gateway.settings import Settings
from testkit.services import free_port, start_serve, stop_gently

ADDRESS_VARIABLES = ("XYD_PORT", "XYD_HOST", "XYD_PUBLIC_BASE_URL")


def shell(state: Path, **extra: str) -> dict[str, str]:
    """A new user's other terminal: no XYD_PORT exported."""
    env = {k: v for k, v in os.environ.items() if k not in ADDRESS_VARIABLES}
    return {**env, "XYD_STATE_DIR": str(state), **extra}


def xyd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "xyd serve exited early"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("xyd serve did not become ready")


def assert_one_clear_line(done: subprocess.CompletedProcess[str], url: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no gateway answering at " + url), lines[0]


def test_cli_reaches_a_demo_on_any_port_without_xyd_port(tmp_path: Path) -> None:
    state = tmp_path / ".xyd"
    env = shell(state)
    assert xyd(env, "db", "upgrade").returncode == 0
    assert xyd(env, "demo", "seed", "--enterprises", "20", "--seed", "5").returncode == 0
    code = (state / "demo" / "enterprises.csv").read_text().splitlines()[1].split(",")[0]
    port = free_port()
    server = start_serve({**env, "XYD_PORT": str(port)}, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        written = json.loads((state / FILE_NAME).read_text())
        assert written == {"url": f"http://127.0.0.1:{port}", "pid": server.pid}
        token = xyd(env, "demo", "token", "demo-bank")
        assert token.returncode == 0, token.stderr
        assert token.stdout.count(".") == 2
        # DPoP: the proof's htu is built on the issuer the server published.
        fapi = xyd(env, "call", "demo-bank-fapi", "GET", f"/v1/enterprises/{code}")
        assert fapi.returncode == 0, fapi.stderr
        assert json.loads(fapi.stdout)["credit_code"] == code
        # A URL other than the issuer (localhost): the issuer still comes from metadata.
        other = xyd(
            env, "call", "demo-bank", "GET", f"/v1/enterprises/{code}",
            "--base-url", f"http://localhost:{port}/",
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
    finally:
        stop_gently(server)
    assert not (state / FILE_NAME).exists(), "a stopped gateway leaves no address behind"
    gone = free_port()
    refused = xyd(env, "demo", "token", "demo-bank", "--base-url", f"http://127.0.0.1:{gone}")
    assert_one_clear_line(refused, f"http://127.0.0.1:{gone} (--base-url)")
    named = xyd({**env, "XYD_PORT": str(gone)}, "call", "demo-bank", "GET", "/healthz")
    assert_one_clear_line(named, f"http://127.0.0.1:{gone} (XYD_PORT)")
    consent = xyd(env, "demo", "consent", "demo-bank", code, "--base-url", f"http://[::1]:{gone}")
    assert_one_clear_line(consent, f"http://[::1]:{gone} (--base-url)")


def test_a_page_that_is_not_the_gateway_is_named(tmp_path: Path) -> None:
    state = tmp_path / ".xyd"
    env = shell(state)
    keys = state / "demo" / "clients"
    keys.mkdir(parents=True)
    (keys / "demo-bank.jwk").write_text('{"client_id": "demo-bank"}')
    with subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port := free_port()), "-b", "127.0.0.1",
         "-d", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) as other:  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                time.sleep(0.1)
            done = xyd(env, "demo", "token", "demo-bank", "--base-url", f"http://127.0.0.1:{port}")
        finally:
            other.terminate()
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"http://127.0.0.1:{port} (--base-url) is not an xyd gateway" in done.stderr
    assert "answered 404" in done.stderr


@pytest.fixture
def no_address_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ADDRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_address_env")
def test_the_address_is_taken_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(state_dir=tmp_path)
    default = find(settings)
    assert default.url == "http://127.0.0.1:8000"
    assert "--base-url" in default.source and "XYD_PORT" in default.source
    with announced(tmp_path, "0.0.0.0", 41_001):  # noqa: S104
        assert find(settings).url == "http://127.0.0.1:41001"
        assert find(settings, "http://gw.example:9/").url == "http://gw.example:9"
        monkeypatch.setenv("XYD_PORT", "41002")
        assert find(Settings(state_dir=tmp_path)).url == "http://127.0.0.1:41002"
    assert not (tmp_path / FILE_NAME).exists()


@pytest.mark.usefixtures("no_address_env")
def test_a_killed_servers_address_is_not_used(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / FILE_NAME).write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": dead.pid}))
    assert find(Settings(state_dir=tmp_path)).url == "http://127.0.0.1:8000"
    (tmp_path / FILE_NAME).write_text("{not json")
    assert find(Settings(state_dir=tmp_path)).url == "http://127.0.0.1:8000"


def test_a_second_server_keeps_the_first_ones_address(tmp_path: Path) -> None:
    with announced(tmp_path, "127.0.0.1", 41_003):
        # Another process took the file over (a second gateway on another port).
        (tmp_path / FILE_NAME).write_text(json.dumps({"url": "http://127.0.0.1:41004", "pid": 1}))
    assert json.loads((tmp_path / FILE_NAME).read_text())["pid"] == 1
