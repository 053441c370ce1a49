"""What the rules share: reading attrs without trusting them, event-time windows, evidence.

Attrs come from platforms and record feeds; a rule that cannot read what it
needs ignores the event rather than raising, so one malformed event never
stops the monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from policies.risk.base import MonitorEvent
from policies.risk.base import text as text

MAX_EVIDENCE = 50
SHANGHAI = timezone(timedelta(hours=8))  # UTC+8 all year: no daylight saving to follow


def whole(attrs: Mapping[str, Any], key: str) -> int | None:
    value = attrs.get(key)
    if isinstance(value, bool):  # bool is an int to Python, never a count or amount to us
        return None
    if isinstance(value, int):
        return value
    # ASCII and short: `isdigit()` is also true of "²" (int() refuses it) and of
    # 5,000 digits (int() refuses those too), and a rule must not raise.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def record_data(event: MonitorEvent) -> Mapping[str, Any]:
    data = event.attrs.get("data")
    return data if isinstance(data, Mapping) else {}


def loan_type(event: MonitorEvent) -> str | None:
    return text(event.attrs, "event_type") if event.kind == "loan" else None


def loan_key(event: MonitorEvent) -> str | None:
    """`<platform>:<loan_no>`: loan numbers are only unique within a platform."""
    platform, loan_no = text(event.attrs, "platform"), text(event.attrs, "loan_no")
    return f"{platform}:{loan_no}" if platform and loan_no else None


def as_day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def evidence(events: Iterable[MonitorEvent]) -> tuple[str, ...]:
    return tuple(sorted({e.id for e in events}))[:MAX_EVIDENCE]


def matches(event: MonitorEvent, pairs: Iterable[tuple[str, Any]]) -> bool:
    return all(event.attrs.get(name) == value for name, value in pairs)


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime
    events: tuple[MonitorEvent, ...]
    keys: frozenset[str]


def densest_window(
    events: Sequence[MonitorEvent],
    key: Callable[[MonitorEvent], str | None],
    anchor: datetime,
    span: timedelta,
) -> Window | None:
    """Of the `span`-long windows containing `anchor`, the one with most distinct keys.

    Trying every window that contains the anchor, not only the one ending at
    it, makes the outcome independent of arrival order: whichever event of a
    qualifying window arrives last sees all of it. Callers pass the events of
    [anchor - span, anchor + span]. Ties go to the earliest window.
    """
    keyed = sorted(
        ((e, k) for e in events if (k := key(e)) is not None),
        key=lambda pair: (pair[0].occurred_at, pair[0].id),
    )
    best: Window | None = None
    for first, _ in keyed:
        start = first.occurred_at
        if not anchor - span <= start <= anchor:
            continue
        inside = [(e, k) for e, k in keyed if start <= e.occurred_at <= start + span]
        keys = frozenset(k for _, k in inside)
        if best is None or len(keys) > len(best.keys):
            best = Window(start, start + span, tuple(e for e, _ in inside), keys)
    return best
