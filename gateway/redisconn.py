"""Every Redis client the gateway builds, from `XYD_REDIS_URL`.

Two kinds of URL:

- `redis://`, `rediss://`, `unix://`: one server, as redis-py reads them;
- `redis+sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT,.../MASTER[/DB]`: the
  sentinels' addresses and the name of the master they watch. The client asks
  them for the master before connecting, and again when a connection to it
  fails or it answers READONLY (it was demoted): after a failover the next
  command goes to the promoted replica, with no restart. The password is the
  master's (`requirepass`); the sentinels are asked without one.

A master handed over by `SENTINEL FAILOVER` (or cut off from the sentinels)
keeps accepting writes until the sentinels demote it, seconds later; redis-py
would keep its pooled connections there and the limiter would count on a
server whose data is about to be thrown away. So the pool asks the sentinels
again at most every `MASTER_RECHECK_S` and drops connections to a master they
no longer name (`FollowingPool`).

Both kinds fail fast: explicit timeouts, no retries (a dead Redis would
otherwise stall a request for seconds; callers decide fail-open or closed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger("xyd.redis")

SETTING = "XYD_REDIS_URL"
SENTINEL_SCHEME = "redis+sentinel"
DIRECT_SCHEMES = ("redis", "rediss", "unix")


class RedisUrlError(ValueError):
    """`XYD_REDIS_URL` cannot be read; the message names it and the forms it takes."""


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    password: str | None


@dataclass(frozen=True)
class DirectTarget:
    url: str


RedisTarget = SentinelTarget | DirectTarget

_FORMS = (
    "use redis://HOST:PORT/DB, rediss://…, unix://PATH, or "
    "redis+sentinel://[:PASSWORD@]HOST:PORT,HOST:PORT,HOST:PORT/MASTER_NAME[/DB]"
)


def _refuse(url: str, why: str) -> RedisUrlError:
    shown = url.split("@", 1)[1] if "@" in url else url  # never echo a password
    return RedisUrlError(f"{SETTING}: {why} in {shown!r}; {_FORMS}")


def parse_redis_url(url: str) -> RedisTarget:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in DIRECT_SCHEMES:
        return DirectTarget(url)
    if scheme != SENTINEL_SCHEME:
        raise _refuse(url, f"unknown scheme {scheme or '(none)'!r}")
    # urlsplit cannot read a comma list of ports, so the netloc is split by hand.
    parts = urlsplit(url)
    netloc = parts.netloc
    password: str | None = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        password = unquote(userinfo.split(":", 1)[1]) if ":" in userinfo else None
        password = password or None
    sentinels: list[tuple[str, int]] = []
    for address in netloc.split(","):
        host, sep, port = address.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _refuse(url, f"sentinel address {address!r} is not HOST:PORT")
        sentinels.append((host.strip("[]"), int(port)))
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2:
        raise _refuse(url, "the path must be /MASTER_NAME or /MASTER_NAME/DB")
    if len(path) == 2 and not path[1].isdigit():
        raise _refuse(url, f"database {path[1]!r} is not a number")
    if parts.query or parts.fragment:
        raise _refuse(url, "no query or fragment is read")
    return SentinelTarget(
        tuple(sentinels), unquote(path[0]), int(path[1]) if len(path) == 2 else 0, password
    )


def _policy(timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
        # With maintenance notifications on ("auto", redis-py 8's default) the
        # pool hands out a pooled connection unchecked: after a Redis restart the
        # first request on each failed. Off, a closed one is replaced before use.
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def _sentinel_policy(timeout: float) -> dict[str, Any]:
    # The sentinels' own clients: redis-py gives them only the socket options
    # otherwise, and its default retries with back-off. (retry_on_timeout is
    # deprecated there: a Retry covers timeouts.)
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }


# How stale the pool's idea of the master may get: the window in which a
# demoted-to-be master still takes writes from this process.
MASTER_RECHECK_S = 1.0


class FollowingPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """A sentinel pool that follows a handed-over master within MASTER_RECHECK_S."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._recheck_at = 0.0

    async def aclose(self) -> None:
        # The sentinels' connections too (a sibling sharing them reconnects).
        await super().aclose()
        await self.sentinel_manager.aclose()

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        now = time.monotonic()
        if now >= self._recheck_at:
            self._recheck_at = now + MASTER_RECHECK_S
            # A new address drops the idle connections to the old one (in-use
            # ones are dropped on release). Sentinels that do not answer leave
            # the master we have: the command itself says whether it is there.
            try:
                await self.get_master_address()  # type: ignore[no-untyped-call]
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("sentinels not asked for the master: %s", exc)
        return await super().get_connection(*args, **options)  # type: ignore[no-untyped-call]


def async_redis(
    url: str, *, timeout: float, max_connections: int | None = None
) -> redis.asyncio.Redis:
    target = parse_redis_url(url)
    policy = _policy(timeout)
    if max_connections is not None:
        policy["max_connections"] = max_connections
    if isinstance(target, DirectTarget):
        return redis.asyncio.Redis.from_url(target.url, **policy)
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=_sentinel_policy(timeout)
    )
    client: redis.asyncio.Redis = sentinel.master_for(
        target.master,
        connection_pool_class=FollowingPool,
        db=target.db,
        password=target.password,
        **policy,
    )
    return client


def sync_redis(url: str, *, timeout: float) -> redis.Redis:
    target = parse_redis_url(url)
    policy = _policy(timeout)
    if isinstance(target, DirectTarget):
        return redis.Redis.from_url(target.url, **policy)
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=_sentinel_policy(timeout)
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.master, db=target.db, password=target.password, **policy
    )
    return client


def make_redis(settings: Settings) -> redis.asyncio.Redis | None:
    """The gateway's client (limiter, denylist, cache, stream); None without Redis."""
    if not settings.redis_url:
        return None
    return async_redis(settings.redis_url, timeout=settings.redis_timeout_s)


def make_sync_redis(settings: Settings, *, timeout: float) -> redis.Redis | None:
    """A blocking client for the CLI and start-up checks; None without Redis."""
    if not settings.redis_url:
        return None
    return sync_redis(settings.redis_url, timeout=timeout)


def sibling(
    client: redis.asyncio.Redis, *, timeout: float, max_connections: int
) -> redis.asyncio.Redis:
    """A client to the same server (or the same sentinels' master) as `client`,
    with its own pool and socket timeout: the monitor's blocking reads wait
    longer than a request may."""
    pool = client.connection_pool
    kwargs = {
        k: v
        for k, v in pool.connection_kwargs.items()
        if k not in ("connection_pool", "socket_timeout", "maint_notifications_config")
    }
    if isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool):
        manager: redis.asyncio.sentinel.Sentinel = pool.sentinel_manager
        found: redis.asyncio.Redis = manager.master_for(
            pool.service_name,
            connection_pool_class=FollowingPool,
            socket_timeout=timeout,
            max_connections=max_connections,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            **kwargs,
        )
        return found
    return redis.asyncio.Redis(
        connection_pool=redis.asyncio.ConnectionPool(
            connection_class=pool.connection_class,
            max_connections=max_connections,
            socket_timeout=timeout,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
            **kwargs,
        )
    )
