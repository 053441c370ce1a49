"""Where each background reader stopped: a pull platform's cursor or last day, the
monitor's watermarks. One row per (owner, name) in `platform_sync_state`; the
writer commits a position in the same transaction as the work it covers, so a
crash in between loses and doubles nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.tables import platform_sync_state


def read_position(conn: Connection, owner: str, name: str) -> str | None:
    return conn.execute(
        select(platform_sync_state.c.value).where(
            platform_sync_state.c.platform == owner, platform_sync_state.c.name == name
        )
    ).scalar()


def save_position(conn: Connection, owner: str, name: str, value: str) -> None:
    """An upsert, so two writers racing (the schedule in two workers, or the CLI)
    never fail on the key; the later commit's position wins, and the events
    either covered are deduplicated anyway."""
    now = datetime.now(UTC)
    values = {"platform": owner, "name": name, "value": value, "updated_at": now}
    stmt: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(
        platform_sync_state
    )
    conn.execute(
        stmt.values(**values).on_conflict_do_update(
            index_elements=["platform", "name"], set_={"value": value, "updated_at": now}
        )
    )
