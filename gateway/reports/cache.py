"""Built reports, cached by everything that could change them.

The key holds the enterprise's `data_version` (bumped by any new record,
version, repair or list change), the report day (publication periods end at
midnight) and a digest of the rule files and score model; so a cached report
is never served after its data or rules changed, and nothing is ever
invalidated by hand. Each process keeps a small LRU in front; with Redis the
processes share what any of them built. Redis trouble only costs a rebuild.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.metrics import REPORT_CACHE, Children

log = logging.getLogger("xyd.reports")
_LOOKUPS = Children(REPORT_CACHE)
REDIS_TTL_S = 26 * 3600  # a key can only be hit on its own report day


class ReportCache:
    def __init__(self, redis: Redis | None, *, local_entries: int = 2048) -> None:
        self.redis = redis
        self.local: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.local_entries = local_entries

    async def get(self, key: str) -> dict[str, Any] | None:
        found = self.local.get(key)
        if found is not None:
            self.local.move_to_end(key)
            _LOOKUPS("local").inc()
            return found
        if self.redis is not None:
            try:
                raw = await self.redis.get(f"xyd:report:{key}")
            except (RedisError, OSError, TimeoutError):
                log.warning("report cache unreachable; building afresh")
                raw = None
            if raw is not None:
                report: dict[str, Any] = orjson.loads(raw)
                self._keep(key, report)
                _LOOKUPS("redis").inc()
                return report
        _LOOKUPS("miss").inc()
        return None

    async def put(self, key: str, report: dict[str, Any]) -> None:
        self._keep(key, report)
        if self.redis is not None:
            try:
                await self.redis.set(f"xyd:report:{key}", orjson.dumps(report), ex=REDIS_TTL_S)
            except (RedisError, OSError, TimeoutError):
                log.warning("report cache unreachable; kept in this process only")

    def _keep(self, key: str, report: dict[str, Any]) -> None:
        self.local[key] = report
        self.local.move_to_end(key)
        while len(self.local) > self.local_entries:
            self.local.popitem(last=False)
