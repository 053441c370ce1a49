"""The lease itself, on SQLite and PostgreSQL: one holder, take-over on release or
after the time to live (never before), and a fence that rolls back a lost holder's work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import make_async_engine
from gateway.leases import Lease, LeaseLost, default_holder
from gateway.positions import read_position, save_position
from gateway.settings import Settings
from gateway.store.tables import leases

TTL_S = 1.5


@pytest.fixture
async def aengine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(settings)
    yield engine
    await engine.dispose()


def two(engine: AsyncEngine) -> tuple[Lease, Lease]:
    return Lease(engine, "pull:test", "host-a", TTL_S), Lease(engine, "pull:test", "host-b", TTL_S)


async def row(engine: AsyncEngine) -> tuple[str, int]:
    async with engine.connect() as conn:
        found = (await conn.execute(select(leases.c.holder, leases.c.token))).one()
    return found.holder, found.token


def held_gauge() -> float | None:
    return REGISTRY.get_sample_value("xyd_lease_held", {"name": "pull:test"})


async def test_exactly_one_holds(aengine: AsyncEngine) -> None:
    a, b = two(aengine)
    taken = await asyncio.gather(a.acquire(), b.acquire())
    assert sorted(taken) == [False, True]
    holder, other = (a, b) if taken[0] else (b, a)
    assert holder.held and not other.held
    assert await row(aengine) == (holder.holder, 1)
    assert not await other.acquire()  # still not: the holder's time has not run out
    assert await holder.renew() and holder.held


async def test_a_release_hands_it_over_at_once(aengine: AsyncEngine) -> None:
    a, b = two(aengine)
    assert await a.acquire()
    assert held_gauge() == 1
    await a.release()
    assert not a.held and held_gauge() == 0
    assert await b.acquire() and b.held
    assert held_gauge() == 1
    assert await row(aengine) == ("host-b", 2)  # a new token on every take-over
    assert not await a.renew()


async def test_a_holder_that_stops_renewing_is_taken_over_after_the_ttl_not_before(
    aengine: AsyncEngine,
) -> None:
    a, b = two(aengine)
    keeper = asyncio.create_task(a.keep())
    await asyncio.sleep(0.1)
    assert a.held
    await asyncio.sleep(TTL_S * 1.5)  # renewed meanwhile: still a's
    assert a.held and not await b.acquire()
    keeper.cancel()  # a dies: no release, no renewal
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
    died = time.monotonic()
    while True:
        was_held_at_takeover = a.held
        if await b.acquire():
            break
        assert time.monotonic() - died < TTL_S + 1.0, "never taken over"
        await asyncio.sleep(0.05)
    waited = time.monotonic() - died
    # The last renewal came at most a third of the ttl before the death.
    assert TTL_S * 2 / 3 - 0.1 < waited < TTL_S + 0.5, waited
    assert was_held_at_takeover is False  # a had stopped counting it as its own first
    assert b.held and not a.held
    assert (await row(aengine))[0] == "host-b"


async def test_the_holder_counts_it_lost_before_another_may_take_it(
    aengine: AsyncEngine,
) -> None:
    a, b = two(aengine)
    assert await a.acquire()
    await asyncio.sleep(TTL_S - a.margin_s + 0.02)
    assert not a.held  # a has stopped ...
    assert not await b.acquire()  # ... while its expiry is still ahead
    await asyncio.sleep(a.margin_s + 0.05)
    assert await b.acquire()


async def fenced_write(engine: AsyncEngine, lease: Lease, value: str) -> None:
    """A page's transaction: its position stored, then the lease's fence."""
    async with engine.begin() as conn:
        await conn.run_sync(save_position, "test", "cursor", value)
        await conn.run_sync(lease.fence)


async def position(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(read_position, "test", "cursor")


async def test_a_fence_after_loss_rolls_the_work_back(aengine: AsyncEngine) -> None:
    a, b = two(aengine)
    assert await a.acquire()
    await fenced_write(aengine, a, "page-2")
    assert await position(aengine) == "page-2"
    await asyncio.sleep(TTL_S + 0.05)
    assert await b.acquire()
    # a's own clock says lost: refused before the database is asked.
    with pytest.raises(LeaseLost):
        await fenced_write(aengine, a, "page-3")
    # A holder whose clock lies (paused, then resumed thinking it still holds it):
    # the token in the database refuses it, and the page goes with the transaction.
    a.token, a._deadline = 1, time.monotonic() + 60
    with pytest.raises(LeaseLost):
        await fenced_write(aengine, a, "page-4")
    assert not a.held
    assert await position(aengine) == "page-2"
    async with aengine.begin() as conn:
        await conn.run_sync(b.fence)  # the new holder's work goes through


def test_a_named_host_s_processes_hold_as_themselves() -> None:
    """XYD_LEASE_HOLDER names the host; its workers (one per process) must not share
    a holder, or both would renew the other's lease as their own."""
    one, other = default_holder("gw1"), default_holder("gw1")
    assert one.startswith(f"gw1:{os.getpid()}:")
    assert one != other
