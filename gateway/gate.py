"""The gate every protected request passes: token denylist and rate limits.

With Redis, both ride one `EVALSHA` (policies/rate_redis.py); without it the
denylist is the embedded in-memory copy and the limits are counted in this
process. When Redis cannot be reached the circuit breaker opens and the
configured mode applies: `fail_closed` refuses with 503, `local_fallback`
counts each process's share of every limit locally. Either way the denylist
is then read from the database, and a metric and a log line say so.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.batching import Coalescer
from gateway.breaker import CircuitBreaker
from gateway.errors import DependencyUnavailable, RateLimited
from gateway.identity.errors import InvalidToken
from gateway.identity.guard import EPOCH, TokenGuard, disabled_key, revoked_key
from gateway.identity.tokens import Caller
from gateway.metrics import RATE_LIMITER_DOWN, RATE_REFUSALS
from policies.rate import MemoryLimiter, RateConfig, RateOutcome, RateRequest, headers
from policies.rate_redis import RedisLimiter

log = logging.getLogger("xyd.gate")
RedisDownMode = Literal["fail_closed", "local_fallback"]


class RateLimiterUnavailable(DependencyUnavailable):
    type_slug, title = "rate-limiter-unavailable", "The rate limiter is unavailable"


class Gate:
    def __init__(
        self,
        config: RateConfig,
        guard: TokenGuard,
        redis: Redis | None,
        *,
        when_redis_down: RedisDownMode,
        workers: int,
        breaker: CircuitBreaker,
    ) -> None:
        self.config = config
        self.guard = guard
        self.redis = RedisLimiter(redis) if redis is not None else None
        # Requests in flight together share one pipelined round trip to Redis.
        self._redis_calls: Coalescer[RateRequest, RateOutcome] | None = (
            Coalescer(self.redis.check_many) if self.redis is not None else None
        )
        self.memory = MemoryLimiter()
        self.when_redis_down = when_redis_down
        self.breaker = breaker
        # The local fallback counts this process's share of every limit.
        self.local_config = config.shared(workers)

    def _request(
        self,
        config: RateConfig,
        caller: Caller,
        route: str,
        credit_code: str | None,
        consent_id: str | None,
        consent_daily: int | None,
    ) -> RateRequest:
        cost = config.route(route)
        return RateRequest(
            client_id=caller.client_id,
            plan=config.plan_for(caller.client_id),
            cost=cost.cost,
            reports=cost.reports,
            enterprise_cap=config.enterprise_reports_per_day,
            credit_code=credit_code,
            consent_id=consent_id,
            consent_daily=consent_daily,
        )

    async def admit(
        self,
        caller: Caller,
        route: str,
        *,
        credit_code: str | None = None,
        consent_id: str | None = None,
        consent_daily: int | None = None,
    ) -> RateOutcome:
        """The outcome to put in headers; raises InvalidToken, RateLimited or 503."""
        args = (caller, route, credit_code, consent_id, consent_daily)
        if self.redis is None:
            if await self.guard.denied(caller.jti, caller.client_id):
                raise InvalidToken("token revoked or client disabled")
            result = self.memory.check_now(self._request(self.config, *args))
        else:
            answered = await self._admit_with_redis(caller, self._request(self.config, *args))
            if answered is None:
                answered = await self._redis_down(caller, self._request(self.local_config, *args))
            result = answered
        if not result.allowed:
            limit = result.refused or "rate"
            RATE_REFUSALS.labels(limit).inc()
            raise RateLimited(
                f"the {limit} limit is reached; retry after {result.retry_after_s} s",
                retry_after_s=result.retry_after_s,
                extra_headers=headers(result),
                limit=limit,
            )
        return result

    async def _admit_with_redis(self, caller: Caller, request: RateRequest) -> RateOutcome | None:
        """The outcome, or None when Redis cannot answer."""
        if self.redis is None or not self.breaker.allow():
            return None
        request = replace(
            request,
            deny_keys=(revoked_key(caller.jti), disabled_key(caller.client_id)),
            sentinel=EPOCH,
        )
        try:
            assert self._redis_calls is not None
            result = await self._redis_calls.submit(request)
            if result.stale_denylist:
                # Redis lost its data: rebuild the denylist before believing it.
                await self.guard.reload()
                result = await self.redis.check(request)
        except (RedisError, OSError, TimeoutError):
            self.breaker.failure()
            log.warning("Redis unreachable for the rate limit (%s)", self.when_redis_down)
            return None
        if result.stale_denylist:
            self.breaker.failure()
            return None
        self.breaker.success()
        if result.denylisted:
            raise InvalidToken("token revoked or client disabled")
        return result

    async def _redis_down(self, caller: Caller, request: RateRequest) -> RateOutcome:
        RATE_LIMITER_DOWN.labels(self.when_redis_down).inc()
        if await self.guard.denied_in_store(caller.jti, caller.client_id):
            raise InvalidToken("token revoked or client disabled")
        if self.when_redis_down == "fail_closed":
            raise RateLimiterUnavailable(
                "the rate limiter is unreachable; nothing was disclosed",
                headers={"Retry-After": str(max(1, round(self.breaker.retry_after_s())))},
            )
        return self.memory.check_now(request)
