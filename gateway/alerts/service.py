"""Alerts: raised from rule findings, one unresolved alert per (rule, subject),
worked by risk officers (open → acknowledged → resolved, who, when, a note).

Works on a sync Connection inside the caller's transaction (the SQL is in
repository.py): the monitor applies an event's findings and records the event as applied in one
commit, so a redelivered event changes nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from gateway.alerts import repository
from gateway.alerts.schemas import AlertStatus
from gateway.errors import Conflict, InvalidValue, NotFound
from policies.risk.base import SEVERITIES, Finding

EVIDENCE_CAP = 200
STATUSES: tuple[AlertStatus, ...] = get_args(AlertStatus)
Action = Literal["acknowledge", "resolve"]


class UnknownAlert(NotFound):
    type_slug, title = "unknown-alert", "No such alert"


def current_revision() -> int:
    # Microseconds: increasing across processes closely enough for a live
    # stream's cursor (the stream re-reads a small overlap).
    return time.time_ns() // 1000


def _worse(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


def new_alert(finding: Finding, seen_at: datetime) -> dict[str, Any]:
    """The row that raises an alert for `finding`."""
    return {
        "id": f"alr_{secrets.token_urlsafe(12)}",
        "rule": finding.rule,
        "subject": finding.subject,
        "severity": finding.severity,
        "title": finding.title[:300],
        "credit_code": finding.credit_code,
        "state": "open",
        "evidence": sorted(set(finding.evidence))[:EVIDENCE_CAP],
        "details": dict(finding.details),
        "first_seen_at": seen_at,
        "last_seen_at": seen_at,
        "updated_at": datetime.now(UTC),
        "revision": current_revision(),
    }


def merge(
    current: Mapping[str, Any], finding: Finding, seen_at: datetime
) -> tuple[dict[str, Any], bool]:
    """The values that fold `finding` into the open alert `current`, and whether they
    are news for its history (more evidence or a worse severity)."""
    # Stored evidence is sorted and unique (only this and `new_alert` write it), so
    # adding new ids merges two sorted runs, which sorted() does in linear time: a
    # platform's alert takes a finding on most of its events.
    evidence = list(current["evidence"])
    known = set(evidence)
    extra = sorted({i for i in finding.evidence if i not in known})
    if extra:
        evidence = sorted(evidence + extra)
    evidence = evidence[:EVIDENCE_CAP]
    severity = _worse(current["severity"], finding.severity)
    values = {
        "evidence": evidence,
        "severity": severity,
        "title": finding.title[:300],
        "details": {**dict(current["details"]), **dict(finding.details)},
        "last_seen_at": max(current["last_seen_at"], seen_at),
        "updated_at": datetime.now(UTC),
        "revision": current_revision(),
    }
    return values, evidence != list(current["evidence"]) or severity != current["severity"]


def apply_finding(conn: Connection, finding: Finding, seen_at: datetime) -> tuple[str, bool]:
    """The alert for this finding: (id, True) when newly raised, (id, False) when updated."""
    current = repository.unresolved(conn, finding.rule, finding.subject)
    if current is None:
        row = new_alert(finding, seen_at)
        try:
            repository.insert_alert(conn, row)
        except IntegrityError:
            # Another worker raised it a moment ago: update theirs instead.
            return apply_finding(conn, finding, seen_at)
        repository.add_history(conn, row["id"], "monitor", "raised", row["title"])
        return row["id"], True
    values, news = merge(dict(current._mapping), finding, seen_at)
    repository.update_alert(conn, current.id, values)
    if news:
        repository.add_history(conn, current.id, "monitor", "updated", None)
    return str(current.id), False


def render(conn: Connection, row: Row[Any], *, with_history: bool) -> dict[str, Any]:
    """The alert as every answer shows it. The column is `state` (renaming it needs a
    migration); the public name is `status`, given here and nowhere else."""
    item: dict[str, Any] = {
        "id": row.id,
        "rule": row.rule,
        "subject": row.subject,
        "severity": row.severity,
        "title": row.title,
        "credit_code": row.credit_code,
        "status": row.state,
        "evidence": list(row.evidence),
        "details": dict(row.details),
        "first_seen_at": row.first_seen_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "revision": row.revision,
    }
    if with_history:
        item["history"] = [
            {"at": h.at.isoformat(), "actor": h.actor, "action": h.action, "note": h.note}
            for h in repository.history(conn, row.id)
        ]
    return item


def get(conn: Connection, alert_id: str) -> dict[str, Any]:
    row = repository.find(conn, alert_id)
    if row is None:
        raise UnknownAlert(f"no alert {alert_id}")
    return render(conn, row, with_history=True)


def page(
    conn: Connection,
    *,
    status: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    credit_code: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Newest change first; `next_cursor` continues below the last item shown."""
    if status and status not in STATUSES:
        raise InvalidValue(f"status: one of {', '.join(STATUSES)}", field="status")
    if severity and severity not in SEVERITIES:
        raise InvalidValue(f"severity: one of {', '.join(SEVERITIES)}", field="severity")
    before = None
    if cursor:
        revision, sep, last_id = cursor.partition(":")
        if not sep or not revision.isdigit() or len(revision) > 20:
            raise InvalidValue("cursor: not a cursor this endpoint gave out", field="cursor")
        before = (int(revision), last_id)
    rows = repository.newest_first(
        conn,
        state=status,
        severity=severity,
        rule=rule,
        credit_code=credit_code,
        since=since,
        before=before,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = [render(conn, r, with_history=False) for r in rows[:limit]]
    last = items[-1] if more else None
    return {"items": items, "next_cursor": f"{last['revision']}:{last['id']}" if last else None}


def changed_after(conn: Connection, revision: int, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts changed after `revision`, oldest change first: what the live stream sends."""
    rows = repository.changed_after(conn, revision, limit)
    return [render(conn, r, with_history=False) for r in rows]


# Revisions are clock-based per process: a feed re-reads this much behind its
# cursor, so a change committed a little late by another worker is still sent.
FEED_OVERLAP_US = 2_000_000
_FEED_PAGES = 10


class ChangeFeed:
    """Alerts changed after a cursor, oldest change first, each change once: what a
    live stream sends. `take` runs on a sync Connection (inside `run_sync`)."""

    def __init__(self, cursor: int, page: int = 100) -> None:
        self.cursor = cursor
        self.page = page
        self._sent: dict[str, int] = {}  # id -> revision sent, within the overlap

    def take(self, conn: Connection) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        start = max(self.cursor - FEED_OVERLAP_US, 0)
        for _ in range(_FEED_PAGES):
            changed = changed_after(conn, start, self.page)
            for alert in changed:
                if self._sent.get(alert["id"]) != alert["revision"]:
                    self._sent[alert["id"]] = alert["revision"]
                    self.cursor = max(self.cursor, int(alert["revision"]))
                    fresh.append(alert)
            if len(changed) < self.page:
                break
            # A full page already sent must not stall the feed: read on past it.
            start = int(changed[-1]["revision"])
        floor = self.cursor - FEED_OVERLAP_US
        self._sent = {k: v for k, v in self._sent.items() if v > floor}
        return fresh


def audit_reason(alert: Mapping[str, Any]) -> str:
    """What the audit entry of working `alert` says: which alert, now in which status."""
    return f"alert {alert['id']} {alert['status']}"


def work(conn: Connection, alert_id: str, action: Action, actor: str, note: str) -> dict[str, Any]:
    """Acknowledge or resolve, keeping who, when and why."""
    current = get(conn, alert_id)
    allowed = {"acknowledge": ("open",), "resolve": ("open", "acknowledged")}[action]
    if current["status"] not in allowed:
        raise Conflict(f"alert {alert_id} is {current['status']}; cannot {action}")
    status = "acknowledged" if action == "acknowledge" else "resolved"
    repository.set_state(conn, alert_id, allowed, status, current_revision())
    repository.add_history(conn, alert_id, actor, f"{action}d", note)
    return get(conn, alert_id)
