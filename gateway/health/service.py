"""Readiness: is each dependency reachable, within a bounded time?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


async def check_database(engine: AsyncEngine, timeout_s: float) -> Check:
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return Check("database", False, _reason(exc))
    return Check("database", True, "ok")


async def check_redis(redis: Redis, timeout_s: float) -> Check:
    try:
        async with asyncio.timeout(timeout_s):
            await redis.ping()
    except Exception as exc:
        return Check("redis", False, _reason(exc))
    return Check("redis", True, "ok")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    # The class name says what failed without leaking addresses or credentials.
    return f"unreachable ({type(exc).__name__})"
