"""Two `xyd monitor` processes share one Redis stream; one is killed with SIGKILL
while it works. Its pending events are claimed by the other, and every
event's effects (its row, its alert, the alert's history, the platform's
notification) exist exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import Engine, create_engine, func, select

from gateway.monitor.bus import GROUP, STREAM, RedisStreamBus
from gateway.store.tables import alert_history, alerts, monitor_events, outbox
from testkit.services import Postgres, redis_server
from tests.conftest import fresh_pg_database
from tests.monitor.test_monitor import overdue

CONFIG = Path(__file__).resolve().parents[2] / "config"
EVENTS = 4000
KILL_AFTER = 1000


def count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int(conn.execute(query).scalar_one())


def _wait_for(engine: Engine, n: int, procs: list[subprocess.Popen[bytes]], seconds: float,
              logs: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + seconds
    while count(engine, monitor_events) < n:
        assert time.monotonic() < deadline, f"only {count(engine, monitor_events)} of {n}; {logs}"
        assert any(p.poll() is None for p in procs), f"every worker exited; see {logs}"
        time.sleep(0.05)


async def _publish_and_pending(url: str, publish: bool) -> int:
    redis = Redis.from_url(url)
    try:
        if publish:
            await RedisStreamBus(redis).publish([overdue(n) for n in range(1, EVENTS + 1)])
            return 0
        info = await redis.xpending(STREAM, GROUP)
        return int(info["pending"])
    finally:
        await redis.aclose()


def _config_with_callback(tmp_path: Path) -> Path:
    """科创通 with a callback URL: new alerts on its loans queue a notification."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    platforms = config / "platforms.yaml"
    old = "callback_file: demo/platforms/kechuangtong/callback_url"
    assert old in platforms.read_text()
    platforms.write_text(platforms.read_text().replace(
        old, "callback_url: http://127.0.0.1:9/risk-alerts", 1))  # fmt: skip
    return config


def test_sigkill_mid_batch_loses_and_repeats_nothing(pg: Postgres, tmp_path: Path) -> None:
    url = fresh_pg_database(pg)
    engine = create_engine(url)
    logs = tmp_path / "logs"
    logs.mkdir()
    with redis_server() as redis:
        asyncio.run(_publish_and_pending(redis.url, publish=True))
        env = {**os.environ, "XYD_STATE_DIR": str(tmp_path / ".xyd"), "XYD_DATABASE_URL": url,
               "XYD_REDIS_URL": redis.url, "XYD_MONITOR_CLAIM_IDLE_MS": "1000",
               "XYD_CONFIG_DIR": str(_config_with_callback(tmp_path))}  # fmt: skip
        procs = [
            subprocess.Popen([sys.executable, "-m", "gateway.cli", "monitor", "--consumer", name],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=(logs / f"{name}.log").open("wb"))
            for name in ("victim", "survivor")
        ]  # fmt: skip
        victim, survivor = procs
        try:
            _wait_for(engine, KILL_AFTER, procs, 90, logs)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            applied_at_kill = count(engine, monitor_events)
            assert applied_at_kill < EVENTS, "the victim died after the work was done"
            _wait_for(engine, EVENTS, [survivor], 120, logs)
            deadline = time.monotonic() + 20
            while asyncio.run(_publish_and_pending(redis.url, publish=False)):
                assert time.monotonic() < deadline, "events left pending"
                time.sleep(0.2)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    raised = count(engine, alerts)
    assert count(engine, monitor_events) == EVENTS
    # One overdue alert per loan, none twice (other rules may add their own once).
    assert count(engine, alerts, alerts.c.rule == "overdue_default") == EVENTS
    assert count(engine, alert_history, alert_history.c.action == "raised") == raised
    assert count(engine, outbox) == raised  # one 科创通 notification per new alert
    print(f"killed after {applied_at_kill} of {EVENTS}; all applied exactly once")
    engine.dispose()
