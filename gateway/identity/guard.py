"""Single-use identifiers and the token denylist, in Redis when configured.

- `first_use(key, expires_at, issued_s, signed_s)`: atomic add-if-absent.
  Assertion and DPoP `jti`s go here: a second use is a replay. In Redis the
  keys are members of one set per second of a time the token itself signs
  (`spent_set`), the set living as long as its longest-lived member; without
  Redis, an INSERT on a primary key.
- `denied(jti, client_id)`: is this token revoked or its client disabled? The
  database is the record; Redis holds a mirror so the check is one round trip.

Redis losing its data (a restart without persistence, a flush, a failover to
an empty replica) shows as a missing `epoch` key, the sentinel every check
requires. Nothing is believed until `recover()` has run: it raises the
replay floor (a key issued before the second the loss was seen may have been
spent in the lost data, so it is refused as a replay; the floor outlives any
proof's or assertion's acceptable age), runs the `on_loss` restores (the
gate's daily counts, rebuilt from the audit trail), then reloads the denylist
from the database and sets the epoch again, last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.batching import Coalescer
from gateway.errors import DependencyUnavailable
from gateway.identity import repository
from gateway.identity.repository import SqliteDenylist
from policies.rate_redis import ReplicaWait

log = logging.getLogger("xyd.identity")

EPOCH = "xyd:denylist:epoch"
# Single-use keys issued before this second (Redis's clock) are refused.
REPLAY_FLOOR = "xyd:jti:floor"
# Long past every proof's and assertion's acceptable age (at most minutes):
# by then what was issued before the floor is refused by its own age.
FLOOR_TTL_S = 3600

# KEYS: 1 the sentinel; 2 the replay floor; 3 the set of spent keys (`spent_set`);
# 4 the key as the release before marked it spent (`legacy_spent`).
# ARGV: 1 how long the key must be remembered, ms; 2 the second the key was
# issued; 3 the single-use key.
# Returns 1 first use, 0 a replay (used, or issued before the floor), -1 the
# sentinel is missing (Redis lost its data: recover, then ask again).
FIRST_USE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local floor = redis.call('GET', KEYS[2])
if floor and tonumber(ARGV[2]) < tonumber(floor) then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('SADD', KEYS[3], ARGV[3]) == 0 then return 0 end
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
return 1
"""

# The floor raised to the current second, never lowered. ARGV: 1 its TTL, s.
RAISE_FLOOR_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
local floor = tonumber(redis.call('GET', KEYS[1]) or 0)
if now > floor then floor = now end
redis.call('SET', KEYS[1], floor, 'EX', ARGV[1])
return floor
"""


def revoked_key(jti: str) -> str:
    return f"xyd:revoked:{jti}"


def disabled_key(client_id: str) -> str:
    return f"xyd:disabled:{client_id}"


async def mirror_denylist(
    redis: Redis, disabled: list[str], revoked: list[tuple[str, datetime]]
) -> None:
    now = datetime.now(UTC)
    async with redis.pipeline(transaction=True) as pipe:
        for client_id in disabled:
            pipe.set(disabled_key(client_id), "1")
        for jti, expires_at in revoked:
            pipe.set(
                revoked_key(jti), "1", px=max(1, int((expires_at - now).total_seconds() * 1000))
            )
        pipe.set(EPOCH, now.isoformat())
        await pipe.execute()


def spent_set(signed_s: int) -> str:
    """The Redis set holding the single-use keys spent whose token signs `signed_s`
    (a DPoP proof's `iat`, an assertion's `exp`); the gate's script adds to it too.

    One set a second, not one key a jti: Redis expires keys by sampling, and the
    tens of thousands a busy minute of DPoP proofs left expiring together held
    it in its expiry cycle for up to 25 ms at a time (its latency monitor),
    stalling every request in flight (docs/performance.md). A replay carries
    the same signed second, so it meets its first use in the same set."""
    return f"xyd:jti:{signed_s}"


def legacy_spent(key: str) -> str:
    """The key the release before marked a spent `key` with (`SET NX PX`): checked
    too, so that during a rolling upgrade a jti spent on a host still running
    it is refused here. Drop it in the release after: by then every such key
    has expired (they lived minutes)."""
    return f"xyd:jti:{key}"


def ttl_ms(expires_at: datetime) -> int:
    return max(1, int((expires_at - datetime.now(UTC)).total_seconds() * 1000))


class TokenGuard:
    def __init__(
        self, engine: AsyncEngine, redis: Redis | None, wait: ReplicaWait | None = None
    ) -> None:
        self.engine = engine
        self.redis = redis
        # A spent jti lost in a failover could be spent again: see ReplicaWait.
        self.wait = wait
        self.local: SqliteDenylist | None = (
            repository.local_denylist(engine) if redis is None else None
        )
        # Every DPoP proof and client assertion is checked here: concurrent
        # requests share one pipelined round trip.
        self._first_uses: Coalescer[tuple[str, str, int, int], int] = Coalescer(self._set_once)
        # What else Redis held that must be rebuilt before it is believed again.
        self.on_loss: list[Callable[[], Awaitable[None]]] = []
        self._recovering = asyncio.Lock()
        if redis is not None:
            self._first_use_sha = redis.register_script(FIRST_USE_SCRIPT).sha
            self._raise_floor = redis.register_script(RAISE_FLOOR_SCRIPT)

    async def _set_once(self, keys: list[tuple[str, str, int, int]]) -> list[int]:
        assert self.redis is not None
        results = await self._eval_once(keys)
        if any(isinstance(result, NoScriptError) for result in results):
            # Redis restarted or flushed its scripts: load it and ask again.
            await self.redis.script_load(FIRST_USE_SCRIPT)
            results = await self._eval_once(keys)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [int(result) for result in results]

    async def _eval_once(self, keys: list[tuple[str, str, int, int]]) -> list[Any]:
        assert self.redis is not None
        async with self.redis.pipeline(transaction=False) as pipe:
            for spent, key, ttl_ms, issued_s in keys:
                pipe.evalsha(
                    self._first_use_sha, 4, EPOCH, REPLAY_FLOOR, spent, legacy_spent(key),
                    ttl_ms, issued_s, key,
                )  # fmt: skip
            if self.wait is not None:
                pipe.wait(self.wait.replicas, self.wait.timeout_ms)
            results = list(await pipe.execute(raise_on_error=False))
        if self.wait is not None:
            self.wait.check(results.pop())
        return results

    def close(self) -> None:
        if self.local is not None:
            self.local.close()

    async def first_use(self, key: str, expires_at: datetime, issued_s: int, signed_s: int) -> bool:
        """True the first time `key` is spent; False for a replay, or for a key
        issued (`issued_s`, the earliest second it could have been accepted)
        before the replay floor. `signed_s`: a second the token itself signs,
        so that its replay carries the same (`spent_set`)."""
        if self.redis is not None:
            once = (spent_set(signed_s), key, ttl_ms(expires_at), issued_s)
            try:
                first = await self._first_uses.submit(once)
                if first < 0:
                    await self.recover()
                    first = await self._first_uses.submit(once)
            except RedisError as exc:
                # Fail closed: accepting without the check would allow replays.
                raise DependencyUnavailable("replay protection is unavailable") from exc
            if first < 0:
                raise DependencyUnavailable("replay protection is unavailable")
            return first == 1
        async with self.engine.begin() as conn:
            return await conn.run_sync(repository.insert_once, key, expires_at)

    async def denied(self, jti: str, client_id: str) -> bool:
        if self.redis is not None:
            try:
                epoch, revoked, disabled = await self.redis.mget(
                    EPOCH, revoked_key(jti), disabled_key(client_id)
                )
                if epoch is not None:
                    return revoked is not None or disabled is not None
                await self.recover()
            except RedisError:
                log.warning("denylist mirror unavailable; asking the database")
        return await self.denied_in_store(jti, client_id)

    async def denied_in_store(self, jti: str, client_id: str) -> bool:
        """The record itself (or its embedded in-memory copy), without Redis."""
        if self.local is not None:
            return self.local.denied(jti, client_id)
        async with self.engine.connect() as conn:
            return await conn.run_sync(repository.denied, jti, client_id)

    async def reload(self) -> None:
        """Copy the database's denylist into Redis and set the epoch."""
        if self.redis is None:
            return
        async with self.engine.connect() as conn:
            disabled, revoked = await conn.run_sync(repository.denylist)
        await mirror_denylist(self.redis, disabled, revoked)

    async def start(self) -> None:
        """At start-up: the denylist reloaded; everything `recover` restores first
        if Redis lost its data while no gateway was running to see it."""
        if self.redis is None:
            return
        if await self.redis.exists(EPOCH):
            await self.reload()
        else:
            await self.recover()

    async def recover(self) -> None:
        """Redis lost its data (no epoch): raise the replay floor, run `on_loss`,
        reload the denylist; the epoch is set last, so until this has finished
        every check that requires it refuses. Concurrent callers wait for one run.

        The epoch is also dropped on purpose when a denylist write to Redis
        fails; recovering then costs a rebuild of today's counts (raised only,
        never lowered) and a refusal of keys issued in an earlier second."""
        assert self.redis is not None
        async with self._recovering:
            if await self.redis.exists(EPOCH):
                return  # another request recovered while this one waited
            floor = await self._raise_floor(keys=[REPLAY_FLOOR], args=[FLOOR_TTL_S])
            log.warning("Redis is new or lost its data: keys issued before %s are refused", floor)
            for restore in self.on_loss:
                await restore()
            await self.reload()

    async def revoke(self, jti: str, client_id: str, expires_at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(repository.revoke, jti, client_id, expires_at)
        if self.redis is not None:
            ttl_ms = max(1, int((expires_at - datetime.now(UTC)).total_seconds() * 1000))
            try:
                await self.redis.set(revoked_key(jti), "1", px=ttl_ms)
            except RedisError:
                # The database has it; drop the mirror's epoch so it is rebuilt.
                log.warning("could not mirror a revocation; the mirror will be reloaded")
                await self._forget_epoch()

    async def _forget_epoch(self) -> None:
        if self.redis is not None:
            try:
                await self.redis.delete(EPOCH)
            except RedisError:
                log.error("Redis unreachable; denylist checks fall back to the database")
