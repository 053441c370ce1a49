"""A batch's findings as alerts, with the outcome of `apply_finding` one by one.

One finding at a time costs a read, a write and often a history line, each a
round trip; a batch of events gives hundreds of findings, mostly for the same
few subjects. Here the open alerts of every (rule, subject) are read in one
query, the findings are folded into them in order with the same
`new_alert`/`merge` as `apply_finding`, and the result is written with three
statements: new alerts, changed alerts, history lines (`gateway.monitor.repository`).

It runs in the monitor's turn (`gateway.monitor.turns`), so no other worker
raises an alert between the read and the write; a racing insert would fail
the batch on the unique index, and the batch would be retried event by event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from gateway.alerts.service import merge, new_alert
from gateway.monitor.repository import insert_rows, open_alerts, update_rows
from gateway.store.tables import alert_history, alerts
from policies.risk.base import Finding

CHANGED = ("evidence", "severity", "title", "details", "last_seen_at", "updated_at", "revision")


def apply_findings(
    conn: Connection, findings: Sequence[tuple[Finding, datetime]]
) -> list[tuple[str, bool]]:
    """For each (finding, seen_at) in order, its alert: (id, True) when newly raised."""
    current = open_alerts(conn, {(f.rule, f.subject) for f, _ in findings})
    raised: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    outcome: list[tuple[str, bool]] = []
    for finding, seen_at in findings:
        alert = current.get((finding.rule, finding.subject))
        if alert is None:
            alert = current[(finding.rule, finding.subject)] = new_alert(finding, seen_at)
            raised[alert["id"]] = alert
            history.append(_line(alert["id"], "raised", alert["title"]))
            outcome.append((alert["id"], True))
            continue
        values, news = merge(alert, finding, seen_at)
        alert.update(values)
        if alert["id"] not in raised:
            changed[alert["id"]] = alert
        if news:
            history.append(_line(alert["id"], "updated", None))
        outcome.append((str(alert["id"]), False))
    insert_rows(conn, alerts, list(raised.values()))
    update_rows(
        conn,
        alerts,
        "id",
        [{"id": a["id"], **{n: a[n] for n in CHANGED}} for a in changed.values()],
    )
    insert_rows(conn, alert_history, history)
    return outcome


def _line(alert_id: str, action: str, note: str | None) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "at": datetime.now(UTC),
        "actor": "monitor",
        "action": action,
        "note": note,
    }
