"""All SQL of the identity package: the client registry's rows (clients.py)
and the token guard's store (guard.py): used jtis, revoked tokens, the
denylist and, in embedded mode, its in-memory copy. Works on a sync Connection
inside the caller's transaction; it never commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.tables import clients, revoked_tokens, used_jtis


def client_row(conn: Connection, client_id: str) -> Row[Any] | None:
    return conn.execute(select(clients).where(clients.c.client_id == client_id)).first()


def client_rows(conn: Connection) -> Iterable[Row[Any]]:
    """Every client, by id."""
    return conn.execute(select(clients).order_by(clients.c.client_id))


def insert_client(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Register a client; False when its id is taken (the caller's transaction goes on)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(clients).values(**values))
    except IntegrityError:
        return False
    return True


def update_client(conn: Connection, client_id: str, values: Mapping[str, Any]) -> bool:
    """Change a client (its `updated_at` too); False when there is no such client."""
    result = conn.execute(
        update(clients)
        .where(clients.c.client_id == client_id)
        .values(**values, updated_at=datetime.now(UTC))
    )
    return result.rowcount != 0


def denied(conn: Connection, jti: str, client_id: str) -> bool:
    """Whether the token `jti` is revoked, or its client disabled or unknown."""
    revoked = conn.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)).first()
    if revoked is not None:
        return True
    row = conn.execute(
        select(clients.c.disabled_at).where(clients.c.client_id == client_id)
    ).first()
    return row is None or row.disabled_at is not None


def insert_once(conn: Connection, key: str, expires_at: datetime) -> bool:
    """Mark `key` used until `expires_at`; False when it already was."""
    now = datetime.now(UTC)
    try:
        with conn.begin_nested():
            conn.execute(insert(used_jtis).values(key=key, expires_at=expires_at))
    except IntegrityError:
        return False
    # Keep the table small: forget what can no longer be replayed.
    conn.execute(delete(used_jtis).where(used_jtis.c.expires_at < now))
    return True


def revoke(conn: Connection, jti: str, client_id: str, expires_at: datetime) -> None:
    """Deny the token `jti` (once: a second revocation changes nothing)."""
    exists = conn.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)).first()
    if exists is None:
        conn.execute(
            insert(revoked_tokens).values(
                jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=datetime.now(UTC)
            )
        )


def denylist(conn: Connection) -> tuple[list[str], list[tuple[str, datetime]]]:
    """(the disabled clients, the revoked tokens not yet expired with their expiry)."""
    now = datetime.now(UTC)
    disabled = [
        row.client_id
        for row in conn.execute(
            select(clients.c.client_id).where(clients.c.disabled_at.is_not(None))
        )
    ]
    revoked = [
        (row.jti, row.expires_at)
        for row in conn.execute(
            select(revoked_tokens.c.jti, revoked_tokens.c.expires_at).where(
                revoked_tokens.c.expires_at > now
            )
        )
    ]
    return disabled, revoked


class SqliteDenylist:
    """The embedded mode's denylist, held in memory and re-read on any commit.

    SQLite's `PRAGMA data_version` changes when another connection (the CLI,
    this process's own writes) commits; asking costs microseconds on a plain
    connection, where a query through the async driver costs milliseconds.
    """

    def __init__(self, path: str) -> None:
        # Used only from the event loop's thread; every call is short.
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.version: int | None = None
        self.revoked: set[str] = set()
        self.disabled: set[str] = set()
        self.known: set[str] = set()

    def denied(self, jti: str, client_id: str) -> bool:
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:
            self._reload()
            self.version = version
        return jti in self.revoked or client_id in self.disabled or client_id not in self.known

    def _reload(self) -> None:
        rows = self.conn.execute("SELECT client_id, disabled_at FROM clients").fetchall()
        self.known = {client_id for client_id, _ in rows}
        self.disabled = {client_id for client_id, disabled_at in rows if disabled_at is not None}
        # Expired entries are harmless (their tokens fail on exp) and few.
        self.revoked = {jti for (jti,) in self.conn.execute("SELECT jti FROM revoked_tokens")}

    def close(self) -> None:
        self.conn.close()


def local_denylist(engine: AsyncEngine) -> SqliteDenylist | None:
    """An in-memory copy of the denylist where the store is a SQLite file; None elsewhere."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database:
        return SqliteDenylist(database)
    return None
