"""Monitor batches take turns, so a worker's in-memory window can stay exact.

Every batch transaction first locks one row (`platform_sync_state`, monitor /
applied) and holds it until it commits: batches of all workers apply one at a
time, each seeing every event applied before it, as a single worker would. The
row counts batches (`generation`) and carries the `stamp` the last batch gave
its rows' `applied_at`; stamps only grow. A worker whose last batch was the
previous generation knows its window is complete without reading anything;
otherwise it reads the rows stamped after the last stamp it saw.

Without the turns, two workers' batches would run side by side and neither
would see the other's events until both committed: a window split across them
would raise nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.monitor.history import to_event
from gateway.monitor.window import EventWindow
from gateway.store.tables import monitor_events, platform_sync_state

SCOPE, NAME = "monitor", "applied"
ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Turn:
    generation: int  # batches applied so far, by every worker
    stamp: datetime  # the `applied_at` of the last batch's rows

    def next(self) -> Turn:
        # Strictly later than the last stamp, whatever the clocks of other workers say.
        return Turn(self.generation + 1, max(datetime.now(UTC), self.stamp + ONE_US))


def _parse(value: str) -> Turn:
    generation, _, stamp = value.partition(" ")
    return Turn(int(generation), datetime.fromisoformat(stamp))


def _lock(conn: Connection) -> str | None:
    # An UPDATE, not a SELECT: it takes the row lock on PostgreSQL and the write
    # lock on SQLite, which a SELECT ... FOR UPDATE would not.
    return conn.execute(
        update(platform_sync_state)
        .where(platform_sync_state.c.platform == SCOPE, platform_sync_state.c.name == NAME)
        .values(updated_at=datetime.now(UTC))
        .returning(platform_sync_state.c.value)
    ).scalar()


def take_turn(conn: Connection) -> Turn:
    """Wait for the other workers' batches, then hold the turn until this transaction ends."""
    value = _lock(conn)
    if value is None:
        # The first batch ever: a racing worker's insert waits for ours, then does nothing.
        stmt: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
            platform_sync_state
        )
        conn.execute(
            stmt.values(
                platform=SCOPE,
                name=NAME,
                value=f"0 {datetime.now(UTC).isoformat()}",
                updated_at=datetime.now(UTC),
            ).on_conflict_do_nothing(index_elements=["platform", "name"])
        )
        value = _lock(conn)
        assert value is not None
    return _parse(value)


def end_turn(conn: Connection, turn: Turn) -> None:
    conn.execute(
        update(platform_sync_state)
        .where(platform_sync_state.c.platform == SCOPE, platform_sync_state.c.name == NAME)
        .values(value=f"{turn.generation} {turn.stamp.isoformat()}", updated_at=datetime.now(UTC))
    )


def load(conn: Connection, window: EventWindow, after: datetime | None = None) -> int:
    """Add the applied events of the window's time to it (only those stamped after
    `after` when given); how many rows were read."""
    query = select(monitor_events).where(monitor_events.c.occurred_at >= window.floor)
    if after is not None:
        query = query.where(monitor_events.c.applied_at > after)
    read = 0
    for row in conn.execute(query):
        read += 1
        if row.id not in window:
            window.add(to_event(row))
    return read
