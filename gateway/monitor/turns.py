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

from sqlalchemy import Connection

from gateway.monitor import repository
from gateway.monitor.history import to_event
from gateway.monitor.window import EventWindow

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


def take_turn(conn: Connection) -> Turn:
    """Wait for the other workers' batches, then hold the turn until this transaction ends."""
    value = repository.lock_state(conn, SCOPE, NAME)
    if value is None:
        # The first batch ever: a racing worker's insert waits for ours, then does nothing.
        repository.add_state(conn, SCOPE, NAME, f"0 {datetime.now(UTC).isoformat()}")
        value = repository.lock_state(conn, SCOPE, NAME)
        assert value is not None
    return _parse(value)


def end_turn(conn: Connection, turn: Turn) -> None:
    repository.save_state(conn, SCOPE, NAME, f"{turn.generation} {turn.stamp.isoformat()}")


def load(conn: Connection, window: EventWindow, after: datetime | None = None) -> int:
    """Add the applied events of the window's time to it (only those stamped after
    `after` when given); how many rows were read."""
    read = 0
    for row in repository.applied_events(conn, window.floor, after):
        read += 1
        if row.id not in window:
            window.add(to_event(row))
    return read
