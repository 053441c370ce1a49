"""The monitor: each event applied once, alerts raised, platforms notified, over a real bus."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import Engine, func, select

from gateway.monitor.bus import MemoryBus, RedisStreamBus
from gateway.monitor.relay import mark_applied, recover, relay_once
from gateway.monitor.worker import Monitor
from gateway.store.tables import alerts, monitor_events, outbox
from policies.risk.base import Finding, History, MonitorEvent
from testkit.builders import code
from testkit.services import RedisServer
from tests.loans.test_ledger import event as loan_event
from tests.loans.test_ledger import run as store_loans

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


class Overdue:
    """A stand-in rule: any repayment 30 days late, per loan."""

    name = "overdue_default"

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        days = event.attrs.get("days_overdue") or 0
        if event.kind != "loan" or days < 30:
            return []
        seen = history.events(
            since=event.occurred_at - timedelta(days=1), until=event.occurred_at, kind="loan"
        )
        assert any(e.id == event.id for e in seen)  # the history includes the event
        return [
            Finding(
                self.name, "high", f"loan:{event.attrs['platform']}:{event.attrs['loan_no']}",
                f"逾期 {days} 天", (event.id,), event.credit_code,
            )
        ]  # fmt: skip


def overdue(n: int, platform: str = "kechuangtong") -> MonitorEvent:
    return MonitorEvent(
        id=f"loan:{platform}:m-{n}",
        kind="loan",
        occurred_at=T0 + timedelta(minutes=n),
        credit_code=code(1),
        attrs={"platform": platform, "event_type": "repayment_overdue", "loan_no": f"L-{n}",
               "days_overdue": 31},
    )  # fmt: skip


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_an_event_applies_once_and_notifies_its_platform(engine: Engine) -> None:
    monitor = Monitor(engine, [Overdue()])
    raised = monitor.apply(overdue(1))
    assert len(raised) == 1
    assert monitor.apply(overdue(1)) == []  # redelivered: nothing happens twice
    assert monitor.apply(overdue(2, platform="yingchuang")) != []
    assert count(engine, monitor_events) == 2
    assert count(engine, alerts) == 2
    with engine.connect() as conn:
        [note] = conn.execute(select(outbox)).all()
    assert note.destination == "kechuangtong"  # Yingchuang's spec has no notification
    assert note.payload["alertId"] == raised[0]
    assert note.payload["applicationNo"] == "L-1"


async def test_the_relay_publishes_committed_events_once(engine: Engine) -> None:
    store_loans(engine, loan_event(1, "loan_disbursed", amount_fen=100))
    bus = MemoryBus()
    assert await relay_once(engine, bus) == 1
    assert await relay_once(engine, bus) == 0
    [delivery] = await bus.read("w", 10, 10)
    assert delivery.event.id == "loan:kechuangtong:m-1"
    assert delivery.event.attrs["amount_fen"] == 100


@pytest.fixture
async def redis_bus(redis_srv: RedisServer) -> RedisStreamBus:
    client = Redis.from_url(redis_srv.url)
    await client.flushall()
    return RedisStreamBus(client, claim_idle_ms=200)


async def test_a_killed_workers_events_are_claimed_and_applied_exactly_once(
    engine: Engine, redis_bus: RedisStreamBus
) -> None:
    events = [overdue(n) for n in range(1, 21)]
    await redis_bus.publish(events)
    monitor = Monitor(engine, [Overdue()])
    # Worker A takes a batch, applies half of it, and dies before acknowledging.
    taken = await redis_bus.read("worker-a", 10, 100)
    assert len(taken) == 10
    for delivery in taken[:5]:
        monitor.apply(delivery.event)
    # Worker B runs until everything is applied: the rest of the stream, then A's
    # pending batch once it has been idle long enough.
    stop = asyncio.Event()
    runner = asyncio.create_task(monitor.run(redis_bus, "worker-b", stop=stop))
    for _ in range(100):
        if count(engine, monitor_events) == 20:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # let B acknowledge its last batch
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert count(engine, monitor_events) == 20
    assert count(engine, alerts) == 20  # one per loan, none twice
    assert count(engine, outbox) == 20
    pending = await redis_bus.redis.xpending("xyd:monitor:events", "monitor")
    assert pending["pending"] == 0
    assert await redis_bus.lag() in (0, None)  # None: a Redis before 7 does not say
    await redis_bus.publish([overdue(99)])
    assert await redis_bus.lag() in (1, None)
    await redis_bus.redis.aclose()


def test_embedded_gateway_turns_a_platform_event_into_an_alert(
    settings: object, engine: Engine
) -> None:
    import time

    from starlette.testclient import TestClient

    from gateway.app import create_app

    with TestClient(create_app(settings)):  # type: ignore[arg-type]
        store_loans(
            engine,
            loan_event(1, "loan_disbursed", amount_fen=1000),
            loan_event(2, "repayment_overdue", 5, days_overdue=95),
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and count(engine, alerts) == 0:
            time.sleep(0.2)
    with engine.connect() as conn:
        [alert] = conn.execute(select(alerts)).all()
    assert (alert.rule, alert.severity) == ("overdue_default", "critical")
    assert alert.evidence == ["loan:kechuangtong:m-2"]


async def test_a_black_listing_after_a_loan_raises_deterioration(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from gateway.monitor import relay
    from gateway.monitor.service import load_rules
    from gateway.records.readers import read_ndjson
    from gateway.records.service import Ingestor
    from testkit.builders import ndjson

    monkeypatch.setattr(relay, "SETTLE", timedelta(0))
    now = datetime.now(UTC)
    store_loans(
        engine,
        loan_event(1, "loan_disbursed", amount_fen=1000, occurred_at=now - timedelta(days=20)),
    )
    listing = {
        "record_id": "BL-1", "source_department": "成都市发展和改革委员会",
        "credit_code": code(1), "subject_name": "成都测试1号有限公司",
        "list_name": "严重失信主体名单", "listing_authority": "成都市发展和改革委员会",
        "listed_on": (now - timedelta(days=2)).date().isoformat(), "reason": "拖欠农民工工资",
    }  # fmt: skip
    Ingestor(engine, "black_list", b"k", 10).run(read_ndjson(ndjson(listing).splitlines()), "t")
    bus = MemoryBus()
    assert await relay_once(engine, bus) == 2
    monitor = Monitor(engine, load_rules(Path("config")))
    for delivery in await bus.read("w", 10, 10):
        monitor.apply(delivery.event)
    with engine.connect() as conn:
        rules = {row.rule for row in conn.execute(select(alerts))}
    assert "post_loan_deterioration" in rules
    assert await relay_once(engine, bus) == 0  # the watermark moved past both


async def drain(engine: Engine, bus: MemoryBus | RedisStreamBus, monitor: Monitor) -> None:
    for _ in range(5):  # bounded: a few reads empty the bus in these tests
        deliveries = await bus.read("w", 100, 10)
        for delivery in deliveries:
            monitor.apply(delivery.event)
        await bus.ack(deliveries)


async def test_events_held_by_a_process_that_died_are_published_again(engine: Engine) -> None:
    monitor = Monitor(engine, [Overdue()])
    store_loans(engine, loan_event(1, "repayment_overdue", days_overdue=31))
    first = MemoryBus()
    assert await recover(engine, first, starting=True) == []
    assert await relay_once(engine, first) == 1
    await drain(engine, first, monitor)
    assert await mark_applied(engine, first)
    # The next event is published into the queue, and the process dies before it
    # is applied: the watermark has moved past it, the queue is gone.
    store_loans(engine, loan_event(2, "repayment_overdue", days_overdue=31))
    assert await relay_once(engine, first) == 1
    [held] = await first.read("w", 10, 10)
    assert not await mark_applied(engine, first)  # read, not acknowledged: not drained
    restarted = MemoryBus()
    assert await recover(engine, restarted, starting=True) == ["loan_events"]
    assert await relay_once(engine, restarted) == 1
    [again] = await restarted.read("w", 10, 10)
    assert again.event.id == held.event.id
    monitor.apply(again.event)
    assert count(engine, monitor_events) == 2
    assert await recover(engine, restarted, starting=False) == []  # only at start


async def test_a_redis_that_comes_back_empty_gets_the_unapplied_events_again(
    engine: Engine, redis_bus: RedisStreamBus
) -> None:
    monitor = Monitor(engine, [Overdue()])
    for n in (1, 2):
        store_loans(engine, loan_event(n, "repayment_overdue", days_overdue=31))
    assert await recover(engine, redis_bus, starting=True) == []  # first epoch: stored
    assert await relay_once(engine, redis_bus) == 2
    await drain(engine, redis_bus, monitor)
    assert await mark_applied(engine, redis_bus)
    for n in (3, 4, 5):
        store_loans(engine, loan_event(n, "repayment_overdue", days_overdue=31))
    assert await relay_once(engine, redis_bus) == 3
    assert not await mark_applied(engine, redis_bus)  # published, not yet applied
    assert await recover(engine, redis_bus, starting=False) == []  # same contents
    await redis_bus.redis.flushall()  # Redis restarted without its data
    assert await recover(engine, redis_bus, starting=False) == ["loan_events"]
    assert await relay_once(engine, redis_bus) == 3
    await drain(engine, redis_bus, monitor)
    with engine.connect() as conn:
        applied = sorted(conn.execute(select(monitor_events.c.id)).scalars())
    assert applied == [f"loan:kechuangtong:m-{n}" for n in range(1, 6)]
    assert await mark_applied(engine, redis_bus)
