"""The portal's SQL: pending logins and sessions by their hashes, and the
enterprise's consents with how many reports each gave."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from gateway.store.tables import (
    audit_entries,
    clients,
    consents,
    portal_logins,
    portal_sessions,
)


def insert_login(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(portal_logins).values(**values))


def spend_login(conn: Connection, state_hash: str, now: datetime) -> Row[Any] | None:
    """The pending login for a state, marked used; None when unknown or used
    (of two concurrent callbacks exactly one changes the row)."""
    table = portal_logins
    spent = conn.execute(
        update(table)
        .where(table.c.state_hash == state_hash, table.c.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        return None
    return conn.execute(select(table).where(table.c.state_hash == state_hash)).first()


def purge_logins(conn: Connection, now: datetime) -> None:
    conn.execute(delete(portal_logins).where(portal_logins.c.expires_at <= now))


def insert_session(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(portal_sessions).values(**values))


def session_row(conn: Connection, session_id: str) -> Row[Any] | None:
    query = select(portal_sessions).where(portal_sessions.c.id == session_id)
    return conn.execute(query).first()


def touch_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        update(portal_sessions).where(portal_sessions.c.id == session_id).values(last_seen_at=now)
    )


def delete_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(portal_sessions).where(portal_sessions.c.id == session_id))


def purge_sessions(conn: Connection, idle_before: datetime, created_before: datetime) -> None:
    table = portal_sessions
    conn.execute(
        delete(table).where(
            or_(table.c.last_seen_at < idle_before, table.c.created_at < created_before)
        )
    )


def enterprise_consents(conn: Connection, credit_code: str, limit: int) -> list[Row[Any]]:
    """Every consent for the enterprise, newest first, with the bank's name."""
    query = (
        select(consents, clients.c.display_name.label("bank_name"))
        .select_from(
            consents.outerjoin(clients, clients.c.client_id == consents.c.grantee_client_id)
        )
        .where(consents.c.credit_code == credit_code)
        .order_by(consents.c.created_at.desc(), consents.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def times_used(conn: Connection, credit_code: str, route: str) -> dict[str, int]:
    """Reports given under each of the enterprise's consents (their `allow` entries)."""
    table = audit_entries
    query = (
        select(table.c.consent_id, func.count())
        .where(
            table.c.credit_code == credit_code,
            table.c.route == route,
            table.c.decision == "allow",
            table.c.consent_id.is_not(None),
        )
        .group_by(table.c.consent_id)
    )
    return {consent_id: count for consent_id, count in conn.execute(query)}


def bank_name(conn: Connection, client_id: str) -> str | None:
    query = select(clients.c.display_name).where(clients.c.client_id == client_id)
    name: str | None = conn.execute(query).scalar()
    return name
