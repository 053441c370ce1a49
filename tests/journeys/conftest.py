"""One running world for every journey: `xyd serve` (two workers) and an `xyd monitor`
worker as processes, on a fresh PostgreSQL database and a Redis of their own, with
科创通's callback endpoint served beside them (its simulator's receiver).

Started once per session; each journey takes enterprises of its own, so journeys do
not see each other's records, consents or alerts. Clients are registered with the
functions `xyd clients create` calls; every request goes over HTTP as a bank, a
platform, a department or the risk office would send it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
import yaml
from sqlalchemy import Engine, create_engine

from gateway.client import GatewayClient
from gateway.dashboard import accounts
from testkit.builders import MARKET
from testkit.clients import new_key, register
from testkit.services import Postgres, free_port, redis_server
from tests.conftest import fresh_pg_database
from xyd_demo.simulators.kechuangtong import CallbackReceiver, Sender

CONFIG = Path(__file__).resolve().parents[2] / "config"
OFFICER, OFFICER_PASSWORD = "wang.fang", "officer password 18"


@dataclass
class World:
    base: str
    engine: Engine
    env: dict[str, str]
    kct_secret: bytes
    callbacks: CallbackReceiver
    logs: Path
    risk: GatewayClient = field(init=False)
    _clients: list[GatewayClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.risk = self.client("risk-office", "risk_office")

    def client(
        self,
        client_id: str,
        client_type: str,
        org_code: str | None = None,
        department: str = MARKET,
    ) -> GatewayClient:
        """A registered client with a key of its own, as `xyd clients create` makes one
        (a department client for `department`, delivering all it may)."""
        key = register(
            self.engine, client_id, client_type, org_code=org_code, department=department
        )
        assert not isinstance(key.key, bytes)
        made = GatewayClient(self.base, key.client_id, key.key, kid=key.kid)
        self._clients.append(made)
        return made

    def kechuangtong(self) -> Sender:
        return Sender(self.base, self.kct_secret)

    def audit_verifies(self) -> str:
        """`xyd audit verify` against the same database, as an operator runs it."""
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "audit", "verify"],
            env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def access_log(self, credit_code: str) -> list[dict[str, Any]]:
        """The enterprise's access log as the risk office reads it, oldest first."""
        answer = self.risk.request("GET", f"/v1/enterprises/{credit_code}/access-log?limit=200")
        assert answer.status_code == 200, answer.text
        assert answer.json()["next_cursor"] is None
        return list(reversed(answer.json()["items"]))

    def close(self) -> None:
        for made in self._clients:
            made.http.close()


def deliver(department: GatewayClient, category: str, *rows: dict[str, Any]) -> list[str]:
    """A department's NDJSON batch; the outcome of each line."""
    body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    answer = department.request(
        "POST", f"/v1/records/{category}", content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return [line.get("reason") or line["outcome"] for line in answer.json()["results"]]


def wait_for(what: str, check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def _serve_callbacks(receiver: CallbackReceiver) -> tuple[uvicorn.Server, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(receiver.app, host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    wait_for("the callback receiver", lambda: _answers(base + "/healthz"))
    return server, base + receiver.path


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(url, timeout=1).status_code == 200
    return False


def _config(root: Path, secret_file: Path, callback_url: str) -> Path:
    config = root / "config"
    shutil.copytree(CONFIG, config)
    block = {"enabled": True, "secret_file": str(secret_file), "callback_url": callback_url}
    (config / "platforms.yaml").write_text(yaml.safe_dump({"kechuangtong": block}))
    return config


@pytest.fixture(scope="session")
def world(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("journeys")
    secret = secrets.token_hex(32).encode()
    (root / "kct.secret").write_bytes(secret + b"\n")
    receiver = CallbackReceiver([secret])
    callback_server, callback_url = _serve_callbacks(receiver)
    url = fresh_pg_database(pg)
    engine = create_engine(url, pool_pre_ping=True)
    with engine.begin() as conn:
        accounts.create_user(conn, OFFICER, "risk_officer", OFFICER_PASSWORD)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with redis_server() as redis:
        env = {
            **os.environ,
            "XYD_STATE_DIR": str(root / ".xyd"),
            "XYD_CONFIG_DIR": str(_config(root, root / "kct.secret", callback_url)),
            "XYD_DATABASE_URL": url,
            "XYD_REDIS_URL": redis.url,
            "XYD_PII_KEY": "journeys-pii-key",
            "XYD_PORT": str(port),
            "XYD_WORKERS": "2",
            "XYD_PUBLIC_BASE_URL": base,
            "XYD_KEY_ACTIVATION_DELAY_S": "0",
            "XYD_OUTBOX_POLL_S": "0.2",
            # A department's first complete feed shows in the very next report.
            "XYD_REPORT_FEEDS_REFRESH_S": "0",
            # A data change shows on the very next report (the default lets a worker
            # decide from its copy of the data version for up to a second).
            "XYD_CONSENT_COPY_S": "0",
            "XYD_LOG_LEVEL": "WARNING",
        }
        logs = root / "logs"
        logs.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *cmd], env=env,
                stdout=subprocess.DEVNULL, stderr=(logs / f"{cmd[0]}.log").open("wb"),
            )
            for cmd in (["serve"], ["monitor", "--consumer", "journeys"])
        ]  # fmt: skip
        made: World | None = None
        try:
            deadline = time.monotonic() + 40
            while not _answers(base + "/readyz"):
                for proc in procs:
                    assert proc.poll() is None, f"a process exited; see {logs}"
                assert time.monotonic() < deadline, f"the gateway did not become ready; {logs}"
                time.sleep(0.2)
            made = World(base, engine, env, secret, receiver, logs)
            yield made
        finally:
            if made is not None:
                made.close()
            for proc in procs:  # both at once, as Ctrl-C would: each takes seconds to stop
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            callback_server.should_exit = True
            engine.dispose()


__all__ = ["World", "deliver", "new_key", "wait_for", "world"]
