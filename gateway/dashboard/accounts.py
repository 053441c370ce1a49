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
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from gateway.dashboard import passwords, repository
from gateway.dashboard.passwords import new_password
from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.identity.clients import hash_secret

__all__ = ["new_password"]  # the demo's officer takes it from here

# A department_reviewer decides credit repairs for its department (its `department`),
# and sees nothing else of the dashboard.
REVIEWER = "department_reviewer"
ROLES = ("risk_officer", "auditor", REVIEWER)
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
    department: str | None = None  # a department_reviewer's


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: Connection,
    name: str,
    role: str,
    password: str,
    now: datetime | None = None,
    *,
    department: str | None = None,
) -> None:
    """`department`: a department_reviewer's, as departments.yaml names it (the
    caller checks it there); no other role has one."""
    if not _NAME.fullmatch(name):
        raise InvalidValue("a user name is 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise InvalidValue(f"role must be one of {', '.join(ROLES)}")
    if (role == REVIEWER) != (department is not None):
        raise InvalidValue(f"a {REVIEWER}, and only one, names its department")
    passwords.check(name, password)
    if repository.user_exists(conn, name):
        raise UserExists(f"dashboard user {name} already exists")
    repository.add_user(
        conn, name, role, hash_secret(password), now or datetime.now(UTC), department
    )


def _change(conn: Connection, name: str, **values: object) -> None:
    if not repository.change_user(conn, name, values):
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
    if name is not None and not repository.user_exists(conn, name):
        raise NoSuchUser(f"no dashboard user {name[:MAX_NAME_CHARS]}")
    return repository.delete_sessions(conn, name)


def _enabled(conn: Connection, name: str) -> tuple[str, str] | None:
    if len(name) > MAX_NAME_CHARS:
        return None
    row = repository.user_login(conn, name)
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
    repository.add_session(conn, session_id(token), user_name, csrf, now)
    return token, csrf


def _purge_expired(conn: Connection, now: datetime) -> None:
    # Piggy-backs on logins so dead sessions do not pile up without a cleaner job.
    repository.delete_sessions_before(conn, now - IDLE_TIMEOUT, now - ABSOLUTE_TIMEOUT)


def get_session(conn: Connection, token: str | None, now: datetime) -> Session | None:
    """The live session for a cookie token; an expired one is deleted on sight."""
    if not token or len(token) > 200:
        return None
    row = repository.session_row(conn, session_id(token))
    if row is None:
        return None
    created, seen = row.created_at, row.last_seen_at
    if now - seen >= IDLE_TIMEOUT or now - created >= ABSOLUTE_TIMEOUT or row.disabled_at:
        destroy_session(conn, token)
        return None
    return Session(row.user_name, row.role, row.csrf_token, created, seen, row.department)


def touch_session(conn: Connection, token: str, now: datetime) -> None:
    repository.touch_session(conn, session_id(token), now)


def destroy_session(conn: Connection, token: str) -> None:
    repository.delete_session(conn, session_id(token))
