"""The profile's SQL: which of a few named accounts exist and are enabled."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from gateway.store.tables import clients, dashboard_users


def enabled_clients(conn: Connection, client_ids: Collection[str]) -> list[str]:
    rows = conn.execute(
        select(clients.c.client_id)
        .where(clients.c.client_id.in_(list(client_ids)), clients.c.disabled_at.is_(None))
        .order_by(clients.c.client_id)
    )
    return [row.client_id for row in rows]


def enabled_users(conn: Connection, names: Collection[str]) -> list[str]:
    rows = conn.execute(
        select(dashboard_users.c.name)
        .where(dashboard_users.c.name.in_(list(names)), dashboard_users.c.disabled_at.is_(None))
        .order_by(dashboard_users.c.name)
    )
    return [row.name for row in rows]
