"""The demo's platform traffic: credentials for every simulator, and a stream of
messages from each push platform into the running gateway (the pull platforms'
simulators are served for the gateway's own schedule to fetch from, 科创通's
callback receiver for its risk alerts). The streams lend to the seeded
enterprises, so a report for one of them shows its loans."""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from xyd_demo.simulators import Borrowers

log = logging.getLogger("xyd.demo")

SIMULATORS = {
    "kechuangtong": "xyd_demo.simulators.kechuangtong",
    "nongdaitong": "xyd_demo.simulators.nongdaitong",
    "chuangfu-tianfu": "xyd_demo.simulators.chuangfu_tianfu",
    "yingchuang": "xyd_demo.simulators.yingchuang",
    "tianfu-rongtong": "xyd_demo.simulators.tianfu_rongtong",
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


def borrowers(state_dir: Path) -> Borrowers:
    """The seeded enterprises the platforms lend to: the seed's sample file
    (`xyd demo seed` writes it), less the deregistered, whom nobody lends to.
    Without it the simulators make their borrowers up, as in the tests."""
    path = state_dir / "demo" / "enterprises.csv"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        log.warning("no %s: the platforms' streams name enterprises not in the store", path)
        return ()
    return tuple(
        (row["credit_code"], row["name"]) for row in rows if row.get("profile") != "deregistered"
    )


def kechuangtong(
    base_url: str, state_dir: Path, messages: int, lenders: Borrowers
) -> dict[int, int]:
    from xyd_demo.simulators import kechuangtong as sim

    secret = (credentials_dir(state_dir, "kechuangtong") / "secret").read_bytes().strip()
    # Loans begun months ago: by now some have fallen overdue or defaulted, so the
    # monitor raises alerts on them and 科创通's callback has something to receive.
    start = datetime.now(UTC) - timedelta(days=150)
    stream = sim.stream(messages, start=start, until=datetime.now(UTC), borrowers=lenders)
    with sim.Sender(base_url, secret) as sender:
        return sender.send_all(stream)


def chuangfu_tianfu(
    base_url: str, state_dir: Path, messages: int, lenders: Borrowers
) -> dict[int, int]:
    from xyd_demo.simulators import chuangfu_tianfu as sim

    simulator = sim.Simulator.from_private_jwk(
        credentials_dir(state_dir, "chuangfu-tianfu") / "private.jwk", borrowers=lenders
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


def nongdaitong(
    base_url: str, state_dir: Path, messages: int, lenders: Borrowers
) -> dict[str, int]:
    """Counts by RspCode: Nongdaitong answers every message with HTTP 200."""
    from xyd_demo.simulators import nongdaitong as sim

    directory = credentials_dir(state_dir, "nongdaitong")
    return sim.send_demo(base_url, directory, messages, borrowers=lenders)


PUSH: dict[str, Any] = {
    "kechuangtong": kechuangtong,
    "nongdaitong": nongdaitong,
    "chuangfu-tianfu": chuangfu_tianfu,
}


PULL = ("yingchuang", "tianfu-rongtong")
CALLBACK_FILE = "callback_url"  # under kechuangtong's directory; config/platforms.yaml names it


@dataclass
class Served:
    """One simulator the demo serves: whose, where, and its server (to stop it)."""

    platform: str
    url: str
    server: uvicorn.Server
    simulator: Any


def _listen() -> socket.socket:
    """A listening socket on a port the system picks: two demos on one host never
    share a simulator. Listening before the address is written, so a connection
    made as soon as it is read waits in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _serve(app: Any, sock: socket.socket) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    return server


def _write_private(path: Path, text: str) -> None:
    """Replace `path` whole (a reader never sees half a file), owner-only."""
    spare = path.with_name(path.name + ".new")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(spare, path)


def serve_simulators(state_dir: Path, lenders: Borrowers = ()) -> list[Served]:
    """Serve each pull platform's simulator, and 科创通's callback receiver, on ports
    picked now, and write each address where the gateway reads it (the pull
    platforms' simulator.json, 科创通's callback_url file). Daemon threads."""
    served = []
    for platform in PULL:
        directory = credentials_dir(state_dir, platform)
        file = directory / "simulator.json"
        if not file.exists():
            continue
        module = importlib.import_module(SIMULATORS[platform])
        simulator = module.demo(directory, borrowers=lenders)
        sock = _listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        credentials = json.loads(file.read_text(encoding="utf-8"))
        _write_private(file, json.dumps({**credentials, "base_url": url}, indent=2) + "\n")
        served.append(Served(platform, url, _serve(simulator.app, sock), simulator))
    directory = credentials_dir(state_dir, "kechuangtong")
    if (directory / "secret").exists():
        from xyd_demo.simulators.kechuangtong import CallbackReceiver

        lines = (directory / "secret").read_bytes().split(b"\n")
        receiver = CallbackReceiver([line.strip() for line in lines if line.strip()])
        sock = _listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}{receiver.path}"
        _write_private(directory / CALLBACK_FILE, url + "\n")
        served.append(Served("kechuangtong", url, _serve(receiver.app, sock), receiver))
    return served


def push_traffic(
    base_url: str, state_dir: Path, messages: int, lenders: Borrowers = ()
) -> dict[str, dict[Any, int]]:
    """Send each push platform's stream; per platform, how many answers of each kind."""
    wait_for(base_url)
    results: dict[str, dict[Any, int]] = {}
    for platform, send in PUSH.items():
        try:
            results[platform] = send(base_url, state_dir, messages, lenders)
        except (OSError, httpx.HTTPError, ValueError) as exc:
            log.warning("demo traffic for %s failed: %s", platform, exc)
    return results
