"""The monitor's History over the database: what every worker has applied, shared.

Each worker sees the events all workers applied (they are rows), so a rule's
window is the same whichever worker evaluates it. Queries go by kind and
event time on an index; attribute filters are applied to that small set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, select

from gateway.store.tables import enterprises, monitor_events
from policies.risk.base import EventKind, MonitorEvent


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SqlHistory:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def events(
        self,
        *,
        since: datetime,
        until: datetime,
        kind: EventKind | None = None,
        credit_code: str | None = None,
        attr: tuple[str, Any] | None = None,
    ) -> Sequence[MonitorEvent]:
        query = select(monitor_events).where(
            monitor_events.c.occurred_at >= since.astimezone(UTC),
            monitor_events.c.occurred_at <= until.astimezone(UTC),
        )
        if kind is not None:
            query = query.where(monitor_events.c.kind == kind)
        if credit_code is not None:
            query = query.where(monitor_events.c.credit_code == credit_code)
        found = [
            MonitorEvent(
                id=row.id,
                kind=row.kind,
                occurred_at=_aware(row.occurred_at),
                credit_code=row.credit_code,
                attrs=dict(row.attrs),
            )
            for row in self.conn.execute(query.order_by(monitor_events.c.occurred_at))
        ]
        if attr is not None:
            name, value = attr
            found = [e for e in found if e.attrs.get(name) == value]
        return found

    def registered_on(self, credit_code: str) -> date | None:
        value = self.conn.execute(
            select(enterprises.c.registered_on).where(enterprises.c.credit_code == credit_code)
        ).scalar()
        return value if isinstance(value, date) else None

    def legal_rep_hash(self, credit_code: str) -> str | None:
        value = self.conn.execute(
            select(enterprises.c.legal_rep_hash).where(enterprises.c.credit_code == credit_code)
        ).scalar()
        return str(value) if value else None
