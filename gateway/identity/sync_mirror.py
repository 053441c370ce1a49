"""The CLI's side of the denylist mirror: tell Redis at once about a (re)enabled client."""

from __future__ import annotations

import contextlib
import logging

from redis.exceptions import RedisError

from gateway.identity.guard import EPOCH, disabled_key
from gateway.redisconn import make_sync_redis
from gateway.settings import Settings

log = logging.getLogger("xyd.identity")


def mirror_client_state(settings: Settings, client_id: str, *, disabled: bool) -> None:
    redis = make_sync_redis(settings, timeout=2)
    if redis is None:
        return  # gateways read the database directly
    try:
        if disabled:
            redis.set(disabled_key(client_id), "1")
        else:
            redis.delete(disabled_key(client_id))
    except RedisError:
        # The database already says it. Drop the epoch where we can so the
        # gateways reload; if Redis is unreachable they ask the database anyway.
        log.warning("could not update the Redis denylist mirror")
        with contextlib.suppress(RedisError):
            redis.delete(EPOCH)
    finally:
        redis.close()
