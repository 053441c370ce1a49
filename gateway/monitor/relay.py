"""Feeding the bus from the database: what was committed is what the monitor sees.

Publishers do not write to the bus inside their transactions (a rollback
would leave a phantom event, a crash after commit a lost one). The relay
reads committed rows past a watermark (loan events by id, audit entries by
sequence number), publishes them, then moves the watermark. A crash between
the two republishes a few events; the monitor applies each id once.

A bus can lose what it held: Redis restarted without its data, or the
embedded queue with its process. So the relay also keeps an *applied*
watermark, the position at which the bus was last seen drained (everything
published before it applied and acknowledged), and rewinds to it when the bus
names new contents (`EventBus.epoch`). What lies between is published again
and applied once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.monitor import repository
from gateway.monitor.bus import EventBus
from gateway.positions import read_position, save_position
from policies.risk.base import MonitorEvent

WATERMARKS = "monitor"
APPLIED = "applied:"
EPOCH = "bus-epoch"
log = logging.getLogger("xyd.monitor")
REPORT_ROUTE = "GET /v1/enterprises/{credit_code}/credit-report"


def loan_batch(conn: Connection, after: int, limit: int) -> tuple[list[MonitorEvent], int]:
    rows = repository.loan_events_after(conn, after, limit)
    events = [
        MonitorEvent(
            id=f"loan:{r.platform}:{r.message_id}",
            kind="loan",
            occurred_at=r.occurred_at,
            credit_code=r.credit_code,
            attrs={
                "platform": r.platform,
                "event_type": r.event_type,
                "loan_no": r.loan_no,
                "bank_code": r.bank_code,
                "amount_fen": r.amount_fen,
                "days_overdue": r.days_overdue,
                "core_enterprise_code": r.core_enterprise_code,
            },
        )
        for r in rows
    ]
    return events, (rows[-1].id if rows else after)


def audit_batch(conn: Connection, after: int, limit: int) -> tuple[list[MonitorEvent], int]:
    rows = repository.audit_entries_after(conn, after, limit)
    events = []
    for r in rows:
        denied = r.decision == "deny" and (r.reason or "").startswith("consent-denied")
        if not denied and not (r.decision == "allow" and r.route == REPORT_ROUTE):
            continue
        attrs: dict[str, Any] = {
            "client_id": r.client_id,
            "bank_code": r.org_code,
            "route": r.route,
        }
        if denied:
            attrs["reason"] = (r.reason or "").partition(":")[2]
        events.append(
            MonitorEvent(
                id=f"query:{r.seq}",
                kind="consent_denied" if denied else "query",
                occurred_at=datetime.fromisoformat(r.at),
                credit_code=r.credit_code,
                attrs=attrs,
            )
        )
    return events, (rows[-1].seq if rows else after)


# Records change in place (a new version moves `updated_at`), so their
# watermark is (updated_at, id). A row's `updated_at` is stamped before its
# batch commits, so rows younger than SETTLE are left for the next round:
# by then every batch that stamped them has committed or rolled back.
SETTLE = timedelta(seconds=10)


def record_batch(conn: Connection, after: str, limit: int) -> tuple[list[MonitorEvent], str]:
    position = None
    if after:
        stamp, _, last_id = after.rpartition("|")
        position = (datetime.fromisoformat(stamp), int(last_id))
    settled = datetime.now(UTC) - SETTLE
    rows = repository.records_changed_after(conn, position, settled, limit)
    events = []
    for r in rows:
        changed = r.updated_at
        # Event time is the record's own date where it has one (a penalty's decision),
        # so a late-arriving record is judged when it happened.
        day = r.effective_date
        happened = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else changed
        attrs = {"category": r.category, "record_id": r.id, "version": r.version,
                 "data": dict(r.data)}  # fmt: skip
        events.append(
            MonitorEvent(
                id=f"record:{r.id}:v{r.version}",
                kind="record",
                occurred_at=happened,
                credit_code=r.credit_code,
                attrs=attrs,
            )
        )
    last = f"{rows[-1].updated_at.isoformat()}|{rows[-1].id}" if rows else after
    return events, last


# A source's watermark: records' "updated_at|id", the others' last id. Each batch
# takes its own kind, so `Batch` cannot name one.
Position = int | str
Batch = Callable[[Connection, Any, int], tuple[list[MonitorEvent], Any]]
SOURCES: tuple[tuple[str, Batch], ...] = (
    ("records", record_batch),
    ("loan_events", loan_batch),
    ("audit", audit_batch),
)
_SOURCE_NAMES = tuple(name for name, _ in SOURCES)


def _read(
    engine: Engine, name: str, batch: Batch, limit: int
) -> tuple[Position, list[MonitorEvent], Position]:
    with engine.connect() as conn:
        stored = read_position(conn, WATERMARKS, name)
        after: Position = (stored or "") if name == "records" else int(stored or 0)
        events, last = batch(conn, after, limit)
    return after, events, last


def _save(engine: Engine, name: str, last: Position) -> None:
    with engine.begin() as conn:
        save_position(conn, WATERMARKS, name, str(last))


def _positions(engine: Engine, names: Sequence[str] = _SOURCE_NAMES) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {name: read_position(conn, WATERMARKS, name) for name in names}


def _rewind(engine: Engine, epoch: str | None, *, lost: bool) -> list[str]:
    """Published watermarks back to the applied ones if the bus `lost` its contents,
    and the bus's `epoch` stored; the sources moved back."""
    moved = []
    with engine.begin() as conn:
        for name, _ in SOURCES if lost else ():
            applied = read_position(conn, WATERMARKS, APPLIED + name)
            if applied is not None and applied != read_position(conn, WATERMARKS, name):
                save_position(conn, WATERMARKS, name, applied)
                moved.append(name)
        if epoch is not None:
            save_position(conn, WATERMARKS, EPOCH, epoch)
    return moved


def _mark_applied(engine: Engine, positions: dict[str, str | None]) -> None:
    with engine.begin() as conn:
        for name, position in positions.items():
            if position is not None and position != read_position(conn, WATERMARKS, APPLIED + name):
                save_position(conn, WATERMARKS, APPLIED + name, position)


async def recover(engine: Engine, bus: EventBus, *, starting: bool) -> list[str]:
    """Rewind to the applied watermarks when the bus lost its contents: a Redis
    whose epoch is not the one stored, or (`starting`) a bus that lives only in
    this process. Returns the sources rewound."""
    epoch = await bus.epoch()
    if epoch is None:
        return await asyncio.to_thread(_rewind, engine, None, lost=True) if starting else []
    stored = await asyncio.to_thread(_positions, engine, (EPOCH,))
    if stored[EPOCH] == epoch:
        return []
    # No epoch stored: the first relay on this bus, nothing published was lost.
    lost = stored[EPOCH] is not None
    if lost:
        log.warning("the event bus lost its contents; republishing from the applied watermarks")
    return await asyncio.to_thread(_rewind, engine, epoch, lost=lost)


async def mark_applied(engine: Engine, bus: EventBus) -> bool:
    """Move the applied watermarks up to the published ones if the bus is drained.

    The positions are read before the bus is asked: whatever they cover was
    published before, so a drained bus has applied all of it."""
    positions = await asyncio.to_thread(_positions, engine)
    if not await bus.drained():
        return False
    await asyncio.to_thread(_mark_applied, engine, positions)
    return True


async def relay_once(engine: Engine, bus: EventBus, *, limit: int = 500) -> int:
    """Publish what was committed since the last call; the number of events published.

    The database work runs in a thread: a busy SQLite (embedded mode) must not
    stall the event loop that also serves requests.
    """
    published = 0
    for name, batch in SOURCES:
        after, events, last = await asyncio.to_thread(_read, engine, name, batch, limit)
        if last == after:
            continue
        await bus.publish(events)
        await asyncio.to_thread(_save, engine, name, last)
        published += len(events)
    return published
