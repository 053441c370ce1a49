"""The monitor's History over the database: what every worker has applied, shared.

Each worker sees the events all workers applied (they are rows), so a rule's
window is the same whichever worker evaluates it. `SqlHistory` queries go by
kind and event time on an index; attribute filters are applied to that small
set. `BatchHistory` is what rules see while a batch is applied: the worker's
in-memory window where it covers a query, `SqlHistory` where it does not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date
from typing import Any

from sqlalchemy import Connection, Row

from gateway.monitor import repository
from gateway.monitor.window import EventWindow
from policies.risk.base import History, MonitorEvent, Query, Tally
from policies.risk.common import matches


def to_event(row: Row[Any]) -> MonitorEvent:
    return MonitorEvent(
        id=row.id,
        kind=row.kind,
        occurred_at=row.occurred_at,
        credit_code=row.credit_code,
        attrs=dict(row.attrs),
    )


class SqlHistory(History):
    """`hidden`: ids of rows this transaction inserted but has not applied yet; a
    batch records its events up front, and the rules of one of them must not see
    those that come after it."""

    def __init__(self, conn: Connection, hidden: Collection[str] = ()) -> None:
        self.conn = conn
        self.hidden = hidden
        self._facts: dict[str, tuple[date | None, str | None]] = {}
        self._reps: dict[str, list[str]] = {}

    def find(self, query: Query) -> Sequence[MonitorEvent]:
        rows = repository.events_between(
            self.conn,
            query.since.astimezone(UTC),
            query.until.astimezone(UTC),
            query.kind,
            query.credit_code,
        )
        return [
            event
            for event in map(to_event, rows)
            if event.id not in self.hidden and matches(event, query.pairs)
        ]

    def preload(self, codes: Iterable[str]) -> None:
        """Read the registration facts of `codes` in one query (a batch's enterprises)."""
        wanted = sorted(set(codes) - self._facts.keys())
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            self._facts.update((code, (None, None)) for code in chunk)
            for code, registered_on, rep in repository.registration_facts(self.conn, chunk):
                self._facts[code] = (
                    registered_on if isinstance(registered_on, date) else None,
                    str(rep) if rep else None,
                )

    def _fact(self, credit_code: str) -> tuple[date | None, str | None]:
        found = self._facts.get(credit_code)
        if found is None:
            self.preload((credit_code,))
            found = self._facts[credit_code]
        return found

    def registered_on(self, credit_code: str) -> date | None:
        return self._fact(credit_code)[0]

    def legal_rep_hash(self, credit_code: str) -> str | None:
        return self._fact(credit_code)[1]

    def codes_with_rep(self, legal_rep_hash: str) -> Sequence[str]:
        found = self._reps.get(legal_rep_hash)
        if found is None:
            found = self._reps[legal_rep_hash] = repository.codes_with_rep(
                self.conn, legal_rep_hash
            )
        return found


class BatchHistory(History):
    """The window answers what it covers; the database the rest (late events, long
    look-backs). Both hold exactly the applied events, so the answer is the same."""

    def __init__(self, window: EventWindow, database: SqlHistory) -> None:
        self.window = window
        self.database = database

    def find(self, query: Query) -> Sequence[MonitorEvent]:
        found = self.window.find(query)
        if found is None:
            return self.database.find(query)
        series, lo, hi = found
        return series.events[lo:hi]

    def find_count(self, query: Query) -> int:
        found = self.window.find(query)
        if found is None:
            return self.database.find_count(query)
        _, lo, hi = found
        return hi - lo

    def find_tally(self, query: Query, by: str, limit: int) -> Tally:
        found = self.window.find(query)
        if found is None:
            return self.database.find_tally(query, by, limit)
        series, lo, hi = found
        return series.tally(lo, hi, by, limit)

    def registered_on(self, credit_code: str) -> date | None:
        return self.database.registered_on(credit_code)

    def legal_rep_hash(self, credit_code: str) -> str | None:
        return self.database.legal_rep_hash(credit_code)

    def codes_with_rep(self, legal_rep_hash: str) -> Sequence[str]:
        return self.database.codes_with_rep(legal_rep_hash)
