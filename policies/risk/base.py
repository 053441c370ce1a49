"""What a risk rule sees and says.

The monitor turns what happens (a platform's loan event, a new or changed
credit record, a report query or a consent denial) into `MonitorEvent`s and
feeds each one, in any order, to every rule with a `History` of what came
before. A rule answers with `Finding`s; the monitor turns each into an alert,
one open alert per (rule, subject), updated with new evidence rather than
repeated. Rules are deterministic: they look at event time only, never the
clock, so a late event is judged by when it happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

EventKind = Literal["loan", "record", "query", "consent_denied"]
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class MonitorEvent:
    """One thing that happened, at `occurred_at` (aware).

    `id` is stable and unique (`loan:<platform>:<message id>`, `record:<id>:v<version>`,
    `query:<audit seq>`), so evidence can cite it and a redelivered event is
    recognised. `attrs` by kind:

    - loan: platform, event_type (the canonical loan events), loan_no,
      bank_code, amount_fen, days_overdue, core_enterprise_code
    - record: category, record_id, version, data (the record's stored fields:
      penalty `fine_fen`, `severity`; list `list_name`; judgment debtor
      `dishonest`; tax rating `rating`; registration `registered_on`,
      `legal_rep_hash`)
    - query: client_id, bank_code, route
    - consent_denied: client_id, bank_code, reason
    """

    id: str
    kind: EventKind
    occurred_at: datetime
    credit_code: str | None
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's conclusion about one subject (an SME, a bank, a platform, a core enterprise)."""

    rule: str
    severity: Severity
    subject: str  # e.g. "enterprise:9151…", "bank:BOCD", "platform:kechuangtong"
    title: str
    evidence: tuple[str, ...]  # MonitorEvent ids (and record ids through them)
    credit_code: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def text(attrs: Mapping[str, Any], key: str) -> str | None:
    """`attrs[key]` when it is a non-empty string."""
    value = attrs.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Query:
    """One question to a History: the events of `kind` and `credit_code` (None:
    any) with `since <= occurred_at <= until` whose attrs equal every pair."""

    since: datetime
    until: datetime
    kind: EventKind | None = None
    credit_code: str | None = None
    pairs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Tally:
    """The events of a query counted by one attribute (`by`), for window ratios that
    must not walk the whole window on every event.

    `keys`: how many distinct values `by` takes (non-empty strings only);
    `ids`: the first ids, in id order, of the events that have one.
    """

    keys: int
    ids: tuple[str, ...]

    @classmethod
    def of(cls, events: Iterable[MonitorEvent], by: str, limit: int) -> Tally:
        keyed = [(e.id, key) for e in events if (key := text(e.attrs, by)) is not None]
        return cls(len({key for _, key in keyed}), tuple(sorted(i for i, _ in keyed))[:limit])


class History(ABC):
    """Events the monitor has seen, queried by event time (inclusive bounds).

    Rules ask with keywords: events of `kind`, of `credit_code`, and whose attrs
    equal `attr` (one name and value) and every pair of `attrs`; `None` matches
    all. `events` come ordered by (occurred_at, id). A history answers a `Query`
    in `find`, and in `find_count` and `find_tally` where it has a faster way
    than counting what `find` returns.
    """

    def events(
        self,
        *,
        since: datetime,
        until: datetime,
        kind: EventKind | None = None,
        credit_code: str | None = None,
        attr: tuple[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> Sequence[MonitorEvent]:
        return self.find(_query(since, until, kind, credit_code, attr, attrs))

    def count(
        self,
        *,
        since: datetime,
        until: datetime,
        kind: EventKind | None = None,
        credit_code: str | None = None,
        attr: tuple[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> int:
        return self.find_count(_query(since, until, kind, credit_code, attr, attrs))

    def tally(
        self,
        *,
        since: datetime,
        until: datetime,
        by: str,
        limit: int,
        kind: EventKind | None = None,
        credit_code: str | None = None,
        attr: tuple[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> Tally:
        return self.find_tally(_query(since, until, kind, credit_code, attr, attrs), by, limit)

    @abstractmethod
    def find(self, query: Query) -> Sequence[MonitorEvent]:
        """The matching events, ordered by (occurred_at, id)."""

    def find_count(self, query: Query) -> int:
        return len(self.find(query))

    def find_tally(self, query: Query, by: str, limit: int) -> Tally:
        return Tally.of(self.find(query), by, limit)

    @abstractmethod
    def registered_on(self, credit_code: str) -> date | None: ...

    @abstractmethod
    def legal_rep_hash(self, credit_code: str) -> str | None: ...

    @abstractmethod
    def codes_with_rep(self, legal_rep_hash: str) -> Sequence[str]:
        """The enterprises whose legal representative is `legal_rep_hash` (as
        `legal_rep_hash(code)` answers), in code order."""


def _query(
    since: datetime,
    until: datetime,
    kind: EventKind | None,
    credit_code: str | None,
    attr: tuple[str, Any] | None,
    attrs: Mapping[str, Any] | None,
) -> Query:
    pairs = tuple(attrs.items()) if attrs else ()
    return Query(since, until, kind, credit_code, (attr, *pairs) if attr is not None else pairs)


class Rule(Protocol):
    name: str

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        """Findings that `event`, seen with `history` (which includes it), gives rise to."""
        ...
