"""A dashboard login attempt: throttled first, then one scrypt in a thread, then
a fresh session. Unknown, disabled and real accounts take the same path (the
same buckets, one scrypt each), so the answer tells nobody which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.gate import Gate
from gateway.dashboard import accounts, passwords
from gateway.dashboard.throttle import LoginLimits, LoginThrottle
from gateway.settings import Settings
from policies.rate import RatePlan


@dataclass(frozen=True)
class Attempt:
    """`token`: the new session's cookie; None with `retry_after_s` 0 is a wrong
    name or password, with `retry_after_s` > 0 a refusal before any check."""

    token: str | None
    retry_after_s: int = 0


class Login:
    def __init__(self, engine: AsyncEngine, throttle: LoginThrottle, hasher: passwords.Hasher):
        self.engine = engine
        self.throttle = throttle
        self.hasher = hasher

    async def attempt(
        self, name: str, password: str, source: str, old_token: str | None, now: datetime
    ) -> Attempt:
        name, password = name[: accounts.MAX_NAME_CHARS + 1], password[: passwords.MAX_CHARS + 1]
        wait = await self.throttle.admit(name, source)
        if wait:
            return Attempt(None, wait)
        async with self.engine.connect() as conn:
            stored = await conn.run_sync(accounts.password_hash, name)
        if not await self.hasher.matches(stored, password):
            return Attempt(None)
        await self.throttle.succeeded(name, source)
        async with self.engine.begin() as conn:
            # A fresh session on every login: a planted cookie is never promoted.
            if old_token:
                await conn.run_sync(accounts.destroy_session, old_token)
            token, _ = await conn.run_sync(accounts.create_session, name, now)
        return Attempt(token)


def make_login(settings: Settings, engine: AsyncEngine, gate: Gate, redis: Redis | None,
               key: bytes) -> Login:  # fmt: skip
    account = settings.login_account_tries / settings.login_account_window_s
    limits = LoginLimits(
        source=RatePlan(rate_per_s=settings.login_source_per_min / 60,
                        burst=settings.login_source_burst, reports_per_day=0),
        account=RatePlan(rate_per_s=account, burst=settings.login_account_tries,
                         reports_per_day=0),
        overall=RatePlan(rate_per_s=settings.login_overall_per_s,
                         burst=settings.login_overall_burst, reports_per_day=0),
        known_s=settings.login_known_days * 86_400,
    )  # fmt: skip
    throttle = LoginThrottle(limits, gate, redis, key)
    return Login(engine, throttle, passwords.Hasher(settings.login_hash_threads))
