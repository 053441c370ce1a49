"""A pull platform failing (5xx) or too slow: bounded retries, then the circuit
opens and scheduled syncs skip it; the lag metric grows while it is away and
falls back once the platform answers; what it then serves is stored once."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, create_engine, func, select
from starlette.testclient import TestClient

from adapters.http import RetryPolicy
from adapters.tianfu_rongtong.adapter import TianfuRongtongAdapter
from gateway.app import create_app
from gateway.state import state_of
from gateway.store.tables import loan_events
from testkit.builders import codes_in, register_enterprises
from testkit.clients import register
from testkit.live import serve
from tests.faults.conftest import gateway_settings, wait_until
from xyd_demo.simulators.tianfu_rongtong import BANKS, TianfuRongtongSimulator

CONFIG = Path(__file__).resolve().parents[2] / "config"
KEY = "tianfu-rongtong"
SCHEDULE_S = 0.2
OPEN_S = 1.0
ATTEMPTS = 2


class Faulty:
    """The simulator behind a switch: "ok", "fail" (503) or "slow" (answers after `delay`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.mode = "ok"
        self.delay = 0.0
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            self.requests += 1
            if self.mode == "fail":
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"down"})
                return
            if self.mode == "slow":
                await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(loan_events)).scalar_one())


def test_failing_then_slow_platform_is_bounded_opens_the_circuit_and_recovers(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "xyd.db"
    shutil.copy(sqlite_template, database)
    engine = create_engine(f"sqlite:///{database}")
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    simulator = TianfuRongtongSimulator(seed=5, events=60)
    # Authorisations for enterprises the registry does not hold are refused by design.
    register_enterprises(engine, *codes_in(json.dumps(simulator.log.entries)))
    platform = Faulty(simulator.app)
    platform.mode = "fail"
    with serve(platform) as base:
        credentials = tmp_path / "tfrt.json"
        credentials.write_text(json.dumps({"base_url": base, "client_id": simulator.client_id,
                                           "client_secret": simulator.client_secret}))  # fmt: skip
        config = tmp_path / "config"
        shutil.copytree(CONFIG, config)
        block = {"enabled": True, "simulator_file": str(credentials), "schedule_s": SCHEDULE_S,
                 "breaker_failures": 2, "breaker_open_s": OPEN_S}  # fmt: skip
        (config / "platforms.yaml").write_text(yaml.safe_dump({KEY: block}))
        settings = gateway_settings(
            tmp_path, f"sqlite:///{database}", config_dir=config, run_embedded_monitor=False,
            outbox_poll_s=60.0,
        )  # fmt: skip
        app = create_app(settings)
        adapter = state_of(app).platforms[KEY]
        assert isinstance(adapter, TianfuRongtongAdapter)
        adapter.retry = RetryPolicy(attempts=ATTEMPTS, base_s=0.02, cap_s=0.05)
        adapter.timeout = httpx.Timeout(0.3)
        with TestClient(app) as client:
            before = client.get("/metrics").text
            # 5xx: every sync gives up after its bounded attempts; after two the
            # circuit opens and the schedule skips the platform instead of hammering it.
            time.sleep(2.5)
            during = client.get("/metrics").text
            syncs = metric(during, "xyd_platform_syncs_total", platform=KEY, outcome="failed")
            syncs -= metric(before, "xyd_platform_syncs_total", platform=KEY, outcome="failed")
            skipped = metric(during, "xyd_platform_syncs_total", platform=KEY, outcome="skipped")
            skipped -= metric(before, "xyd_platform_syncs_total", platform=KEY, outcome="skipped")
            assert 2 <= syncs <= 4, syncs  # two, then one trial per open period
            assert skipped >= 4, skipped
            assert platform.requests <= syncs * ATTEMPTS, platform.requests
            assert metric(during, "xyd_platform_sync_lag_seconds", platform=KEY) >= 2.0
            assert stored(engine) == 0

            # Too slow to wait for: each attempt is cut at the timeout, the circuit stays open.
            platform.mode, platform.delay = "slow", 2.0
            counted = platform.requests
            time.sleep(1.5)
            slow = client.get("/metrics").text
            assert platform.requests - counted <= 2 * ATTEMPTS
            assert metric(slow, "xyd_platform_sync_lag_seconds", platform=KEY) >= 3.5

            # Back (slow but within the timeout): the next trial syncs; lag falls.
            platform.mode, platform.delay = "slow", 0.01
            valid = {k for k in simulator.log.unique() if k not in simulator.log.invalid_ids}
            assert wait_until(lambda: stored(engine) == len(valid), OPEN_S + 5)
            after = client.get("/metrics").text
            assert metric(after, "xyd_platform_sync_lag_seconds", platform=KEY) < 1.0
            assert metric(after, "xyd_platform_syncs_total", platform=KEY, outcome="ok") >= 1
            time.sleep(3 * SCHEDULE_S)  # more syncs of the same feed store nothing twice
            assert stored(engine) == len(valid)
    engine.dispose()
