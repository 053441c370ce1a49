"""The dashboard login's throttle: decided before any password is hashed.

Three GCRA buckets on the gate's limiter backends (Redis, or this process's
memory), charged in this order, each only if the one before admitted:

- `source`: attempts from one client address (an IPv6 address by its /64);
- `account`: attempts at one user name from one source. Keyed by the name as
  typed, so an unknown name is throttled exactly like a real one; and by the
  source, so an outsider's wrong passwords never lock the officer out of
  their own address;
- `overall`: attempts from everywhere, so a flood from many addresses cannot
  take every core for scrypt. A (name, source) that logged in successfully
  within `known_days` skips it: a flood cannot lock an officer out of the
  address they work from either.

A successful login gives back its source and account charges. Keys are keyed
hashes: neither a name nor an address is stored in clear. Redis unreachable:
the gate's breaker and `rate_limit_redis_down` decide, as for every limit.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.access.gate import Gate, RateLimiterUnavailable
from gateway.metrics import DASHBOARD_LOGIN_REFUSALS, RATE_LIMITER_DOWN
from gateway.pii import keyed_hash
from policies.rate import Backend, Charge, MemoryLimiter, RateOutcome, RatePlan, RateRequest

log = logging.getLogger("xyd.dashboard.login")
KNOWN_PREFIX = "xyd:login:known:"
MEMORY_KEYS_MAX = 50_000


@dataclass(frozen=True)
class LoginLimits:
    source: RatePlan
    account: RatePlan
    overall: RatePlan
    known_s: int


def source_of(host: str | None) -> str:
    """The address a login is throttled by: an IPv6 host by its /64, which one
    subscriber usually holds whole; anything unparsable as one source."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginThrottle:
    def __init__(self, limits: LoginLimits, gate: Gate, redis: Redis | None, key: bytes) -> None:
        self.limits = limits
        self.gate = gate
        self.redis = redis
        self.key = key
        self.memory = MemoryLimiter()
        self.known: OrderedDict[str, float] = OrderedDict()

    def _keys(self, name: str, source: str) -> tuple[str, str]:
        return (
            "login-source:" + keyed_hash(self.key, "login-source", source)[:32],
            "login-account:" + keyed_hash(self.key, "login-account", f"{name}\n{source}")[:32],
        )

    async def admit(self, name: str, source: str) -> int:
        """0 to go on and check the password, else the seconds to wait (Retry-After).
        Raises RateLimiterUnavailable when Redis is down and the mode is fail_closed."""
        source_key, account_key = self._keys(name, source)
        steps = [("source", source_key, self.limits.source),
                 ("account", account_key, self.limits.account)]  # fmt: skip
        if not await self._is_known(account_key):
            steps.append(("overall", "login-overall", self.limits.overall))
        charges: list[Charge] = []
        for limit, key, plan in steps:
            outcome = await self._check(RateRequest(client_id=key, plan=plan, cost=1))
            if not outcome.allowed:
                DASHBOARD_LOGIN_REFUSALS.labels(limit).inc()
                # Nobody's password was checked: what earlier buckets took goes back.
                for charge in charges:
                    await self._refund(charge)
                return outcome.retry_after_s
            assert outcome.charge is not None
            charges.append(outcome.charge)
        return 0

    async def admit_source(self, source: str) -> int:
        """`admit` for a login with no name to check (the portal's, which starts at
        the identity provider): only the source's bucket is charged, so one
        address cannot fill the pending-login table. 0 to go on, else Retry-After."""
        source_key, _ = self._keys("", source)
        outcome = await self._check(
            RateRequest(client_id=source_key, plan=self.limits.source, cost=1)
        )
        if not outcome.allowed:
            DASHBOARD_LOGIN_REFUSALS.labels("source").inc()
            return outcome.retry_after_s
        return 0

    async def succeeded(self, name: str, source: str) -> None:
        """A right password: the source's try is given back, the account's tries
        all of them (as a reset would), and the pair is known from now on."""
        source_key, account_key = self._keys(name, source)
        backend: Backend = "redis" if self.gate.redis is not None else "memory"
        for key, plan, cost in (
            (source_key, self.limits.source, 1),
            (account_key, self.limits.account, self.limits.account.burst),
        ):
            request = RateRequest(client_id=key, plan=plan, cost=cost)
            await self._refund(Charge(request, day=-1, backend=backend))
        await self._remember(account_key)

    async def _check(self, request: RateRequest) -> RateOutcome:
        if self.gate.redis is not None and self.gate.breaker.allow():
            try:
                outcome = await self.gate.redis.check(request)
            except (RedisError, OSError, TimeoutError):
                self.gate.breaker.failure()
            else:
                self.gate.breaker.success()
                return outcome
        if self.gate.redis is not None:
            RATE_LIMITER_DOWN.labels(self.gate.when_redis_down).inc()
            if self.gate.when_redis_down == "fail_closed":
                raise RateLimiterUnavailable(
                    "the login throttle is unreachable; try again shortly",
                    headers={"Retry-After": str(max(1, round(self.gate.breaker.retry_after_s())))},
                )
        if len(self.memory.tats) > MEMORY_KEYS_MAX:
            self._prune()
        return self.memory.check_now(request)

    async def _refund(self, charge: Charge) -> None:
        if charge.backend == "memory":
            self.memory.refund_now(charge)
            return
        if self.gate.redis is not None and self.gate.breaker.allow():
            try:
                await self.gate.redis.refund(charge)
            except (RedisError, OSError, TimeoutError):
                self.gate.breaker.failure()

    def _prune(self) -> None:
        # An arrival time in the past is a full bucket, the same as no entry.
        now = int(time.time() * 1_000_000)
        for key in [k for k, tat in self.memory.tats.items() if tat <= now]:
            del self.memory.tats[key]

    async def _is_known(self, account_key: str) -> bool:
        if self.redis is not None:
            try:
                return bool(await self.redis.exists(KNOWN_PREFIX + account_key))
            except (RedisError, OSError, TimeoutError):
                return False
        until = self.known.get(account_key)
        return until is not None and until > time.time()

    async def _remember(self, account_key: str) -> None:
        if self.limits.known_s <= 0:
            return
        if self.redis is not None:
            try:
                await self.redis.set(KNOWN_PREFIX + account_key, b"1", ex=self.limits.known_s)
            except (RedisError, OSError, TimeoutError):
                log.warning("Redis unreachable: a successful login's source is not remembered")
            return
        self.known[account_key] = time.time() + self.limits.known_s
        self.known.move_to_end(account_key)
        while len(self.known) > MEMORY_KEYS_MAX:
            self.known.popitem(last=False)
