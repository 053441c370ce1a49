"""The one Protocol every platform adapter implements, and what it is given.

A push adapter serves its platform's endpoints under `/v1/platforms/{key}/`
(`router()`), authenticates and parses each message, and calls `receive`.
A pull adapter fetches on `sync()` (the scheduler in the worker process and
`xyd adapters sync` both call it) and stores each page with its position in
one transaction. Both answer in their platform's own dialect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from fastapi import APIRouter
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.group_commit import GroupCommit
from gateway.keys.ring import KeyRingHolder
from gateway.loans.events import LoanEvent
from gateway.loans.ledger import Stored, dead_letter
from gateway.metrics import PLATFORM_MESSAGES
from gateway.outbound import OutboundPolicy
from policies.consent import ConsentRules

log = logging.getLogger("xyd.adapters")


class NotStarted(RuntimeError):
    """A platform service was used before the app's lifespan bound it."""


class PlatformServices:
    """What adapters use once the app runs: the async engine, the gateway's signing keys.

    Adapters are built with the app, since their routes must exist before it
    starts; the engine and keys only exist once its lifespan runs, which binds
    them here. Reading one before that is a bug, and says so.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._keys: KeyRingHolder | None = None

    def bind(self, engine: AsyncEngine, keys: KeyRingHolder | None = None) -> None:
        self._engine, self._keys = engine, keys

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise NotStarted("platform services used before the app started (no engine yet)")
        return self._engine

    @property
    def keys(self) -> KeyRingHolder:
        if self._keys is None:
            raise NotStarted("platform services used before the app started (no signing keys)")
        return self._keys


@dataclass
class PlatformContext:
    """What the gateway hands every adapter: its services, rules, keys and clock."""

    services: PlatformServices
    consent_rules: ConsentRules
    pii_key: bytes
    state_dir: Path
    clock: Callable[[], float] = time.time
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)  # where calls may go
    # Pushed messages, stored in shared transactions (`receive`).
    commits: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.commits = GroupCommit(lambda: self.services.engine, self.consent_rules)

    @property
    def engine(self) -> AsyncEngine:
        return self.services.engine

    def path(self, name: str) -> Path:
        """A file named in the config, relative to the state directory."""
        value = Path(name)
        return value if value.is_absolute() else self.state_dir / value


@dataclass
class SyncReport:
    platform: str
    window: str
    fetched: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    position: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "window": self.window,
            "fetched": self.fetched,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "position": self.position,
        }


class Adapter(Protocol):
    key: str

    def router(self) -> APIRouter | None:
        """Push endpoints, or None for a pull platform."""
        ...

    async def sync(
        self, *, day: date | None = None, since: datetime | None = None
    ) -> SyncReport | None:
        """One pull run (None for a push platform)."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """A platform whose spec takes notifications back (an adapter may also be one)."""

    async def notify(self, kind: str, payload: dict[str, object]) -> None:
        """Deliver one outbox notification; raise to have it retried."""
        ...


class StoreUnavailable(Exception):
    """The database could not take the message: answer the platform's 'retry later'."""


async def receive(ctx: PlatformContext, event: LoanEvent) -> Stored:
    """Store one pushed event and commit; only then may the platform be told 'accepted'.

    Concurrent calls share a transaction (`adapters.group_commit`), each waiting
    for its commit. "rejected" (an authorisation the gateway cannot register,
    dead-lettered already): the adapter answers it as its platform's protocol
    refuses a message.
    """
    PLATFORM_MESSAGES.labels(event.platform, "received").inc()
    try:
        stored = await ctx.commits.store(event)
    except (SQLAlchemyError, OSError) as exc:
        log.error("could not store a platform message", extra={"platform": event.platform})
        raise StoreUnavailable(str(exc)) from exc
    PLATFORM_MESSAGES.labels(event.platform, stored.outcome).inc()
    if stored.outcome == "rejected":
        PLATFORM_MESSAGES.labels(event.platform, "dead_lettered").inc()
    return stored


async def reject(ctx: PlatformContext, platform: str, reason: str, raw: bytes) -> None:
    """A message that authenticated but could not be parsed: dead-lettered, then refused.

    Failing to dead-letter it does not change the answer (the platform is told
    it was refused and will not resend); it is logged instead.
    """
    PLATFORM_MESSAGES.labels(platform, "received").inc()
    PLATFORM_MESSAGES.labels(platform, "rejected").inc()
    try:
        async with ctx.engine.begin() as conn:
            await conn.run_sync(_dead_letter, platform, reason, raw)
        PLATFORM_MESSAGES.labels(platform, "dead_lettered").inc()
    except (SQLAlchemyError, OSError):
        log.error("could not dead-letter a refused message", extra={"platform": platform})


def _dead_letter(conn: Connection, platform: str, reason: str, raw: bytes) -> None:
    dead_letter(conn, platform, reason, raw)
