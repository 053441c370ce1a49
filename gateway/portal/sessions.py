"""Pending logins and portal sessions, on a sync `Connection` (callers own the
transaction; the SQL is in repository.py).

A login started at /portal/login is a row keyed by the SHA-256 of its `state`
and tied to the browser that started it by a cookie's random token (its hash
in the row): a callback from another browser (login CSRF) is refused. The PKCE
verifier and the nonce are derived from that token and the state (HMAC), so
neither is stored and the table alone redeems nothing. A session is a row
keyed by the SHA-256 of its cookie's token; its CSRF token is derived from
the cookie's token, never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from gateway.consents.principal import PortalPrincipal
from gateway.errors import BadRequest
from gateway.portal import repository
from gateway.settings import Settings

MAX_TOKEN_CHARS = 200


class LoginStateRefused(BadRequest):
    type_slug, title = "portal-login-state", "This login is unknown, used, expired or another's"


@dataclass(frozen=True, slots=True)
class PortalSession:
    """The logged-in person, as the enterprise login named them."""

    principal: PortalPrincipal
    csrf: str  # the token every form of this session carries
    created_at: datetime

    @property
    def credit_code(self) -> str:
        return self.principal.credit_code


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derived(token: str, purpose: str, state: str = "") -> str:
    """A value only the holder of `token` can make: 43 base64url characters."""
    mac = hmac.new(token.encode(), f"{purpose}:{state}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verifier_of(browser: str, state: str) -> str:
    return derived(browser, "pkce-verifier", state)


def nonce_of(browser: str, state: str) -> str:
    return derived(browser, "oidc-nonce", state)


def start_login(
    conn: Connection, next_path: str, now: datetime, settings: Settings
) -> tuple[str, str]:
    """A pending login: (the browser cookie's token, the state to send)."""
    # Piggy-backs on logins so dead rows do not pile up without a cleaner job.
    repository.purge_logins(conn, now)
    browser, state = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    repository.insert_login(
        conn,
        {
            "state_hash": token_hash(state),
            "browser_hash": token_hash(browser),
            "next_path": next_path,
            "expires_at": now + timedelta(seconds=settings.portal_login_ttl_s),
            "created_at": now,
        },
    )
    return browser, state


def finish_login(conn: Connection, state: str, browser: str | None, now: datetime) -> str:
    """Spend the pending login `state` names: where to go next; LoginStateRefused
    when it is unknown, used, expired or was started by another browser."""
    if not state or len(state) > MAX_TOKEN_CHARS:
        raise LoginStateRefused("state: not one this gateway sent")
    row = repository.spend_login(conn, token_hash(state), now)
    if row is None:
        raise LoginStateRefused("state: unknown or already used; log in again")
    if row.expires_at <= now:
        raise LoginStateRefused("this login took too long; log in again")
    if not browser or not hmac.compare_digest(token_hash(browser), row.browser_hash):
        raise LoginStateRefused("this login was started in another browser; log in again")
    return str(row.next_path)


def create_session(
    conn: Connection, principal: PortalPrincipal, now: datetime, settings: Settings
) -> str:
    """A fresh session (never one the browser brought): its cookie token."""
    repository.purge_sessions(
        conn,
        now - timedelta(seconds=settings.portal_idle_timeout_s),
        now - timedelta(seconds=settings.portal_absolute_timeout_s),
    )
    token = secrets.token_urlsafe(32)
    repository.insert_session(
        conn,
        {
            "id": token_hash(token),
            "subject_hash": principal.subject_hash,
            "credit_code": principal.credit_code,
            "role": principal.role,
            "created_at": now,
            "last_seen_at": now,
        },
    )
    return token


def get_session(
    conn: Connection, token: str | None, now: datetime, settings: Settings, *, touch: bool = True
) -> PortalSession | None:
    """The live session for a cookie token; an expired one is deleted on sight."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    session_id = token_hash(token)
    row = repository.session_row(conn, session_id)
    if row is None:
        return None
    idle = timedelta(seconds=settings.portal_idle_timeout_s)
    absolute = timedelta(seconds=settings.portal_absolute_timeout_s)
    if now - row.last_seen_at >= idle or now - row.created_at >= absolute:
        repository.delete_session(conn, session_id)
        return None
    if touch:
        repository.touch_session(conn, session_id, now)
    principal = PortalPrincipal(row.subject_hash, row.credit_code, row.role)
    return PortalSession(principal, derived(token, "csrf"), row.created_at)


def end_session(conn: Connection, token: str) -> None:
    if len(token) <= MAX_TOKEN_CHARS:
        repository.delete_session(conn, token_hash(token))
