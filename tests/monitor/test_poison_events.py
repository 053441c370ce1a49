"""A poison event (it raises each time it is applied) is dead-lettered after
`max_deliveries`, in both modes alike: counted, listed on the dashboard, and
no longer retried; the events around it are applied."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from gateway.monitor.bus import MemoryBus, RedisStreamBus
from gateway.monitor.worker import DEAD_LETTERS, Monitor
from gateway.store.tables import monitor_events, platform_dead_letters
from policies.risk.base import Finding, History, MonitorEvent
from testkit.builders import resident_id
from testkit.services import RedisServer
from tests.dashboard.test_login import client
from tests.dashboard.test_pages import logged_in
from tests.monitor.test_monitor import overdue

__all__ = ["client"]
PERSON_ID = resident_id()


class Poison:
    """Raises on one event, every time; quotes an ID number, as a careless error may."""

    name = "poison"

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        if event.id.endswith(":m-2"):
            raise RuntimeError(f"cannot judge holder {PERSON_ID}")
        return []


def _dead_lettered() -> float:
    labels = {"kind": "loan", "outcome": "dead_lettered"}
    return REGISTRY.get_sample_value("xyd_monitor_events_total", labels) or 0.0


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int(conn.execute(query).scalar_one())


async def _run_until(monitor: Monitor, bus: object, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(bus, "w", stop=stop, batch=10))  # type: ignore[arg-type]
    deadline = time.monotonic() + 20
    try:
        while not done():
            assert time.monotonic() < deadline, "the poison event was never dead-lettered"
            assert not task.done(), task
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


@pytest.fixture(params=["embedded", "redis"])
async def bus(request: pytest.FixtureRequest) -> MemoryBus | RedisStreamBus:
    if request.param == "embedded":
        return MemoryBus(claim_idle_ms=100)
    server: RedisServer = request.getfixturevalue("redis_srv")
    client = Redis.from_url(server.url, socket_timeout=0.25)
    await client.flushall()
    return RedisStreamBus(client, claim_idle_ms=100)


async def test_a_poison_event_is_dead_lettered_after_max_deliveries(
    engine: Engine, bus: MemoryBus | RedisStreamBus
) -> None:
    before = _dead_lettered()
    monitor = Monitor(engine, [Poison()], max_deliveries=3)
    await bus.publish([overdue(1), overdue(2), overdue(3)])
    mine = platform_dead_letters.c.platform == DEAD_LETTERS
    await _run_until(monitor, bus, lambda: _count(engine, platform_dead_letters, mine) > 0)
    assert _count(engine, monitor_events) == 2  # the others were applied
    with engine.connect() as conn:
        [dead] = conn.execute(select(platform_dead_letters).where(mine)).all()
    assert b"loan:kechuangtong:m-2" in dead.raw
    assert "RuntimeError" in dead.reason and "after 3 deliveries" in dead.reason
    assert PERSON_ID not in dead.reason  # redacted as every log line is
    assert _dead_lettered() == before + 1
    assert await bus.drained()  # acknowledged: not retried forever, not held
    await asyncio.sleep(0.3)  # past the claim delay: nothing comes back
    assert await bus.read("w", 10, 10) == []


def test_the_dashboard_shows_the_dead_letters(client: TestClient, engine: Engine) -> None:
    logged_in(client, engine)
    assert "data-dead-letters" not in client.get("/dashboard").text  # none: nothing shown
    monitor = Monitor(engine, [Poison()], max_deliveries=1)

    async def once() -> None:
        bus = MemoryBus(claim_idle_ms=100)
        await bus.publish([overdue(2)])
        mine = platform_dead_letters.c.platform == DEAD_LETTERS
        await _run_until(monitor, bus, lambda: _count(engine, platform_dead_letters, mine) > 0)

    asyncio.run(once())
    page = client.get("/dashboard?lang=en").text
    assert "data-dead-letters>1<" in page
    assert "loan:kechuangtong:m-2" in page and "Monitor events dead-lettered" in page
    assert PERSON_ID not in page
