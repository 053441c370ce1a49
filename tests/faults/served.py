"""A real `xyd serve` for fault tests, and a bounded load loop that remembers what
was acknowledged: request ids of audited 2xx answers, consents created, platform
messages accepted."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from sqlalchemy import Engine, select

from gateway.store.tables import audit_entries, consent_events, consents, loan_events
from testkit.builders import code
from testkit.clients import ClientKey
from testkit.kechuangtong import kct
from testkit.services import free_port, start_serve, stop_gently
from xyd_demo.simulators.kechuangtong import Sender

CONFIG = Path(__file__).resolve().parents[2] / "config"


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    secret: bytes
    log: Path

    def workers(self) -> list[int]:
        """The worker processes' ids (children of uvicorn's supervisor)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        children = [int(p) for p in path.read_text().split()] if path.exists() else []
        # Not multiprocessing's resource tracker: the spawned workers only.
        return [
            pid for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # fmt: skip


@contextlib.contextmanager
def xyd_serve(
    tmp_path: Path, database_url: str, redis_url: str, *, workers: int = 2
) -> Iterator[Served]:
    secret = secrets.token_hex(16).encode()
    (tmp_path / "kct.secret").write_bytes(secret + b"\n")
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    block = {"enabled": True, "secret_file": str(tmp_path / "kct.secret"), "callback_url": None}
    (config / "platforms.yaml").write_text(yaml.safe_dump({"kechuangtong": block}))
    port = free_port()
    env = {
        **os.environ,
        "XYD_STATE_DIR": str(tmp_path / ".xyd"),
        "XYD_CONFIG_DIR": str(config),
        "XYD_DATABASE_URL": database_url,
        "XYD_REDIS_URL": redis_url,  # several workers share their limits there
        "XYD_PII_KEY": "test-pii-key",
        "XYD_PORT": str(port),
        "XYD_WORKERS": str(workers),
        "XYD_PUBLIC_BASE_URL": "http://testserver",
        "XYD_KEY_ACTIVATION_DELAY_S": "0",
        "XYD_RUN_EMBEDDED_MONITOR": "false",
        "XYD_LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "serve.log"
    proc = start_serve(env, log)
    served = Served(f"http://127.0.0.1:{port}", proc, secret, log)
    try:
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, f"xyd serve exited; see {log}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(served.base + "/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"xyd serve not ready; see {log}"
            time.sleep(0.2)
        print(f"xyd serve ready in {time.monotonic() - deadline + 40:.1f} s")
        yield served
    finally:
        stop_gently(proc)


@dataclass
class Seen:
    """What the load generator saw: acknowledged or not."""

    audited: list[str] = field(default_factory=list)  # X-Request-Id of audited 2xx answers
    consents: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # platform event ids answered 2xx
    statuses: dict[int, int] = field(default_factory=dict)
    failed: int = 0  # no answer at all (connection dropped)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def consent_body() -> dict[str, object]:
    return {
        "credit_code": code(1), "grantee": "BOCD", "purpose": "loan_application",
        "scopes": ["basic", "penalties", "tax"],
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "evidence": {"document_sha256": "ab" * 32, "signer": "法定代表人", "channel": "direct"},
    }  # fmt: skip


def load_loop(served: Served, bank: ClientKey, seen: Seen, stop: threading.Event, n: int) -> None:
    """One user: consent, report under it, a platform message; until `stop`."""
    client = httpx.Client(base_url=served.base, timeout=10)
    sender = Sender(served.base, served.secret)
    token: str | None = None
    serial = 0
    try:
        while not stop.is_set():
            serial += 1
            try:
                if token is None:
                    got = client.post("/oauth/token", data=bank.form())
                    seen.count(got.status_code)
                    token = got.json()["access_token"] if got.status_code == 200 else None
                    if token is None:
                        time.sleep(0.05)
                        continue
                auth = {"Authorization": f"Bearer {token}"}
                got = client.post("/v1/consents", json=consent_body(), headers=auth)
                seen.count(got.status_code)
                if got.status_code == 201:
                    seen.consents.append(got.json()["id"])
                    seen.audited.append(got.headers["x-request-id"])
                    report = client.get(
                        f"/v1/enterprises/{code(1)}/credit-report",
                        headers={**auth, "Consent-Id": got.json()["id"]},
                    )
                    seen.count(report.status_code)
                    if report.status_code == 200:
                        seen.audited.append(report.headers["x-request-id"])
                event_id = f"kct-{n}-{serial:06d}"
                message = kct("APPLICATION_SUBMITTED", serial, loan_no=f"L{n}-{serial}",
                              amount="100000.00")  # fmt: skip
                message["eventId"] = event_id
                pushed = sender.send(message)
                seen.count(pushed.status_code)
                if 200 <= pushed.status_code < 300:
                    seen.messages.append(event_id)
            except httpx.TransportError:
                with seen.lock:
                    seen.failed += 1
                time.sleep(0.05)
    finally:
        client.close()
        sender.close()


Load = tuple[Seen, threading.Event, list[threading.Thread]]


def run_load(served: Served, bank: ClientKey, users: int) -> Load:
    seen, stop = Seen(), threading.Event()
    threads = [
        threading.Thread(target=load_loop, args=(served, bank, seen, stop, k), daemon=True)
        for k in range(users)
    ]
    for thread in threads:
        thread.start()
    return seen, stop, threads


def assert_exactly_once(engine: Engine, seen: Seen) -> None:
    """Every acknowledged answer's audit entry, consent (with its history) and platform
    message is stored exactly once; nothing is stored half."""
    with engine.connect() as conn:
        audit_ids = [r for (r,) in conn.execute(select(audit_entries.c.request_id))]
        consent_ids = [r for (r,) in conn.execute(select(consents.c.id))]
        created = select(consent_events.c.consent_id).where(consent_events.c.event == "created")
        histories = [r for (r,) in conn.execute(created)]
        pushed = select(loan_events.c.message_id).where(loan_events.c.platform == "kechuangtong")
        message_ids = [r for (r,) in conn.execute(pushed)]
    for request_id in seen.audited:
        assert audit_ids.count(request_id) == 1, f"audit entry for {request_id}"
    assert len(audit_ids) == len(set(audit_ids))
    assert set(seen.consents) <= set(consent_ids)
    assert sorted(histories) == sorted(consent_ids), "a consent without its history, or twice"
    assert set(seen.messages) <= set(message_ids)
    assert len(message_ids) == len(set(message_ids)), "a platform message stored twice"
