"""The gate every protected request passes: token denylist, a DPoP proof's
single use, and rate limits.

With Redis, all ride one `EVALSHA` (policies/rate_redis.py); without it the
denylist is the embedded in-memory copy and the limits are counted in this
process. When Redis cannot be reached the circuit breaker opens and the
configured mode applies: `fail_closed` refuses with 503, `local_fallback`
counts each process's share of every limit locally. Either way the denylist
is then read from the database, and a metric and a log line say so.

A request the gateway then fails on (a 5xx) is not charged: `refund` gives
back what `admit` took, on whichever backend took it. That is a second round
trip to Redis on the failure alone; an answered request makes one.
"""

from __future__ import annotations

import logging
import time
from typing import Literal, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.access.marks import mark_key
from gateway.audit.today import admitted_reports
from gateway.batching import Coalescer
from gateway.breaker import CircuitBreaker
from gateway.errors import DependencyUnavailable, RateLimited
from gateway.identity.dpop import Proof, replayed
from gateway.identity.errors import InvalidToken
from gateway.identity.guard import (
    EPOCH,
    REPLAY_FLOOR,
    TokenGuard,
    disabled_key,
    legacy_spent,
    revoked_key,
    spent_set,
    ttl_ms,
)
from gateway.identity.tokens import Caller
from gateway.metrics import RATE_LIMITER_DOWN, RATE_REFUSALS
from policies.rate import (
    Charge,
    MemoryLimiter,
    RateConfig,
    RateOutcome,
    RateRequest,
    bank_key,
    day_bounds,
    headers,
)
from policies.rate_redis import RedisLimiter, ReplicaWait

log = logging.getLogger("xyd.gate")
RedisDownMode = Literal["fail_closed", "local_fallback"]


class RateLimiterUnavailable(DependencyUnavailable):
    type_slug, title = "rate-limiter-unavailable", "The rate limiter is unavailable"


class Tokenless(Protocol):
    """A client charged without an access token: authenticated by its own request."""

    @property
    def client_id(self) -> str:
        """The registered client's id: whose plan is charged."""

    @property
    def org_code(self) -> str | None:
        """Its bank's code: the per-bank shares are keyed by it."""


def _deny_keys(caller: Caller | Tokenless) -> tuple[str, ...]:
    if isinstance(caller, Caller):
        return (revoked_key(caller.jti), disabled_key(caller.client_id))
    return (disabled_key(caller.client_id),)


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
        wait: ReplicaWait | None = None,
    ) -> None:
        self.config = config
        self.guard = guard
        self.redis = RedisLimiter(redis, wait) if redis is not None else None
        # Requests in flight together share one pipelined round trip to Redis.
        self._redis_calls: Coalescer[RateRequest, RateOutcome] | None = (
            Coalescer(self.redis.check_many) if self.redis is not None else None
        )
        self.memory = MemoryLimiter()
        self.when_redis_down = when_redis_down
        self.breaker = breaker
        # The local fallback counts this process's share of every limit.
        self.local_config = config.shared(workers)
        if self.redis is not None:
            guard.on_loss.append(self._restore_counts)

    async def start(self) -> None:
        """Before the first request: today's counts, if they were lost while no
        gateway ran (an embedded gateway's are always: they live in its memory)."""
        try:
            if self.redis is None:
                counts, day = await self._counted_today()
                self.memory.restore_now(counts, day)
            else:
                await self.guard.start()
        except Exception:  # the gateway starts anyway; /readyz says what is down
            log.warning("daily counts and denylist not restored at start", exc_info=True)

    async def _restore_counts(self) -> None:
        assert self.redis is not None
        counts, day = await self._counted_today()
        await self.redis.restore(counts, day)
        log.warning("daily counts rebuilt from the audit trail: %d counts", len(counts))

    async def _counted_today(self) -> tuple[dict[str, int], int]:
        day, _ = day_bounds(time.time())
        reports = {key: route.reports for key, route in self.config.routes.items() if route.reports}
        async with self.guard.engine.connect() as conn:
            counts = await conn.run_sync(admitted_reports, day, reports)
        return counts, day

    def _request(
        self,
        config: RateConfig,
        caller: Caller | Tokenless,
        route: str,
        credit_code: str | None,
        consent_id: str | None,
        consent_daily: int | None,
        proof: Proof | None = None,
        cached_consent: str | None = None,
        *,
        in_redis: bool = False,
    ) -> RateRequest:
        cost = config.route(route)
        once_set, once_key, once_ms, once_issued_s = None, None, 0, 0
        if in_redis and proof is not None:
            once_set, once_key = spent_set(proof.issued_s), proof.once
            once_ms, once_issued_s = ttl_ms(proof.expires), proof.issued_s
        return RateRequest(
            client_id=caller.client_id,
            plan=config.plan_for(caller.client_id),
            cost=cost.cost,
            reports=cost.reports,
            enterprise_cap=config.enterprise_reports_per_day,
            credit_code=credit_code,
            consent_id=consent_id,
            consent_daily=consent_daily,
            bank=bank_key(caller.client_id, caller.org_code),
            bank_share=config.bank_share,
            deny_keys=_deny_keys(caller) if in_redis else (),
            sentinel=EPOCH if in_redis else None,
            once_set=once_set,
            once_key=once_key,
            once_legacy=legacy_spent(once_key) if once_key else None,
            once_ms=once_ms,
            once_floor=REPLAY_FLOOR if once_key else None,
            once_issued_s=once_issued_s,
            consent_mark=mark_key(cached_consent) if in_redis and cached_consent else None,
        )

    async def admit(
        self,
        caller: Caller,
        route: str,
        *,
        credit_code: str | None = None,
        consent_id: str | None = None,
        consent_daily: int | None = None,
        proof: Proof | None = None,
        cached_consent: str | None = None,
    ) -> RateOutcome:
        """The outcome to put in headers; raises InvalidToken (a revoked token or a
        replayed DPoP proof), RateLimited or 503. A proof's jti is spent here.

        `cached_consent`: the id of a consent the caller decided from a cached
        copy of. If it changed since (or, without Redis, if that cannot be
        known) the outcome says `consent_changed` and nothing was charged."""
        args = (caller, route, credit_code, consent_id, consent_daily, proof, cached_consent)
        result = None
        if self.redis is not None:
            result = await self._admit_with_redis(self._request(self.config, *args, in_redis=True))
        if result is None:
            if cached_consent is not None:
                # Change marks live in Redis alone: without it a copy cannot be
                # checked. Nothing is charged; the fresh read's call is admitted.
                return RateOutcome(allowed=False, consent_changed=True)
            if self.redis is None:
                if await self.guard.denied(caller.jti, caller.client_id):
                    raise InvalidToken("token revoked or client disabled")
                await self._spend_in_store(proof)
                result = self.memory.check_now(self._request(self.config, *args))
            else:
                local = self._request(self.local_config, *args)
                result = await self._redis_down(caller, proof, local)
        if result.consent_changed:
            return result
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

    async def admit_client(self, client: Tokenless, route: str) -> RateOutcome:
        """A request of an authenticated client that carries no access token (a
        pushed authorisation request): its plan charged the route's cost in the
        same one Redis trip, the client's disabled mark read beside it. Raises
        RateLimited or 503 as `admit` does."""
        result = None
        if self.redis is not None:
            result = await self._admit_with_redis(
                self._request(self.config, client, route, None, None, None, in_redis=True)
            )
        if result is None:
            if self.redis is not None:
                RATE_LIMITER_DOWN.labels(self.when_redis_down).inc()
                if self.when_redis_down == "fail_closed":
                    raise RateLimiterUnavailable(
                        "the rate limiter is unreachable",
                        headers={"Retry-After": str(max(1, round(self.breaker.retry_after_s())))},
                    )
            config = self.config if self.redis is None else self.local_config
            result = self.memory.check_now(self._request(config, client, route, None, None, None))
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

    async def refund(self, charge: Charge) -> None:
        """Give back what `admit` took for a request that then failed. Best effort:
        a Redis that cannot be reached keeps the charge, and a log line says so."""
        if charge.backend == "memory":
            self.memory.refund_now(charge)
            return
        if self.redis is None or not self.breaker.allow():
            log.warning("Redis unreachable: a failed request's rate charge is kept")
            return
        try:
            await self.redis.refund(charge)
        except (RedisError, OSError, TimeoutError):
            self.breaker.failure()
            log.warning("Redis unreachable: a failed request's rate charge is kept")

    async def _spend_in_store(self, proof: Proof | None) -> None:
        if proof is not None and not await self.guard.first_use(
            proof.once, proof.expires, proof.issued_s, signed_s=proof.issued_s
        ):
            raise replayed()

    async def _admit_with_redis(self, request: RateRequest) -> RateOutcome | None:
        """The outcome, or None when Redis cannot answer."""
        if self.redis is None or not self.breaker.allow():
            return None
        try:
            assert self._redis_calls is not None
            result = await self._redis_calls.submit(request)
            if result.stale_denylist:
                # Redis lost its data: restore what it held before believing it.
                await self.guard.recover()
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
        if result.replayed:
            raise replayed()
        return result

    async def _redis_down(
        self, caller: Caller, proof: Proof | None, request: RateRequest
    ) -> RateOutcome:
        RATE_LIMITER_DOWN.labels(self.when_redis_down).inc()
        if await self.guard.denied_in_store(caller.jti, caller.client_id):
            raise InvalidToken("token revoked or client disabled")
        if proof is not None:
            # Single use is kept in Redis alone: a proof cannot be spent without it.
            raise DependencyUnavailable("replay protection is unavailable")
        if self.when_redis_down == "fail_closed":
            raise RateLimiterUnavailable(
                "the rate limiter is unreachable; nothing was disclosed",
                headers={"Retry-After": str(max(1, round(self.breaker.retry_after_s())))},
            )
        return self.memory.check_now(request)
