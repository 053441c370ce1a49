"""`MemoryHistory`: the events one process has seen, for tests and the embedded monitor.

An append-only list with indexes by credit code and kind. Registration
facts are kept apart from the list, so pruning old events never forgets
when an enterprise was registered or who represents it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from policies.risk.base import History, MonitorEvent, Query
from policies.risk.common import as_day, matches, record_data, text


@dataclass(frozen=True, slots=True)
class _Registration:
    occurred_at: datetime
    event_id: str
    registered_on: date | None
    legal_rep_hash: str | None


class MemoryHistory(History):
    def __init__(self, retention: timedelta | None = None) -> None:
        """`retention`: how far behind the latest event `prune` drops events (None: never)."""
        self.retention = retention
        self._events: list[MonitorEvent] = []
        self._ids: set[str] = set()
        self._by_code: defaultdict[str, list[int]] = defaultdict(list)
        self._by_kind: defaultdict[str, list[int]] = defaultdict(list)
        self._registrations: dict[str, _Registration] = {}
        self._latest: datetime | None = None

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: MonitorEvent) -> bool:
        """Remember `event`; False when its id was seen before (a redelivery changes nothing)."""
        if event.id in self._ids:
            return False
        self._ids.add(event.id)
        self._index(event, len(self._events))
        self._events.append(event)
        if self._latest is None or event.occurred_at > self._latest:
            self._latest = event.occurred_at
        self._note_registration(event)
        return True

    def find(self, query: Query) -> Sequence[MonitorEvent]:
        """Matching events, ordered by (occurred_at, id) whatever order they arrived in."""
        kind = query.kind
        if query.credit_code is not None:
            positions: Sequence[int] = self._by_code.get(query.credit_code, [])
        elif kind is not None:
            positions = self._by_kind.get(kind, [])
        else:
            positions = range(len(self._events))
        found = [
            e
            for e in (self._events[i] for i in positions)
            if query.since <= e.occurred_at <= query.until
            and (kind is None or e.kind == kind)
            and matches(e, query.pairs)
        ]
        return sorted(found, key=lambda e: (e.occurred_at, e.id))

    def registered_on(self, credit_code: str) -> date | None:
        found = self._registrations.get(credit_code)
        return found.registered_on if found else None

    def legal_rep_hash(self, credit_code: str) -> str | None:
        found = self._registrations.get(credit_code)
        return found.legal_rep_hash if found else None

    def codes_with_rep(self, legal_rep_hash: str) -> Sequence[str]:
        return sorted(
            code
            for code, found in self._registrations.items()
            if found.legal_rep_hash == legal_rep_hash
        )

    def prune(self) -> int:
        """Drop events older than `retention` behind the latest event time; how many went."""
        if self.retention is None or self._latest is None:
            return 0
        cutoff = self._latest - self.retention
        kept = [e for e in self._events if e.occurred_at >= cutoff]
        dropped = len(self._events) - len(kept)
        if dropped:
            # Ids stay in `_ids`, so a redelivered pruned event is still recognised.
            self._events = []
            self._by_code.clear()
            self._by_kind.clear()
            for event in kept:
                self._index(event, len(self._events))
                self._events.append(event)
        return dropped

    def _index(self, event: MonitorEvent, position: int) -> None:
        if event.credit_code is not None:
            self._by_code[event.credit_code].append(position)
        self._by_kind[event.kind].append(position)

    def _note_registration(self, event: MonitorEvent) -> None:
        if event.kind != "record" or event.credit_code is None:
            return
        if text(event.attrs, "category") != "registration":
            return
        data = record_data(event)
        candidate = _Registration(
            event.occurred_at,
            event.id,
            as_day(data.get("registered_on")),
            text(data, "legal_rep_hash"),
        )
        current = self._registrations.get(event.credit_code)
        # The latest version by event time wins, however late it arrived.
        if current is None or (candidate.occurred_at, candidate.event_id) > (
            current.occurred_at,
            current.event_id,
        ):
            self._registrations[event.credit_code] = candidate
