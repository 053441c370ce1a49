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

from collections.abc import Mapping, Sequence
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


class History(Protocol):
    """Events the monitor has seen, queried by event time (inclusive bounds)."""

    def events(
        self,
        *,
        since: datetime,
        until: datetime,
        kind: EventKind | None = None,
        credit_code: str | None = None,
        attr: tuple[str, Any] | None = None,
    ) -> Sequence[MonitorEvent]: ...

    def registered_on(self, credit_code: str) -> date | None: ...

    def legal_rep_hash(self, credit_code: str) -> str | None: ...


class Rule(Protocol):
    name: str

    def evaluate(self, event: MonitorEvent, history: History) -> Sequence[Finding]:
        """Findings that `event`, seen with `history` (which includes it), gives rise to."""
        ...
