"""Leases: work that must run once across hosts runs in one process at a time.

A lease is a row of `leases` (name, holder, token, expires_at). `acquire` takes
it when it is free or expired, in one upsert that both engines serialise (a
row lock on PostgreSQL, the database lock on SQLite), and the token grows on
every take-over. The holder renews it every third of its time to live.

Two clocks keep two holders from working at once:
- the holder's own: it counts the lease lost `margin_s` before the expiry it
  wrote, by the monotonic clock read *before* the statement that wrote it, so
  it stops before any other host may take the lease over;
- the database's: `fence` runs inside the work's own transaction and matches
  the token, so a page or a delivery written by a holder that lost the lease
  (paused, cut off, its clock wrong) is rolled back with it. On PostgreSQL the
  fence's row lock also holds a take-over back until that transaction ends.

A row in the database, not an advisory lock: it survives a Patroni failover
(a synchronous standby has it) and works the same on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Update, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.metrics import LEASE_HELD
from gateway.store.tables import leases

log = logging.getLogger("xyd.leases")
# What work runs first in its transaction: raises LeaseLost to roll it back.
Fence = Callable[[Connection], None]


class LeaseLost(RuntimeError):
    """The lease this work was fenced by is no longer this process's."""


def default_holder(host: str | None = None) -> str:
    """host:pid:random (host: the hostname unless named), so the workers of one host
    never share a holder and a restarted process is never its own predecessor."""
    return f"{host or socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    def __init__(self, engine: AsyncEngine, name: str, holder: str, ttl_s: float) -> None:
        self.engine, self.name, self.holder, self.ttl_s = engine, name, holder, ttl_s
        # Room for a renewal's round trip and the hosts' clocks disagreeing a little.
        self.margin_s = ttl_s / 5
        self.token: int | None = None
        self._deadline = 0.0  # monotonic: the lease counts as lost from then on
        self._taken = asyncio.Event()  # set while a token is ours
        self._released = False  # a clean stop: never taken again by this process
        # Set on a clean stop: the loops under this lease end their round and
        # return rather than being cancelled mid-transaction (a cancelled
        # aiosqlite call can leave the event loop's close waiting forever).
        self._stopping = asyncio.Event()

    @property
    def held(self) -> bool:
        return self.token is not None and time.monotonic() < self._deadline

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """A clean stop begins: waiters wake, and loops return after their round."""
        self._stopping.set()
        self._taken.set()

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the stop begins."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @property
    def every_s(self) -> float:
        """How often the holder renews and the others try to take it."""
        return self.ttl_s / 3

    async def acquire(self) -> bool:
        """Take the lease when free or expired (or already ours); True when held."""
        if self._released:
            return False
        started = time.monotonic()
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            token = await conn.run_sync(self._take, now)
        if token is None:
            self._lose(None)
            return False
        was_held = self.held
        self.token, self._deadline = token, started + self.ttl_s - self.margin_s
        self._taken.set()
        LEASE_HELD.labels(self.name).set(1)
        if not was_held:
            log.info("lease taken", extra={"lease": self.name, "token": token})
        return True

    def _take(self, conn: Connection, now: datetime) -> int | None:
        values = {
            "name": self.name,
            "holder": self.holder,
            "token": 1,
            "expires_at": now + timedelta(seconds=self.ttl_s),
            "renewed_at": now,
        }
        upsert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(leases)
        statement = (
            upsert.values(values)
            .on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={
                    "holder": upsert.excluded.holder,
                    "token": leases.c.token + 1,
                    "expires_at": upsert.excluded.expires_at,
                    "renewed_at": upsert.excluded.renewed_at,
                },
                where=(leases.c.expires_at <= now) | (leases.c.holder == self.holder),
            )
            .returning(leases.c.token)
        )
        token = conn.execute(statement).scalar()
        return None if token is None else int(token)

    async def renew(self) -> bool:
        """Push the expiry on; False (and the lease lost) when it is no longer ours."""
        if self.token is None:
            return False
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            async with self.engine.begin() as conn:
                renewed = await conn.execute(
                    self._ours(self.token)
                    .where(leases.c.expires_at > now)
                    .values(expires_at=now + timedelta(seconds=self.ttl_s), renewed_at=now)
                )
        except Exception:
            self._lose("renewal failed")
            raise
        if renewed.rowcount != 1:
            self._lose("taken over or expired")
            return False
        if self.held:  # a renewal that ran past the deadline does not revive it
            self._deadline = started + self.ttl_s - self.margin_s
            return True
        self._lose("renewed too late")
        return False

    async def release(self) -> None:
        """On a clean stop: expire it now, so another host takes over at once."""
        self._released = True
        token = self.token
        self._lose(None)
        if token is None:
            return
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(self._ours(token).values(expires_at=now, renewed_at=now))
        log.info("lease released", extra={"lease": self.name, "token": token})

    def fence(self, conn: Connection) -> None:
        """In the work's transaction: raise LeaseLost unless the lease is still ours,
        so the transaction is rolled back with everything it wrote."""
        token = self.token
        if token is None or not self.held:
            raise LeaseLost(f"lease {self.name} is not held")
        fenced = conn.execute(self._ours(token).values(renewed_at=datetime.now(UTC)))
        if fenced.rowcount != 1:
            self._lose("taken over")
            raise LeaseLost(f"lease {self.name} was taken over")

    async def wait_held(self) -> None:
        """Return once this process holds the lease (at once when it does), or
        the stop began."""
        while not self.held and not self.stopping:
            if self.token is not None:  # its time ran out before a renewal came back
                self._lose("not renewed in time")
            await self._taken.wait()

    async def keep(self) -> None:
        """Renew while held, try to take it while not, every third of the ttl;
        until the stop."""
        while not self._released and not self.stopping:
            try:
                if self.token is not None:
                    await self.renew()
                else:
                    await self.acquire()
            except Exception:  # the database away: the lease counts as lost meanwhile
                log.warning("lease round failed", extra={"lease": self.name}, exc_info=True)
            await self.pause(self.every_s)

    def _ours(self, token: int) -> Update:
        return update(leases).where(
            leases.c.name == self.name, leases.c.holder == self.holder, leases.c.token == token
        )

    def _lose(self, why: str | None) -> None:
        if self.token is not None and why is not None:
            log.warning("lease lost", extra={"lease": self.name, "token": self.token, "why": why})
        self.token, self._deadline = None, 0.0
        self._taken.clear()
        LEASE_HELD.labels(self.name).set(0)
