"""Redis stopped: the configured rate-limit mode applies, the report cache is
bypassed, and the monitor's event bus refuses explicitly and loses nothing:
events committed while Redis was away are published once it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.metrics import REPORT_CACHE
from gateway.monitor.bus import STREAM, RedisStreamBus
from gateway.monitor.relay import WATERMARKS, relay_once
from gateway.monitor.service import load_rules, run
from gateway.positions import read_position
from gateway.redisconn import make_redis
from gateway.store.tables import monitor_events
from testkit.builders import code
from testkit.clients import register
from testkit.services import RedisServer, redis_server
from tests.faults.conftest import gateway_settings, seed_enterprises
from tests.loans.test_ledger import event as loan_event
from tests.loans.test_ledger import run as store_loans
from tests.policies.test_gate_http import stop as stop_redis
from tests.reports.test_reports_api import bearer, consent

REPORT = f"/v1/enterprises/{code(1)}/credit-report"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def cache_count(tier: str) -> float:
    return float(REPORT_CACHE.labels(tier)._value.get())


@pytest.mark.parametrize("mode", ["fail_closed", "local_fallback"])
def test_redis_stopped_applies_the_configured_mode_and_bypasses_the_report_cache(
    mode: str, own_redis: RedisServer, pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(
        tmp_path, pg_url, redis_url=own_redis.url, rate_limit_redis_down=mode,
        report_cache_entries=0, breaker_open_s=30.0,
        # A stopped Redis refuses at once; the database may take over the 1 s default
        # to answer on a loaded machine, and /readyz would then name it too.
        readiness_timeout_s=5.0,
    )  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        headers = {**auth, "Consent-Id": consent(client, auth)["id"]}
        assert client.get(REPORT, headers=headers).status_code == 200
        # Built once, then shared through Redis (no process-local copy is kept).
        assert redis.Redis.from_url(own_redis.url).keys("xyd:report:*")
        before = cache_count("redis")
        assert client.get(REPORT, headers=headers).status_code == 200
        assert cache_count("redis") == before + 1

        stop_redis(own_redis.pid())
        misses = cache_count("miss")
        started = time.perf_counter()
        answers = [client.get(REPORT, headers=headers) for _ in range(4)]
        elapsed = time.perf_counter() - started
        if mode == "fail_closed":
            assert {a.status_code for a in answers} == {503}
            problem = answers[0].json()
            assert answers[0].headers["content-type"] == "application/problem+json"
            assert problem["type"].endswith("/rate-limiter-unavailable")
            assert "sections" not in answers[0].text
        else:
            assert [a.status_code for a in answers] == [200] * 4
            # Every answer was built afresh: the cache was bypassed, not waited on.
            assert cache_count("miss") == misses + 4
            assert answers[0].json()["credit_code"] == code(1)
        # Fail fast: four requests cost far less than one Redis timeout each would.
        assert elapsed < 4 * settings.redis_timeout_s + 2.0, elapsed
        assert client.get("/readyz").json()["down"] == ["redis"]


async def _monitor_across_a_redis_outage(
    engine: Engine, server: RedisServer, tmp_path: Path
) -> None:
    settings = gateway_settings(tmp_path, str(engine.url), redis_url=server.url)
    client = make_redis(settings)
    assert client is not None
    bus = RedisStreamBus(client, claim_idle_ms=1000)
    stop = asyncio.Event()
    rules = load_rules(settings.config_dir)
    worker = asyncio.create_task(run(engine, bus, rules, "faults", stop, notified=frozenset()))
    start = datetime.now(UTC) - timedelta(hours=1)

    def applied() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(monitor_events)).scalar_one())

    async def until(n: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while applied() < n:
            assert time.monotonic() < deadline, f"{applied()} of {n} events applied"
            await asyncio.sleep(0.1)

    def loans(first: int, n: int) -> None:
        store_loans(engine, *[
            loan_event(k, "loan_disbursed", k, amount_fen=10_000_00, credit_code=code(k),
                       loan_no=f"L-{k}", occurred_at=start + timedelta(minutes=k))
            for k in range(first, first + n)
        ])  # fmt: skip

    try:
        loans(1, 3)
        await until(3, 10)
        stop_redis(server.pid())
        loans(4, 5)
        # Refused explicitly: the relay raises and keeps its watermark in the database.
        with pytest.raises((redis.RedisError, OSError)):
            await relay_once(engine, bus)
        with engine.connect() as conn:
            watermark = int(read_position(conn, WATERMARKS, "loan_events") or 0)
        assert watermark < 8
        await asyncio.sleep(1.5)
        assert applied() == 3
        # Redis comes back empty (no persistence): everything committed is published.
        with redis_server(port=server.port):
            await until(8, 15)
            # Read with a client of its own: the shared pool may still hold a
            # connection to the Redis that was stopped (the monitor's loops
            # outlive such a failure; one read here would not).
            fresh = redis.asyncio.Redis.from_url(server.url)
            try:
                entries: Any = await fresh.xrange(STREAM)
            finally:
                await fresh.aclose()
            ids = [fields[b"e"] for _, fields in entries]
            assert len(ids) == len(set(ids)), "an event was published twice after the outage"
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
        await client.aclose()
    with engine.connect() as conn:
        rows = [
            r for (r,) in conn.execute(select(monitor_events.c.id).order_by(monitor_events.c.id))
        ]
    assert sorted(rows) == sorted(f"loan:kechuangtong:m-{k}" for k in range(1, 9))


def test_monitor_bus_refuses_while_redis_is_down_and_loses_nothing(
    own_redis: RedisServer, pg_engine: Engine, tmp_path: Path
) -> None:
    asyncio.run(_monitor_across_a_redis_outage(pg_engine, own_redis, tmp_path))
