"""Batches, turns and the in-memory window change nothing a rule concludes.

The reference is the monitor applying one event per transaction. Batches, two
workers taking turns, and a window so short that rules read the database
must leave the same alerts, alert history and notifications.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select

from gateway.monitor.bus import MemoryBus
from gateway.monitor.service import load_rules
from gateway.monitor.turns import NAME, SCOPE
from gateway.monitor.worker import Monitor
from gateway.store.tables import (
    alert_history,
    alerts,
    enterprises,
    monitor_events,
    outbox,
    platform_sync_state,
)
from loadtests.monitor_bench import synthetic
from policies.risk.base import Finding, History, MonitorEvent, Rule
from testkit.builders import code
from tests.monitor.test_monitor import Overdue, overdue

CONFIG = Path(__file__).resolve().parents[2] / "config"
REP = "cd" * 32


def workload() -> list[MonitorEvent]:
    """The benchmark's mix, shuffled (late events everywhere) and with repeats, plus
    young enterprises of one representative applying for large loans."""
    rng = random.Random(3)
    events = synthetic(800)
    start = events[0].occurred_at
    for n in (1, 2, 3):
        events.append(MonitorEvent(
            f"loan:kechuangtong:young-{n}", "loan", start + timedelta(hours=n), code(n),
            {"platform": "kechuangtong", "event_type": "application_submitted",
             "loan_no": f"Y{n}", "amount_fen": 900_000_000},
        ))  # fmt: skip
    rng.shuffle(events)
    return events + rng.sample(events, 20)  # redelivered


def register_young_enterprises(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(enterprises), [
            {"credit_code": code(n), "name": f"成都测试{n}号有限公司", "entity_type": "company",
             "division_code": "510104", "legal_rep_hash": REP, "status": "active",
             "registered_on": date.today() - timedelta(days=40), "created_at": now,
             "updated_at": now}
            for n in (1, 2, 3)
        ])  # fmt: skip


def snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found = list(conn.execute(select(alerts)))
        subject = {a.id: (a.rule, a.subject) for a in found}
        lines = conn.execute(select(alert_history))
        notes = [(o.destination, o.payload["rule"], o.payload["applicationNo"])
                 for o in conn.execute(select(outbox))]  # fmt: skip
        return {
            "events": conn.execute(select(func.count()).select_from(monitor_events)).scalar(),
            "alerts": sorted(_alert(a) for a in found),
            "history": Counter((*subject[h.alert_id], h.action, h.note) for h in lines),
            "notes": Counter(notes),
        }


def _alert(a: Any) -> tuple[Any, ...]:
    details = json.dumps(a.details, sort_keys=True)
    return (a.rule, a.subject, a.severity, a.state, a.title, tuple(a.evidence), details,
            str(a.first_seen_at), str(a.last_seen_at))  # fmt: skip


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (outbox, alert_history, alerts, monitor_events):
            conn.execute(delete(table))
        conn.execute(
            delete(platform_sync_state).where(
                platform_sync_state.c.platform == SCOPE, platform_sync_state.c.name == NAME
            )
        )


def in_batches(monitors: Sequence[Monitor], events: Sequence[MonitorEvent], size: int) -> None:
    for n, start in enumerate(range(0, len(events), size)):
        monitors[n % len(monitors)].apply_batch(events[start : start + size])


def test_batches_turns_and_a_short_window_conclude_what_one_by_one_does(engine: Engine) -> None:
    register_young_enterprises(engine)
    rules, events = load_rules(CONFIG), workload()
    one_by_one = Monitor(engine, rules)
    for event in events:
        one_by_one.apply(event)
    expected = snapshot(engine)
    assert expected["events"] == 803
    assert {rule for rule, *_ in expected["alerts"]} >= {
        "overdue_default", "platform_stress", "new_entity_risk", "query_abuse",
    }  # fmt: skip
    runs = {
        "batches": lambda: in_batches([Monitor(engine, rules)], events, 64),
        "two workers": lambda: in_batches([Monitor(engine, rules), Monitor(engine, rules)],
                                          events, 50),
        "short window": lambda: in_batches(
            [Monitor(engine, rules, keep=timedelta(hours=1)),
             Monitor(engine, rules, keep=timedelta(minutes=20))], events, 37),
    }  # fmt: skip
    for name, run in runs.items():
        reset(engine)
        run()
        assert snapshot(engine) == expected, name


class Probe:
    """Records which events each event's rule saw around it."""

    name = "probe"

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        around = history.events(
            since=event.occurred_at - timedelta(days=1), until=event.occurred_at + timedelta(days=1)
        )
        self.seen[event.id] = [e.id for e in around]
        return ()


def test_a_rule_reading_the_database_sees_its_batch_only_up_to_its_event(engine: Engine) -> None:
    probe = Probe()
    monitor = Monitor(engine, [probe], keep=timedelta(minutes=1))
    t = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    newest = MonitorEvent("newest", "query", t + timedelta(hours=2), None, {})
    late = MonitorEvent("late", "query", t, None, {})  # below the window: read from the database
    after = MonitorEvent("after", "query", t + timedelta(minutes=1), None, {})
    monitor.apply_batch([newest, late, after])
    assert probe.seen["newest"] == ["newest"]
    assert probe.seen["late"] == ["late", "newest"]
    assert probe.seen["after"] == ["late", "after", "newest"]


class Breaks:
    name = "breaks"

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        if event.id.endswith("m-3"):
            raise RuntimeError("a rule failed on this event")
        return ()


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_a_failing_event_costs_only_itself(engine: Engine) -> None:
    rules: list[Rule] = [Overdue(), Breaks()]
    monitor = Monitor(engine, rules)
    with pytest.raises(RuntimeError):
        monitor.apply_batch([overdue(1), overdue(2), overdue(3)])
    assert count(engine, monitor_events) == 0  # the batch left nothing
    bus = MemoryBus()
    await bus.publish([overdue(n) for n in range(1, 9)])
    stop = asyncio.Event()
    runner = asyncio.create_task(monitor.run(bus, "w", stop=stop))
    for _ in range(200):
        if count(engine, monitor_events) == 7:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(runner, 5)
    with engine.connect() as conn:
        applied = set(conn.execute(select(monitor_events.c.id)).scalars())
    assert applied == {overdue(n).id for n in range(1, 9)} - {overdue(3).id}
    assert count(engine, alerts) == 7  # the window was rebuilt after the failed batch
    assert monitor.apply_batch([overdue(1), overdue(1)]) == [[], []]  # repeats
