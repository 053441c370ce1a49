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
        await waiting.first_use("wait-jti-1", expires, now_s)
    alone = TokenGuard(engine, rds)
    assert await alone.first_use("wait-jti-2", expires, now_s)
    assert not await alone.first_use("wait-jti-2", expires, now_s)
