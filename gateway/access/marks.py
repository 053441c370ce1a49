"""Change marks: how a revocation reaches every worker's consent cache at once.

Report requests decide from a consent each worker keeps for a second
(`reports.service`), and let the gate's Redis script check that consent's
mark in the same round trip. A revocation sets the mark *before* it commits,
so once it is answered no worker decides from the old copy: the script
refuses such a request, charging nothing, and the worker reads the consent
afresh. A mark outlives every cached copy (those live a second), so it only
needs to last a while; a Redis that loses it loses nothing a second of
caching could not cover.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("xyd.consents")
MARK_TTL_S = 300
MAX_ID_CHARS = 64


def mark_key(consent_id: str) -> str:
    return f"xyd:consent:changed:{consent_id}"


async def mark_changed(redis: Redis | None, consent_id: str) -> None:
    """Mark before committing the change. Without Redis no worker trusts a
    cached copy anyway (the gate cannot check it), so a failure only logs."""
    if redis is None or len(consent_id) > MAX_ID_CHARS:
        return
    try:
        await redis.set(mark_key(consent_id), "1", ex=MARK_TTL_S)
    except (RedisError, OSError, TimeoutError):
        log.warning("consent change mark not set; cached copies expire within a second")
