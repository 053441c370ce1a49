"""A spent jti must outlive a Redis failover: with XYD_REDIS_WAIT_REPLICAS the
guard waits for replicas and refuses (503) when too few acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import DependencyUnavailable
from gateway.identity.guard import EPOCH, TokenGuard
from policies.rate_redis import ReplicaWait

pytestmark = pytest.mark.redis


async def test_a_jti_no_replica_acknowledged_is_refused_not_accepted(rds: Redis) -> None:
    await rds.set(EPOCH, datetime.now(UTC).isoformat())
    # The database is not asked while the epoch is there.
    engine = cast(AsyncEngine, None)
    expires = datetime.now(UTC) + timedelta(minutes=1)
    now_s = int(datetime.now(UTC).timestamp())
    waiting = TokenGuard(engine, rds, ReplicaWait(replicas=1, timeout_ms=20))
    with pytest.raises(DependencyUnavailable):
        await waiting.first_use("wait-jti-1", expires, now_s, now_s)
    alone = TokenGuard(engine, rds)
    assert await alone.first_use("wait-jti-2", expires, now_s, now_s)
    assert not await alone.first_use("wait-jti-2", expires, now_s, now_s)


async def _guard(rds: Redis) -> TokenGuard:
    """A guard on `rds` with the epoch set, so the database is never asked."""
    await rds.set(EPOCH, datetime.now(UTC).isoformat())
    return TokenGuard(cast(AsyncEngine, None), rds)


async def test_spent_keys_share_a_set_per_signed_second_that_lives_as_long_as_its_longest(
    rds: Redis,
) -> None:
    guard = await _guard(rds)
    now_s = int(datetime.now(UTC).timestamp())
    soon, later = (datetime.now(UTC) + timedelta(seconds=s) for s in (30, 90))
    # Two hundred proofs signed in one second are one key, not two hundred.
    for n in range(200):
        assert await guard.first_use(f"dpop:k:jti-{n}", later, now_s, now_s)
    assert await rds.keys("xyd:jti:*") == [f"xyd:jti:{now_s}".encode()]
    assert await rds.scard(f"xyd:jti:{now_s}") == 200
    # A replay carries the same signed second: refused, however long after.
    assert not await guard.first_use("dpop:k:jti-7", later, now_s, now_s)
    # A shorter-lived key added later never shortens what the set remembers.
    assert await guard.first_use("dpop:k:jti-short", soon, now_s, now_s)
    assert 89_000 <= await rds.pttl(f"xyd:jti:{now_s}") <= 90_000
    # Another signed second is another set.
    assert await guard.first_use("dpop:k:jti-7", later, now_s, now_s + 1)
    assert await rds.exists(f"xyd:jti:{now_s + 1}") == 1


async def test_a_jti_the_release_before_spent_is_refused_during_a_rolling_upgrade(
    rds: Redis,
) -> None:
    guard = await _guard(rds)
    now_s = int(datetime.now(UTC).timestamp())
    expires = datetime.now(UTC) + timedelta(minutes=1)
    # As the release before marked a spent jti: a key of its own.
    await rds.set("xyd:jti:assertion:bank-a:jti-old", "1", px=60_000)
    assert not await guard.first_use("assertion:bank-a:jti-old", expires, now_s, now_s)
    assert await guard.first_use("assertion:bank-a:jti-new", expires, now_s, now_s)
