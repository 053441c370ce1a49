"""The monitor: apply each event once (record it, run the rules, raise or update
alerts, queue platform notifications), a batch of events in one transaction,
then acknowledge the batch.

Rules read their windows from the worker's `EventWindow`, kept equal to the
database by taking turns (`gateway.monitor.turns`): a batch sees every event
applied before it, by any worker, and the events of its own batch up to the
one being judged, as if they were applied one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.bounds import moment_within
from gateway.loans import ledger
from gateway.logs import redact
from gateway.metrics import MONITOR_ALERTS, MONITOR_EVENTS, MONITOR_RULE_EVALUATIONS, Children
from gateway.monitor.alerting import apply_findings
from gateway.monitor.bus import Delivery, EventBus, encode
from gateway.monitor.history import BatchHistory, SqlHistory
from gateway.monitor.repository import insert_rows, record
from gateway.monitor.turns import Turn, end_turn, load, take_turn
from gateway.monitor.window import EventWindow
from gateway.store.tables import outbox
from policies.risk.base import Finding, MonitorEvent, Rule

log = logging.getLogger("xyd.monitor")
# Event time held in memory behind the newest event: two 31-day windows, so
# every rule's window but post-loan deterioration's years-long look-back (read
# from the database) is answered from memory, for events up to a month late.
KEEP = timedelta(days=62)
_EVENTS, _ALERTS = Children(MONITOR_EVENTS), Children(MONITOR_ALERTS)
BATCH = 1000  # per-batch costs (the turn, a dozen statements, the commit) amortised
MAX_DELIVERIES = 5
DEAD_LETTERS = "monitor"  # platform_dead_letters.platform of the monitor's dead letters


def _why(exc: Exception) -> str:
    # An exception's text may quote the event (a SQL error its parameters).
    return redact(f"{type(exc).__name__}: {exc}")[:1000]


def _notification(
    event: MonitorEvent, finding: Finding, alert_id: str, notified: frozenset[str]
) -> list[dict[str, Any]]:
    platform = event.attrs.get("platform")
    if event.kind != "loan" or platform not in notified:
        return []
    now = datetime.now(UTC)
    payload = {
        "alertId": alert_id,
        "creditCode": finding.credit_code or event.credit_code,
        "applicationNo": event.attrs.get("loan_no"),
        "rule": finding.rule,
        "severity": finding.severity,
        "raisedAt": now.isoformat(),
    }
    return [
        {
            "destination": str(platform),
            "kind": "risk_alert",
            "payload": payload,
            "created_at": now,
            "next_attempt_at": now,
        }
    ]


class Monitor:
    def __init__(
        self,
        engine: Engine,
        rules: Sequence[Rule],
        *,
        notified: frozenset[str] = frozenset({"kechuangtong"}),
        keep: timedelta = KEEP,
        max_deliveries: int = MAX_DELIVERIES,
    ) -> None:
        """`notified`: the platforms whose new alerts on their loans are queued as
        notifications (see adapters.registry.notified_platforms). An event that
        failed `max_deliveries` times is dead-lettered (`DEAD_LETTERS`)."""
        self.engine = engine
        self.max_deliveries = max_deliveries
        self.rules = list(rules)
        self.notified = notified
        self.keep = keep
        self._window: EventWindow | None = None
        self._seen = Turn(-1, datetime.min.replace(tzinfo=UTC))  # what the window holds
        self._counters = [
            (MONITOR_RULE_EVALUATIONS.labels(r.name, "finding"),
             MONITOR_RULE_EVALUATIONS.labels(r.name, "none"))
            for r in self.rules
        ]  # fmt: skip

    def apply(self, event: MonitorEvent) -> list[str]:
        """The alerts this event raised (new ones only); [] for a repeat."""
        return self.apply_batch([event])[0]

    def apply_batch(self, events: Sequence[MonitorEvent]) -> list[list[str]]:
        """Apply `events` in order in one transaction; for each, the alerts it raised.
        Raises when the batch failed, and then nothing of it was committed.

        An event whose time is outside the years the gateway holds (a record of
        0001-01-01 in the store) is refused, not applied: the windows' arithmetic
        would overflow on it, and the batch fail on every delivery, forever."""
        if not events:
            return []
        if not all(moment_within(e.occurred_at) for e in events):
            kept = [e for e in events if self._sane(e)]
            alerts = iter(self.apply_batch(kept))
            return [next(alerts) if moment_within(e.occurred_at) else [] for e in events]
        evaluations = [[0, 0] for _ in self.rules]
        try:
            with self.engine.begin() as conn:
                turn = take_turn(conn)
                window = self._window_for(conn, turn, events)
                mine = turn.next()
                raised, applied, new = self._apply(conn, window, events, mine, evaluations)
                end_turn(conn, mine)
        except BaseException:
            self._window = None  # it may hold events that were never committed
            raise
        self._seen = mine
        for (found, none), (found_counter, none_counter) in zip(
            evaluations, self._counters, strict=True
        ):
            found_counter.inc(found)
            none_counter.inc(none)
        for event, fresh in zip(events, applied, strict=True):
            _EVENTS(event.kind, "applied" if fresh else "repeat").inc()
        for finding in new:
            _ALERTS(finding.rule, finding.severity).inc()
        return raised

    @staticmethod
    def _sane(event: MonitorEvent) -> bool:
        if moment_within(event.occurred_at):
            return True
        log.warning(
            "event refused: its time is outside the years the gateway holds",
            extra={"event_id": event.id, "occurred_at": event.occurred_at.isoformat()},
        )
        _EVENTS(event.kind, "refused").inc()
        return False

    def _window_for(
        self, conn: Connection, turn: Turn, events: Sequence[MonitorEvent]
    ) -> EventWindow:
        floor = max(e.occurred_at for e in events) - self.keep
        window = self._window
        if window is None:
            window = EventWindow(floor)
            load(conn, window)
        else:
            # Raised in steps, not on every batch: forgetting rebuilds the indexes.
            if floor > window.floor + self.keep / 4:
                window.raise_floor(floor)
            if turn.generation != self._seen.generation:  # another worker applied events
                load(conn, window, after=self._seen.stamp)
        self._window = window
        return window

    def _apply(
        self,
        conn: Connection,
        window: EventWindow,
        events: Sequence[MonitorEvent],
        turn: Turn,
        evaluations: list[list[int]],
    ) -> tuple[list[list[str]], list[bool], list[Finding]]:
        hidden = record(conn, events, turn.stamp)
        database = SqlHistory(conn, hidden)
        database.preload(e.credit_code for e in events if e.credit_code and e.id in hidden)
        history = BatchHistory(window, database)
        applied: list[bool] = []
        findings: list[tuple[Finding, datetime]] = []
        causes: list[int] = []  # the position in `events` of each finding's event
        for n, event in enumerate(events):
            fresh = event.id in hidden  # False for a repeat, or a second copy in this batch
            applied.append(fresh)
            if not fresh:
                continue
            hidden.discard(event.id)
            window.add(event)
            for rule, tally in zip(self.rules, evaluations, strict=True):
                found = rule.evaluate(event, history)
                if not found:
                    tally[1] += 1
                    continue
                tally[0] += 1
                findings.extend((finding, event.occurred_at) for finding in found)
                causes.extend(n for _ in found)
        raised: list[list[str]] = [[] for _ in events]
        outcome = apply_findings(conn, findings)
        notes: list[dict[str, Any]] = []
        new: list[Finding] = []  # those that raised an alert, counted once committed
        for (finding, _), n, (alert_id, created) in zip(findings, causes, outcome, strict=True):
            if not created:
                continue
            raised[n].append(alert_id)
            new.append(finding)
            notes.extend(_notification(events[n], finding, alert_id, self.notified))
        if notes:
            # The rows `enqueue` writes, in one statement rather than one per alert.
            insert_rows(conn, outbox, notes)
        return raised, applied, new

    def _apply_deliveries(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[tuple[Delivery, str]]]:
        """The deliveries whose events are now applied (committed), and those that
        failed with why."""
        try:
            self.apply_batch([d.event for d in deliveries])
            return list(deliveries), []
        except Exception as exc:
            if len(deliveries) == 1:
                log.exception("event not applied", extra={"event_id": deliveries[0].event.id})
                return [], [(deliveries[0], _why(exc))]
            # One bad event must not hold back the others: apply them one by one.
            log.exception("batch not applied; retrying its events one by one")
        done, failed = [], []
        for delivery in deliveries:
            try:
                self.apply(delivery.event)
            except Exception as exc:  # delivered again later, or dead-lettered
                log.exception("event not applied", extra={"event_id": delivery.event.id})
                failed.append((delivery, _why(exc)))
                continue
            done.append(delivery)
        return done, failed

    def _dead_letter(self, dead: Sequence[tuple[Delivery, str]]) -> None:
        """Kept for operators (the dashboard lists them), never applied: an event
        that failed `max_deliveries` times would otherwise be retried forever."""
        with self.engine.begin() as conn:
            for delivery, why in dead:
                reason = f"{why} (after {delivery.deliveries} deliveries)"
                ledger.dead_letter(conn, DEAD_LETTERS, reason, encode(delivery.event), once=True)
        for delivery, _ in dead:
            _EVENTS(delivery.event.kind, "dead_lettered").inc()
            log.error(
                "event dead-lettered",
                extra={"event_id": delivery.event.id, "deliveries": delivery.deliveries},
            )

    def _settle(self, deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
        """Apply `deliveries`; (to acknowledge, to deliver again)."""
        done, failed = self._apply_deliveries(deliveries)
        dead = [(d, why) for d, why in failed if d.deliveries >= self.max_deliveries]
        again = [d for d, _ in failed if d.deliveries < self.max_deliveries]
        if dead:
            try:
                self._dead_letter(dead)
            except Exception:  # the store is away: they stay due, and are tried again
                log.exception("events not dead-lettered")
                return done, again + [d for d, _ in dead]
        return done + [d for d, _ in dead], again

    async def run(
        self, bus: EventBus, consumer: str, *, stop: asyncio.Event, batch: int = BATCH
    ) -> None:
        """Read, apply, acknowledge, until `stop` is set; events are acknowledged only
        after their transaction committed, so a crash leaves them pending for another worker.

        The next batch is read while one is applied: the bus's round trips then
        cost no time of the thread that applies. A batch read when `stop` comes
        stays pending, as after a crash."""
        deliveries: list[Delivery] = []
        while not stop.is_set():
            if not deliveries:
                deliveries = await bus.read(consumer, batch, block_ms=1000)
                continue
            reading = asyncio.create_task(bus.read(consumer, batch, block_ms=1000))
            try:
                done, again = await asyncio.to_thread(self._settle, deliveries)
                await bus.ack(done)
                if again:
                    await bus.retry(again)
            except BaseException:
                reading.cancel()
                raise
            deliveries = await reading
