"""The worker's in-memory window answers every query as the plain history would."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.monitor.history import BatchHistory
from gateway.monitor.window import EventWindow
from policies.risk.base import MonitorEvent, Query
from policies.risk.memory import MemoryHistory

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PLATFORMS = ("kechuangtong", "nongdaitong", "yingchuang")
TYPES = ("application_submitted", "loan_disbursed", "repayment_overdue")


def random_event(rng: random.Random, n: int) -> MonitorEvent:
    # Whole minutes over ten days: many events share a time, so ties by id matter.
    at = T0 + timedelta(minutes=rng.randrange(10 * 24 * 60))
    kind = rng.choice(("loan", "loan", "query", "consent_denied"))
    attrs: dict[str, Any] = {"client_id": rng.choice(("a", "b"))}
    if kind == "loan":
        attrs = {"platform": rng.choice(PLATFORMS), "event_type": rng.choice(TYPES),
                 "loan_no": rng.choice((f"L{rng.randrange(40)}", "", None)),
                 "data": {"nested": [1, 2]}}  # fmt: skip
    code = rng.choice((f"C{rng.randrange(5)}", None))
    return MonitorEvent(f"e{n:05d}", kind, at, code, attrs)  # type: ignore[arg-type]


def random_query(rng: random.Random) -> dict[str, Any]:
    since = T0 + timedelta(minutes=rng.randrange(-600, 10 * 24 * 60))
    query: dict[str, Any] = {"since": since, "until": since + timedelta(hours=rng.randrange(80))}
    if rng.random() < 0.7:
        query["kind"] = rng.choice(("loan", "query", "consent_denied"))
    if rng.random() < 0.3:
        query["credit_code"] = f"C{rng.randrange(5)}"
    if rng.random() < 0.4:
        query["attr"] = rng.choice((("platform", rng.choice(PLATFORMS)), ("client_id", "a")))
    if rng.random() < 0.3:
        query["attrs"] = {"event_type": rng.choice(TYPES), "platform": rng.choice(PLATFORMS)}
    if rng.random() < 0.05:
        query["attr"] = ("data", {"nested": [1, 2]})  # unhashable: the database answers
    return query


@pytest.mark.parametrize("seed", range(6))
def test_the_window_answers_as_the_plain_history_does(seed: int) -> None:
    rng = random.Random(seed)
    truth = MemoryHistory()
    # The "database" below the floor holds everything, as monitor_events does.
    window = EventWindow(T0 + timedelta(days=rng.choice((-1, 3))))
    history = BatchHistory(window, truth)  # type: ignore[arg-type]
    for n in range(1500):
        event = random_event(rng, n)  # arrival order is not time order
        truth.add(event)
        window.add(event)
        if n % 7:
            continue
        for _ in range(4):
            query = random_query(rng)
            assert list(history.events(**query)) == list(truth.events(**query)), query
            assert history.count(**query) == truth.count(**query), query
            tally = {"by": "loan_no", "limit": rng.choice((1, 5, 50))}
            assert history.tally(**query, **tally) == truth.tally(**query, **tally), query
        if n == 900:
            window.raise_floor(T0 + timedelta(days=5))


def test_a_tally_follows_its_window_forward_back_and_through_late_events() -> None:
    truth, window = MemoryHistory(), EventWindow(T0)
    history = BatchHistory(window, truth)  # type: ignore[arg-type]
    rng = random.Random(1)
    for n in range(600):
        at = T0 + timedelta(hours=n if n % 10 else rng.randrange(n + 1))  # every tenth late
        event = MonitorEvent(f"e{n:04d}", "loan", at, "C1",
                             {"platform": "p", "loan_no": f"L{rng.randrange(60)}"})  # fmt: skip
        truth.add(event)
        window.add(event)
        for end in (at, at - timedelta(hours=200), at + timedelta(hours=3)):
            query = {"since": end - timedelta(hours=48), "until": end, "kind": "loan",
                     "attr": ("platform", "p"), "by": "loan_no", "limit": 7}  # fmt: skip
            assert history.tally(**query) == truth.tally(**query)


def test_events_below_the_floor_are_not_held() -> None:
    window = EventWindow(T0)
    window.add(MonitorEvent("old", "query", T0 - timedelta(seconds=1), None, {}))
    window.add(MonitorEvent("new", "query", T0, None, {}))
    assert "old" not in window
    assert "new" in window
    assert window.find(Query(T0 - timedelta(seconds=1), T0, "query")) is None
