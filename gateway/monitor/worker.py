"""The monitor: apply each event once (record it, run the rules, raise or update
alerts, queue platform notifications) in one transaction, then acknowledge it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from gateway.alerts.service import apply_finding
from gateway.metrics import MONITOR_ALERTS, MONITOR_EVENTS, MONITOR_RULE_EVALUATIONS
from gateway.monitor.bus import EventBus
from gateway.monitor.history import SqlHistory
from gateway.outbox import enqueue
from gateway.store.tables import monitor_events
from policies.risk.base import MonitorEvent, Rule

log = logging.getLogger("xyd.monitor")
# Platforms whose spec has a notification for alerts on their loans.
NOTIFIED_PLATFORMS = frozenset({"kechuangtong"})


def _record(conn: Connection, event: MonitorEvent) -> bool:
    """Insert the event unless already applied; True when this call applied it."""
    stmt: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(monitor_events)
    row = conn.execute(
        stmt.values(
            id=event.id,
            kind=event.kind,
            occurred_at=event.occurred_at.astimezone(UTC),
            credit_code=event.credit_code,
            attrs=dict(event.attrs),
            applied_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(monitor_events.c.id)
    ).first()
    return row is not None


class Monitor:
    def __init__(self, engine: Engine, rules: Sequence[Rule]) -> None:
        self.engine = engine
        self.rules = list(rules)

    def apply(self, event: MonitorEvent) -> list[str]:
        """The alerts this event raised (new ones only); [] for a repeat."""
        raised: list[str] = []
        with self.engine.begin() as conn:
            if not _record(conn, event):
                MONITOR_EVENTS.labels(event.kind, "repeat").inc()
                return raised
            history = SqlHistory(conn)
            for rule in self.rules:
                findings = rule.evaluate(event, history)
                MONITOR_RULE_EVALUATIONS.labels(rule.name, "finding" if findings else "none").inc()
                for finding in findings:
                    alert_id, created = apply_finding(conn, finding, event.occurred_at)
                    if not created:
                        continue
                    raised.append(alert_id)
                    MONITOR_ALERTS.labels(finding.rule, finding.severity).inc()
                    platform = event.attrs.get("platform")
                    if event.kind == "loan" and platform in NOTIFIED_PLATFORMS:
                        enqueue(
                            conn,
                            str(platform),
                            "risk_alert",
                            {
                                "alertId": alert_id,
                                "creditCode": finding.credit_code or event.credit_code,
                                "applicationNo": event.attrs.get("loan_no"),
                                "rule": finding.rule,
                                "severity": finding.severity,
                                "raisedAt": datetime.now(UTC).isoformat(),
                            },
                        )
        MONITOR_EVENTS.labels(event.kind, "applied").inc()
        return raised

    async def run(
        self, bus: EventBus, consumer: str, *, stop: asyncio.Event, batch: int = 100
    ) -> None:
        """Read, apply, acknowledge, until `stop` is set; an event is acknowledged only
        after its transaction committed, so a crash leaves it pending for another worker."""
        while not stop.is_set():
            deliveries = await bus.read(consumer, batch, block_ms=1000)
            done = []
            for delivery in deliveries:
                try:
                    await asyncio.to_thread(self.apply, delivery.event)
                except Exception:  # leave it pending: retried, or claimed by another worker
                    log.exception("event not applied", extra={"event_id": delivery.event.id})
                    continue
                done.append(delivery)
            await bus.ack(done)
