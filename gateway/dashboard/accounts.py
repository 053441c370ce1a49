"""Dashboard accounts, lock-out, sessions and CSRF tokens, on a sync `Connection`.

Callers own the transaction (these functions never commit). `verify_login`
writes the failure counter even when it refuses, so its caller must commit
a refused login too.

Errors: `create_user` raises `UserExists` (409) and `InvalidValue` (422) for a
bad name, role or password. Nothing else raises on wrong input: a refused
login is a `Login` outcome, an unknown or expired session is `None`.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from gateway.errors import Conflict, InvalidValue
from gateway.identity.clients import hash_secret, secret_matches
from gateway.store.tables import dashboard_sessions, dashboard_users

ROLES = ("risk_officer", "auditor")
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKED_FOR = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(hours=8)
ABSOLUTE_TIMEOUT = timedelta(hours=24)
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
_NAME = re.compile(r"^[\w.@-]{1,64}$")


class UserExists(Conflict):
    type_slug = "dashboard-user-exists"


class Outcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"  # wrong password, unknown or disabled account: one answer for all
    LOCKED = "locked"


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


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(18)


def create_user(
    conn: Connection, name: str, role: str, password: str, now: datetime | None = None
) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidValue("a user name is 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise InvalidValue(f"role must be one of {', '.join(ROLES)}")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidValue(f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} chars")
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


@functools.cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_urlsafe(16))


def verify_login(conn: Connection, name: str, password: str, now: datetime) -> Login:
    """Check a password, counting failures per account; a locked account is refused
    whatever the password. The row is locked so concurrent failures all count."""
    if len(name) > 64 or len(password) > MAX_PASSWORD_CHARS:
        return Login(Outcome.WRONG)
    row = conn.execute(
        select(dashboard_users).where(dashboard_users.c.name == name).with_for_update()
    ).first()
    # Always pay for one scrypt, so timing does not tell which accounts exist.
    matches = secret_matches(row.password_hash if row else _dummy_hash(), password)
    if row is None or row.disabled_at is not None:
        return Login(Outcome.WRONG)
    locked_until = _aware(row.locked_until) if row.locked_until else None
    if locked_until is not None and locked_until > now:
        return Login(Outcome.LOCKED)
    if matches:
        if row.failed_logins or row.first_failed_at or row.locked_until:
            _set_failures(conn, name, 0, None, None)
        return Login(Outcome.OK, row.name, row.role)
    # A lock that has run out starts a fresh window of five tries.
    first = _aware(row.first_failed_at) if row.first_failed_at else None
    in_window = first is not None and now - first < FAILURE_WINDOW and locked_until is None
    failures = row.failed_logins + 1 if in_window else 1
    lock = now + LOCKED_FOR if failures >= MAX_FAILURES else None
    _set_failures(conn, name, failures, first if in_window else now, lock)
    return Login(Outcome.LOCKED if lock else Outcome.WRONG)


def _set_failures(
    conn: Connection, name: str, count: int, first: datetime | None, lock: datetime | None
) -> None:
    conn.execute(
        update(dashboard_users)
        .where(dashboard_users.c.name == name)
        .values(failed_logins=count, first_failed_at=first, locked_until=lock)
    )


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
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
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
