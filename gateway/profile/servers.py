"""The production profile's two rules that ask a server: the demo kit's accounts
in the database, and whether Redis persists what it is told.

`NotChecked` means the server could not answer the question (refused the
command, unreachable); the caller logs it as a warning, not a refusal.
"""

from __future__ import annotations

from redis import Redis
from redis.exceptions import ResponseError
from sqlalchemy import Connection

from gateway.profile import repository

# The demo kit's accounts (demo/xyd_demo/clients.py and users.py, repairs.py),
# named here because a production install has no demo kit to ask;
# tests/profile/test_servers.py pins them to the kit's.
DEMO_CLIENT_IDS = (
    "demo-bank",
    "demo-bank-2",
    "demo-bank-fapi",
    "demo-department",
    "demo-credit-office",
    "demo-risk-office",
    "demo-icbc-cd",
    "demo-boc-cd",
    "demo-abc-cd",
    "demo-cdrcb",
    "demo-cmb-cd",
)
DEMO_USER_NAMES = ("demo-officer", "demo-reviewer")


class NotChecked(Exception):
    """The server could not be asked; the message says why."""


def demo_accounts(conn: Connection) -> list[str]:
    """A message per kind of demo account still enabled in the store."""
    found = []
    if names := repository.enabled_clients(conn, DEMO_CLIENT_IDS):
        found.append(
            f"XYD_DATABASE_URL: the store holds the demo kit's clients {', '.join(names)}; "
            "disable each (`xyd clients disable ID`)"
        )
    if names := repository.enabled_users(conn, DEMO_USER_NAMES):
        found.append(
            f"XYD_DATABASE_URL: the store holds the demo kit's dashboard users "
            f"{', '.join(names)}; disable each (`xyd users disable NAME`)"
        )
    return found


def redis_persistence(client: Redis) -> str | None:
    """A message when Redis keeps no append-only file (a restart forgets used `jti`s,
    revocations and today's counts); NotChecked when CONFIG is refused."""
    try:
        answer = client.config_get("appendonly")
    except ResponseError as exc:
        # Managed Redis services often rename or forbid CONFIG.
        raise NotChecked(
            f"XYD_REDIS_URL: Redis's persistence was not checked: CONFIG GET refused ({exc}); "
            "make sure appendonly is yes there"
        ) from None
    # redis-py decodes CONFIG GET's answer to text whatever the client's decoding.
    if answer.get("appendonly") == "yes":
        return None
    return (
        "XYD_REDIS_URL: that Redis keeps no append-only file (appendonly is not yes), so "
        "a restart forgets used jtis, revocations and today's counts; turn appendonly on"
    )
