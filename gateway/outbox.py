"""The transactional outbox: notifications written with what caused them, sent later.

`enqueue` runs in the causing transaction, so a notification exists exactly
when its cause was committed. `deliver_due` sends what is due, at least
once: a failure (an exception from the destination's `notify`) reschedules
it with exponential back-off and jitter; rows survive restarts because they
are rows. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several workers share
the queue without sending one row twice at the same time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.leases import Fence
from gateway.metrics import OUTBOX_BACKLOG, OUTBOX_DELIVERIES
from gateway.store.tables import outbox

log = logging.getLogger("xyd.outbox")
BASE_DELAY_S = 2.0
MAX_DELAY_S = 3600.0
BATCH = 50

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


def enqueue(conn: Connection, destination: str, kind: str, payload: dict[str, Any]) -> int:
    now = datetime.now(UTC)
    row = conn.execute(
        insert(outbox)
        .values(
            destination=destination,
            kind=kind,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        )
        .returning(outbox.c.id)
    ).first()
    assert row is not None
    return int(row[0])


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """2 s, 4 s, 8 s … capped at an hour, each with up to 20% jitter."""
    delay = min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random).random()
    return delay * (1 + 0.2 * jitter)


def _claim(conn: Connection, now: datetime) -> list[Any]:
    query = (
        select(outbox)
        .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(BATCH)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query))


def _backlog(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
        ).scalar_one()
    )


async def deliver_due(
    engine: AsyncEngine,
    notifiers: dict[str, Notify],
    fence: Fence | None = None,
) -> int:
    """Send every due notification once; the number delivered. `fence` (the outbox
    lease's) runs last in the transaction: a round finished after the lease was
    lost marks nothing delivered, and the new holder sends those again (at least
    once, as ever). Last, not first: the lease's row is not locked, nor SQLite's
    database, while destinations answer."""
    delivered = 0
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        rows = await conn.run_sync(_claim, now)
        for row in rows:
            notify = notifiers.get(row.destination)
            try:
                if notify is None:
                    raise LookupError(f"no notifier for {row.destination}")
                await notify(row.kind, dict(row.payload))
            except Exception as exc:  # any failure: retry later, never drop
                attempts = row.attempts + 1
                OUTBOX_DELIVERIES.labels(row.destination, "failed").inc()
                log.warning(
                    "notification not delivered; retrying",
                    extra={"outbox_id": row.id, "attempts": attempts, "error": str(exc)[:200]},
                )
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(
                        attempts=attempts,
                        next_attempt_at=now + timedelta(seconds=backoff_s(attempts)),
                        last_error=str(exc)[:1000],
                    )
                )
                continue
            OUTBOX_DELIVERIES.labels(row.destination, "delivered").inc()
            delivered += 1
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(delivered_at=datetime.now(UTC), attempts=row.attempts + 1)
            )
        if fence is not None:
            await conn.run_sync(fence)
        OUTBOX_BACKLOG.set(await conn.run_sync(_backlog))
    return delivered
