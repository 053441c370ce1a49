"""Dashboard accounts, sessions and CSRF tokens, on a sync `Connection`.

Callers own the transaction (these functions never commit). The password is
checked elsewhere (passwords.Hasher, in a thread) and throttled before that
(throttle.py): here are the reads and writes around it.

Errors: `create_user` raises `UserExists` (409); it and `set_password` raise
`InvalidValue` (422) for a bad name, role or password (passwords.check); the
CLI's changes raise `NoSuchUser` (404) for a name nobody has. Nothing else
raises on wrong input: a refused login is a `Login` outcome, an unknown or
expired session is `None`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from gateway.dashboard import passwords
from gateway.dashboard.passwords import new_password
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.identity.clients import hash_secret
from gateway.store.tables import dashboard_sessions, dashboard_users
from gateway.timeutil import aware

__all__ = ["new_password"]  # the demo's officer takes it from here

ROLES = ("risk_officer", "auditor")
IDLE_TIMEOUT = timedelta(hours=8)
ABSOLUTE_TIMEOUT = timedelta(hours=24)
MAX_NAME_CHARS = 64
_NAME = re.compile(r"^[\w.@-]{1,64}$")


class UserExists(Conflict):
    type_slug = "dashboard-user-exists"


class NoSuchUser(NotFound):
    type_slug = "dashboard-user-unknown"


class Outcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # wrong password, unknown or disabled account: one answer for all


@dataclass(frozen=True)
class Login:
    outcome: Outcome
    name: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Session:
    user_name: str
    role: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: Connection, name: str, role: str, password: str, now: datetime | None = None
) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidValue("a user name is 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise InvalidValue(f"role must be one of {', '.join(ROLES)}")
    passwords.check(name, password)
    exists = conn.execute(
        select(dashboard_users.c.name).where(dashboard_users.c.name == name)
    ).first()
    if exists is not None:
        raise UserExists(f"dashboard user {name} already exists")
    conn.execute(
        insert(dashboard_users).values(
            name=name,
            role=role,
            password_hash=hash_secret(password),
            failed_logins=0,
            created_at=now or datetime.now(UTC),
        )
    )


def _change(conn: Connection, name: str, **values: object) -> None:
    changed = conn.execute(
        update(dashboard_users).where(dashboard_users.c.name == name).values(**values)
    ).rowcount
    if not changed:
        raise NoSuchUser(f"no dashboard user {name[:MAX_NAME_CHARS]}")


def set_password(conn: Connection, name: str, password: str) -> int:
    """A new password (the policy applies); every session of the old one ends.
    Returns how many sessions ended."""
    passwords.check(name, password)
    _change(conn, name, password_hash=hash_secret(password))
    return end_sessions(conn, name)


def set_disabled(conn: Connection, name: str, disabled: bool, now: datetime) -> int:
    """Disable (its sessions end at once) or enable an account; sessions ended."""
    _change(conn, name, disabled_at=now if disabled else None)
    return end_sessions(conn, name) if disabled else 0


def end_sessions(conn: Connection, name: str | None = None) -> int:
    """End one user's sessions, or everyone's with None; how many ended. An open
    stream notices within a second (the dashboard's stream checks its session)."""
    query = delete(dashboard_sessions)
    if name is not None:
        exists = conn.execute(
            select(dashboard_users.c.name).where(dashboard_users.c.name == name)
        ).first()
        if exists is None:
            raise NoSuchUser(f"no dashboard user {name[:MAX_NAME_CHARS]}")
        query = query.where(dashboard_sessions.c.user_name == name)
    return conn.execute(query).rowcount


def _enabled(conn: Connection, name: str) -> tuple[str, str] | None:
    if len(name) > MAX_NAME_CHARS:
        return None
    u = dashboard_users.c
    row = conn.execute(select(u.password_hash, u.role, u.disabled_at).where(u.name == name)).first()
    return None if row is None or row.disabled_at is not None else (row.password_hash, row.role)


def password_hash(conn: Connection, name: str) -> str | None:
    """The stored hash of an enabled account; None for an unknown or disabled
    one (the caller still pays one scrypt: passwords.matches)."""
    found = _enabled(conn, name)
    return found[0] if found else None


def verify_login(conn: Connection, name: str, password: str) -> Login:
    """Check a password here and now, on this thread (tests, tools).
    The dashboard's login throttles first and hashes in a thread (login.py)."""
    found = _enabled(conn, name)
    if len(password) > passwords.MAX_CHARS:
        return Login(Outcome.WRONG)
    if not passwords.matches(found[0] if found else None, password) or found is None:
        return Login(Outcome.WRONG)
    return Login(Outcome.OK, name, found[1])


def create_session(conn: Connection, user_name: str, now: datetime) -> tuple[str, str]:
    """Start a session; return (cookie token, CSRF token). Only the token's hash is stored."""
    _purge_expired(conn, now)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        insert(dashboard_sessions).values(
            id=session_id(token),
            user_name=user_name,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        )
    )
    return token, csrf


def _purge_expired(conn: Connection, now: datetime) -> None:
    # Piggy-backs on logins so dead sessions do not pile up without a cleaner job.
    t = dashboard_sessions.c
    conn.execute(
        delete(dashboard_sessions).where(
            or_(t.last_seen_at < now - IDLE_TIMEOUT, t.created_at < now - ABSOLUTE_TIMEOUT)
        )
    )


def get_session(conn: Connection, token: str | None, now: datetime) -> Session | None:
    """The live session for a cookie token; an expired one is deleted on sight."""
    if not token or len(token) > 200:
        return None
    s, u = dashboard_sessions.c, dashboard_users.c
    row = conn.execute(
        select(s.user_name, s.csrf_token, s.created_at, s.last_seen_at, u.role, u.disabled_at)
        .join(dashboard_users, u.name == s.user_name)
        .where(s.id == session_id(token))
    ).first()
    if row is None:
        return None
    created, seen = aware(row.created_at), aware(row.last_seen_at)
    if now - seen >= IDLE_TIMEOUT or now - created >= ABSOLUTE_TIMEOUT or row.disabled_at:
        destroy_session(conn, token)
        return None
    return Session(row.user_name, row.role, row.csrf_token, created, seen)


def touch_session(conn: Connection, token: str, now: datetime) -> None:
    conn.execute(
        update(dashboard_sessions)
        .where(dashboard_sessions.c.id == session_id(token))
        .values(last_seen_at=now)
    )


def destroy_session(conn: Connection, token: str) -> None:
    conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id == session_id(token)))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an absent token on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
