"""The code flow's SQL: pushed requests, codes and refresh tokens, by their hashes.

Each is spent by a conditional UPDATE (`used_at IS NULL`): of two concurrent
uses exactly one changes the row, on every database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, exists, insert, or_, select, update

from gateway.store.tables import oauth_codes, oauth_refresh_tokens, oauth_requests


def insert_request(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_requests).values(**values))


def request_row(conn: Connection, request_hash: str) -> Row[Any] | None:
    query = select(oauth_requests).where(oauth_requests.c.request_hash == request_hash)
    return conn.execute(query).first()


def spend_request(conn: Connection, request_hash: str, now: datetime) -> bool:
    """Mark a pushed request used; False if it already was."""
    result = conn.execute(
        update(oauth_requests)
        .where(oauth_requests.c.request_hash == request_hash, oauth_requests.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def insert_code(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_codes).values(**values))


def code_row(conn: Connection, code_hash: str) -> Row[Any] | None:
    query = select(oauth_codes).where(oauth_codes.c.code_hash == code_hash)
    return conn.execute(query).first()


def spend_code(conn: Connection, code_hash: str, now: datetime, issues: Mapping[str, Any]) -> bool:
    """Mark a code used, naming what its use issues; False if it already was."""
    result = conn.execute(
        update(oauth_codes)
        .where(oauth_codes.c.code_hash == code_hash, oauth_codes.c.used_at.is_(None))
        .values(used_at=now, **issues)
    )
    return result.rowcount == 1


def insert_refresh(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(oauth_refresh_tokens).values(**values))


def refresh_row(conn: Connection, token_hash: str) -> Row[Any] | None:
    query = select(oauth_refresh_tokens).where(oauth_refresh_tokens.c.token_hash == token_hash)
    return conn.execute(query).first()


def spend_refresh(conn: Connection, token_hash: str, now: datetime) -> bool:
    """Mark a refresh token rotated; False if it already was (or was revoked)."""
    table = oauth_refresh_tokens
    result = conn.execute(
        update(table)
        .where(table.c.token_hash == token_hash, table.c.used_at.is_(None))
        .where(table.c.revoked_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def revoke_family(conn: Connection, family: str, now: datetime) -> list[tuple[str, datetime]]:
    """Revoke every refresh token of `family`; the access tokens issued beside
    them that may still be live, as (jti, expires_at), for the denylist."""
    table = oauth_refresh_tokens
    conn.execute(
        update(table)
        .where(table.c.family == family, table.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    rows = conn.execute(
        select(table.c.access_jti, table.c.access_expires_at).where(
            table.c.family == family, table.c.access_expires_at > now
        )
    )
    return [(row.access_jti, row.access_expires_at) for row in rows]


# --- the purge: what no reuse check needs any more, a bounded batch at a time ---


def purge_requests(conn: Connection, now: datetime, limit: int) -> int:
    """Pushed requests past their expiry, used or not: neither can be approved,
    and a missing one is refused like an expired one."""
    table = oauth_requests
    doomed = select(table.c.request_hash).where(table.c.expires_at < now).limit(limit)
    result = conn.execute(delete(table).where(table.c.request_hash.in_(doomed.scalar_subquery())))
    return result.rowcount


def purge_codes(conn: Connection, now: datetime, kept_since: datetime, limit: int) -> int:
    """Codes past their expiry that were never redeemed, and redeemed ones spent
    before `kept_since` whose access token has expired and whose refresh family
    has no live token left: nothing a second use could still revoke."""
    table, tokens = oauth_codes, oauth_refresh_tokens
    family_live = exists().where(
        tokens.c.family == table.c.refresh_family,
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > now,
    )
    spent_and_dead = and_(
        table.c.used_at < kept_since,
        or_(table.c.access_expires_at.is_(None), table.c.access_expires_at <= now),
        ~family_live,
    )
    doomed = (
        select(table.c.code_hash)
        .where(table.c.expires_at < now, or_(table.c.used_at.is_(None), spent_and_dead))
        .limit(limit)
    )
    result = conn.execute(delete(table).where(table.c.code_hash.in_(doomed.scalar_subquery())))
    return result.rowcount


def purge_refresh_tokens(conn: Connection, ended_before: datetime, limit: int) -> int:
    """Refresh tokens whose family ended (expired with its consent, or revoked)
    before `ended_before`. Rotated tokens of a live family stay: a rotated one
    presented again is how a stolen token is found and its family revoked."""
    table = oauth_refresh_tokens
    doomed = (
        select(table.c.token_hash)
        .where(or_(table.c.expires_at < ended_before, table.c.revoked_at < ended_before))
        .limit(limit)
    )
    result = conn.execute(delete(table).where(table.c.token_hash.in_(doomed.scalar_subquery())))
    return result.rowcount
