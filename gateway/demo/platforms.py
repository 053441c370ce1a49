"""The demo's platform traffic: credentials for every simulator, and a stream of
messages from each push platform into the running gateway (the pull platforms'
simulators are served for the gateway's own schedule to fetch from)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("xyd.demo")

SIMULATORS = {
    "kechuangtong": "adapters.simulators.kechuangtong",
    "nongdaitong": "adapters.simulators.nongdaitong",
    "chuangfu-tianfu": "adapters.simulators.chuangfu_tianfu",
    "yingchuang": "adapters.simulators.yingchuang",
    "tianfu-rongtong": "adapters.simulators.tianfu_rongtong",
}


def credentials_dir(state_dir: Path, platform: str) -> Path:
    return state_dir / "demo" / "platforms" / platform


def write_credentials(state_dir: Path) -> list[str]:
    """Each simulator's demo credentials, kept when already there (the gateway reads them)."""
    written = []
    for platform, module_name in SIMULATORS.items():
        directory = credentials_dir(state_dir, platform)
        if directory.exists() and any(directory.iterdir()):
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        module.write_demo_credentials(directory)
        written.append(platform)
    return written


def wait_for(base_url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the gateway at {base_url} did not answer")


def kechuangtong(base_url: str, state_dir: Path, messages: int) -> dict[int, int]:
    from adapters.simulators import kechuangtong as sim

    secret = (credentials_dir(state_dir, "kechuangtong") / "secret").read_bytes().strip()
    start = datetime.now(UTC) - timedelta(days=30)
    with sim.Sender(base_url, secret) as sender:
        return sender.send_all(sim.stream(messages, start=start, until=datetime.now(UTC)))


def chuangfu_tianfu(base_url: str, state_dir: Path, messages: int) -> dict[int, int]:
    from adapters.simulators import chuangfu_tianfu as sim

    simulator = sim.Simulator.from_private_jwk(
        credentials_dir(state_dir, "chuangfu-tianfu") / "private.jwk"
    )
    sender = sim.Sender(base_url)
    statuses: dict[int, int] = {}
    try:
        for n, message in enumerate(simulator.stream(max(1, messages // 5))):
            if n >= messages:
                break
            status = sender.post(message.token).status_code
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        sender.close()
    return statuses


def nongdaitong(base_url: str, state_dir: Path, messages: int) -> dict[str, int]:
    """Counts by RspCode: Nongdaitong answers every message with HTTP 200."""
    from adapters.simulators import nongdaitong as sim

    return sim.send_demo(base_url, credentials_dir(state_dir, "nongdaitong"), messages)


PUSH: dict[str, Any] = {
    "kechuangtong": kechuangtong,
    "nongdaitong": nongdaitong,
    "chuangfu-tianfu": chuangfu_tianfu,
}


PULL = ("yingchuang", "tianfu-rongtong")


def serve_pull_simulators(state_dir: Path) -> list[Any]:
    """Serve each pull platform's simulator where its demo credentials say it lives,
    for the gateway's schedule to fetch from; the servers run in daemon threads."""
    import json
    import threading
    from urllib.parse import urlsplit

    import uvicorn

    servers = []
    for platform in PULL:
        directory = credentials_dir(state_dir, platform)
        if not (directory / "simulator.json").exists():
            continue
        module = importlib.import_module(SIMULATORS[platform])
        simulator = module.demo(directory)
        address = urlsplit(json.loads((directory / "simulator.json").read_text())["base_url"])
        config = uvicorn.Config(
            simulator.app,
            host=address.hostname or "127.0.0.1",
            port=address.port or 80,
            log_level="warning",
        )
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
    return servers


def push_traffic(base_url: str, state_dir: Path, messages: int) -> dict[str, dict[Any, int]]:
    """Send each push platform's stream; per platform, how many answers of each kind."""
    wait_for(base_url)
    results: dict[str, dict[Any, int]] = {}
    for platform, send in PUSH.items():
        try:
            results[platform] = send(base_url, state_dir, messages)
        except (OSError, httpx.HTTPError, ValueError) as exc:
            log.warning("demo traffic for %s failed: %s", platform, exc)
    return results
