"""Make the identity parts for an app; tolerate a database that is not up yet.

The denylist is mirrored into Redis by the gate's start (`Gate.start`), after
the gate can restore what else Redis may have lost."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.identity.guard import TokenGuard
from gateway.identity.service import Identity
from gateway.identity.tokens import AccessTokens
from gateway.keys.ring import KeyRingHolder
from gateway.settings import Settings
from policies.rate_redis import ReplicaWait

log = logging.getLogger("xyd.identity")


async def start_identity(settings: Settings, engine: AsyncEngine, redis: Redis | None) -> Identity:
    keys = KeyRingHolder(engine, settings.kek_bytes(), settings.key_refresh_s, settings)
    guard = TokenGuard(engine, redis, replica_wait(settings))
    identity = Identity(settings, engine, keys, guard, AccessTokens(settings, keys, guard))
    try:
        await keys.reload()
    except Exception:  # the gateway starts anyway; /readyz says what is down
        log.warning("identity keys not loaded at start; will retry on use", exc_info=True)
    return identity


def replica_wait(settings: Settings) -> ReplicaWait | None:
    """XYD_REDIS_WAIT_REPLICAS as the guard and the gate use it; within the
    command timeout, so a lagging replica fails the call rather than the socket."""
    if settings.redis_wait_replicas == 0:
        return None
    return ReplicaWait(settings.redis_wait_replicas, max(1, int(settings.redis_timeout_s * 500)))
