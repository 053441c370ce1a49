"""`EventWindow`: the applied events of recent event time, held in memory by one worker.

It holds every applied event whose time is at or after its `floor`, so a
query that starts there is answered without the database; one that reaches
below (a late event, a long look-back) gets None and goes to the database.
Events are indexed on demand by the fields a query names (kind, credit code,
attributes): each index value is a `Series` ordered by (time, id), so a
query costs two binary searches rather than a walk through the window.

The worker keeps the window equal to the database (see `gateway.monitor.turns`):
it is built from the table, adds what other workers applied before each batch,
and is dropped whenever a batch fails.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.risk.base import MonitorEvent, Query, Tally

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
# The name an index uses for the credit code, which is a column, not an attribute:
# attribute names are never empty.
CODE = ""
MAX_PLANS = 100_000

Signature = tuple[str | None, tuple[str, ...]]  # kind (None: any) and the field names


def micros(moment: datetime) -> int:
    """Event time as an integer: compared faster than aware datetimes, exact to the µs."""
    return (moment - EPOCH) // ONE_US


class _Tally:
    """Distinct values of one attribute over a range of a series, moved rather than
    recounted: consecutive events of a stream ask for nearly the same range."""

    __slots__ = ("by", "counts", "hi", "ids", "lo")

    def __init__(self, by: str) -> None:
        self.by = by
        self.lo = self.hi = 0
        self.counts: dict[str, int] = {}
        self.ids: list[str] = []  # sorted: the first few are the evidence

    def _value(self, event: MonitorEvent) -> str | None:
        value = event.attrs.get(self.by)
        return value if isinstance(value, str) and value else None

    def _add(self, event: MonitorEvent) -> None:
        value = self._value(event)
        if value is not None:
            self.counts[value] = self.counts.get(value, 0) + 1
            insort(self.ids, event.id)

    def _remove(self, event: MonitorEvent) -> None:
        value = self._value(event)
        if value is not None:
            left = self.counts[value] - 1
            if left:
                self.counts[value] = left
            else:
                del self.counts[value]
            del self.ids[bisect_left(self.ids, event.id)]

    def inserted(self, position: int, event: MonitorEvent) -> None:
        """The series gained `event` at `position`: keep covering the same events."""
        if position <= self.lo:
            self.lo += 1
            self.hi += 1
        elif position < self.hi:
            self._add(event)
            self.hi += 1

    def move(self, events: Sequence[MonitorEvent], lo: int, hi: int) -> None:
        moves = abs(lo - self.lo) + abs(hi - self.hi)
        if hi <= self.lo or lo >= self.hi or moves > hi - lo:
            self.counts.clear()
            self.ids.clear()
            for event in events[lo:hi]:
                self._add(event)
        else:
            for event in events[self.lo : lo]:
                self._remove(event)
            for event in events[lo : self.lo]:
                self._add(event)
            for event in events[hi : self.hi]:
                self._remove(event)
            for event in events[self.hi : hi]:
                self._add(event)
        self.lo, self.hi = lo, hi


class Series:
    """The events of one index value, ordered by (time, id)."""

    __slots__ = ("events", "tallies", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.events: list[MonitorEvent] = []
        self.tallies: dict[str, _Tally] = {}

    def insert(self, at: int, event: MonitorEvent) -> None:
        times = self.times
        if not times or at > times[-1]:  # the usual case: events come roughly in time order
            times.append(at)
            self.events.append(event)
            if self.tallies:
                for tally in self.tallies.values():
                    tally.inserted(len(times) - 1, event)
            return
        position = bisect_right(times, at)
        # Ties by id, so the order is the same whatever order events arrived in.
        while (
            position and self.times[position - 1] == at and self.events[position - 1].id > event.id
        ):
            position -= 1
        self.times.insert(position, at)
        self.events.insert(position, event)
        for tally in self.tallies.values():
            tally.inserted(position, event)

    def bounds(self, since: int, until: int) -> tuple[int, int]:
        return bisect_left(self.times, since), bisect_right(self.times, until)

    def tally(self, lo: int, hi: int, by: str, limit: int) -> Tally:
        tally = self.tallies.get(by)
        if tally is None:
            tally = self.tallies[by] = _Tally(by)
        tally.move(self.events, lo, hi)
        return Tally(len(tally.counts), tuple(tally.ids[:limit]))


EMPTY = Series()
Index = dict[tuple[Any, ...], Series]  # an index: field values to their series


class EventWindow:
    def __init__(self, floor: datetime) -> None:
        self.floor = floor.astimezone(UTC)  # SQLite compares stored times as UTC text
        self._floor = micros(floor)
        self._events: dict[str, tuple[int, MonitorEvent]] = {}
        self._indexes: dict[Signature, Index] = {}
        self._plans: dict[tuple[Any, ...], tuple[Signature | None, tuple[Any, ...]]] = {}
        # The same indexes by kind, so adding an event touches only those of its kind.
        self._by_kind: dict[str | None, list[tuple[tuple[str, ...], Index]]] = {}

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._events

    def add(self, event: MonitorEvent) -> None:
        """Hold `event` if it is at or after the floor (an event held already is ignored)."""
        at = micros(event.occurred_at)
        if at < self._floor or event.id in self._events:
            return
        self._events[event.id] = (at, event)
        for names, index in self._by_kind.get(event.kind, ()):
            _index(index, names, at, event)
        for names, index in self._by_kind.get(None, ()):
            _index(index, names, at, event)

    def raise_floor(self, floor: datetime) -> None:
        """Forget events before `floor` (they stay in the database); never lowers it."""
        if floor <= self.floor:
            return
        self.floor, self._floor = floor.astimezone(UTC), micros(floor)
        self._events = {i: held for i, held in self._events.items() if held[0] >= self._floor}
        self._indexes.clear()  # rebuilt on the next query that needs each
        self._by_kind.clear()

    def find(self, query: Query) -> tuple[Series, int, int] | None:
        """The series and bounds holding a query's events; None when the window cannot
        answer it (it reaches below the floor, or asks for an unhashable value)."""
        since, until, kind, credit_code, pairs = (
            query.since, query.until, query.kind, query.credit_code, query.pairs
        )  # fmt: skip
        low = micros(since)
        if low < self._floor:
            return None
        try:
            plan = self._plans.get((kind, credit_code, pairs))
            if plan is None:
                plan = self._plan(kind, credit_code, pairs)
            signature, value = plan
            series = self._index_for(signature).get(value, EMPTY) if signature else EMPTY
        except TypeError:  # an unhashable value: the database compares it
            return None
        lo, hi = series.bounds(low, micros(until))
        return series, lo, hi

    def _plan(
        self, kind: str | None, credit_code: str | None, pairs: tuple[tuple[str, Any], ...]
    ) -> tuple[Signature | None, tuple[Any, ...]]:
        """Which index and value answer a query: worked out once per distinct query."""
        fields = dict(pairs)
        # One name asked twice matches nothing unless both values are equal.
        if len(fields) < len(pairs) and any(fields[n] != value for n, value in pairs):
            return None, ()
        if credit_code is not None:
            fields[CODE] = credit_code
        names = tuple(sorted(fields))
        plan = (kind, names), tuple(fields[name] for name in names)
        if len(self._plans) >= MAX_PLANS:  # one per credit code asked about: keep it bounded
            self._plans.clear()
        self._plans[(kind, credit_code, pairs)] = plan
        return plan

    def _index_for(self, signature: Signature) -> Index:
        index = self._indexes.get(signature)
        if index is None:
            kind, names = signature
            index = self._indexes[signature] = {}
            self._by_kind.setdefault(kind, []).append((names, index))
            for at, event in sorted(self._events.values(), key=lambda held: (held[0], held[1].id)):
                if kind is None or event.kind == kind:
                    _index(index, names, at, event)
        return index


def _index(index: Index, names: tuple[str, ...], at: int, event: MonitorEvent) -> None:
    attrs = event.attrs
    value = tuple([event.credit_code if name == CODE else attrs.get(name) for name in names])
    try:
        series = index.get(value)
    except TypeError:  # an unhashable attribute never equals a value a query can index
        return
    if series is None:
        series = index[value] = Series()
    series.insert(at, event)
