"""The rate policy in Redis: one EVALSHA per request, exact across processes.

The script reads the clock with Redis `TIME` (never a gateway process's
clock, which may drift between hosts), checks every limit that applies, and
commits all of them or none. Redis runs a script atomically, so any number
of gateway processes see one consistent count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from policies.rate import (
    NOT_APPLIED,
    SHANGHAI_OFFSET_S,
    RateOutcome,
    RateRequest,
    outcome,
)

# KEYS: 1 the client's GCRA theoretical arrival time (µs); 2 the client's
#       reports today; 3 the enterprise's reports today; 4 the consent's
#       reports today; 5 the denylist sentinel; 6 a single-use key (a DPoP
#       proof's jti); 7.. denylist keys.
# ARGV: 1 emission interval µs; 2 burst tolerance µs; 3 cost; 4 reports;
#       5-7 daily, enterprise and consent limits (-1: not applied);
#       8 UTC offset of the calendar day, s; 9 "1" to require the sentinel;
#       10 how long the single-use key lives, ms ("0": no such key).
# Returns {code, retry µs, backlog µs, used daily, used enterprise,
#          used consent, seconds to midnight}; code 0 allowed, 1-4 refused
#          by that limit, 5 denylisted, 6 sentinel missing, 7 single-use key
#          already used (a replay: no rate is spent).
GATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[9] == '1' and redis.call('EXISTS', KEYS[5]) == 0 then
  return {6, 0, 0, 0, 0, 0, 0}
end
for i = 7, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {5, 0, 0, 0, 0, 0, 0} end
end
if ARGV[10] ~= '0' and not redis.call('SET', KEYS[6], '1', 'NX', 'PX', ARGV[10]) then
  return {7, 0, 0, 0, 0, 0, 0}
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local reports = tonumber(ARGV[4])
local offset = tonumber(ARGV[8])
local local_s = tonumber(t[1]) + offset
local day_end = (math.floor(local_s / 86400) + 1) * 86400 - offset
local to_midnight = day_end - tonumber(t[1])

local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + cost * interval

local used = {0, 0, 0}
for i = 1, 3 do
  if tonumber(ARGV[4 + i]) >= 0 then
    used[i] = tonumber(redis.call('GET', KEYS[1 + i]) or 0)
  end
end

local code, retry = 0, 0
if new_tat - tolerance > now then
  code, retry = 1, new_tat - tolerance - now
else
  for i = 1, 3 do
    local limit = tonumber(ARGV[4 + i])
    if limit >= 0 and used[i] + reports > limit then
      code, retry = 1 + i, to_midnight * 1000000
      break
    end
  end
end

if code ~= 0 then
  return {code, string.format('%d', retry), string.format('%d', tat - now),
          used[1], used[2], used[3], to_midnight}
end
-- Numbers this large lose digits in Lua's default formatting: use %d.
redis.call('SET', KEYS[1], string.format('%d', new_tat),
           'PX', string.format('%d', math.ceil((new_tat - now) / 1000) + 1))
for i = 1, 3 do
  if tonumber(ARGV[4 + i]) >= 0 then
    used[i] = redis.call('INCRBY', KEYS[1 + i], reports)
    redis.call('EXPIREAT', KEYS[1 + i], day_end)
  end
end
return {0, 0, string.format('%d', new_tat - now), used[1], used[2], used[3], to_midnight}
"""

PREFIX = "xyd:rl:"
UNUSED = PREFIX + "unused"
DENIED, STALE, REPLAYED = 5, 6, 7


def _keys_and_args(request: RateRequest) -> tuple[list[str], list[int | str]]:
    daily, enterprise, consent = request.limits()
    keys = [
        f"{PREFIX}gcra:{request.client_id}",
        f"{PREFIX}day:client:{request.client_id}" if daily != NOT_APPLIED else UNUSED,
        f"{PREFIX}day:ent:{request.credit_code}" if enterprise != NOT_APPLIED else UNUSED,
        f"{PREFIX}day:consent:{request.consent_id}" if consent != NOT_APPLIED else UNUSED,
        request.sentinel or UNUSED,
        request.once_key or UNUSED,
        *request.deny_keys,
    ]
    plan = request.plan
    args: list[int | str] = [
        plan.interval_us,
        plan.burst * plan.interval_us,
        request.cost,
        request.reports,
        daily,
        enterprise,
        consent,
        SHANGHAI_OFFSET_S,
        "1" if request.sentinel else "0",
        request.once_ms if request.once_key else 0,
    ]
    return keys, args


class RedisLimiter:
    """The gate script; `check_many` runs it for several requests in one pipelined
    round trip. Each request's script still runs atomically on its own in Redis,
    so limits stay exact; only the round trip and its overhead are shared."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.script = redis.register_script(GATE_SCRIPT)

    async def check(self, request: RateRequest) -> RateOutcome:
        [result] = await self.check_many([request])
        if isinstance(result, BaseException):
            raise result
        return result

    async def check_many(self, requests: Sequence[RateRequest]) -> list[RateOutcome | Exception]:
        """One outcome per request, in order; a script error is that request's alone.
        A connection failure raises for all of them."""
        if len(requests) == 1:
            keys, args = _keys_and_args(requests[0])
            raws: list[Any] = [await self.script(keys=keys, args=args)]
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for request in requests:
                    keys, args = _keys_and_args(request)
                    await self.script(keys=keys, args=args, client=pipe)
                raws = list(await pipe.execute(raise_on_error=False))
        return [
            raw if isinstance(raw, Exception) else _outcome(request, raw)
            for request, raw in zip(requests, raws, strict=True)
        ]


def _outcome(request: RateRequest, raw: Sequence[Any]) -> RateOutcome:
    code = int(raw[0])
    if code == DENIED:
        return RateOutcome(allowed=False, denylisted=True)
    if code == STALE:
        return RateOutcome(allowed=False, stale_denylist=True)
    if code == REPLAYED:
        return RateOutcome(allowed=False, replayed=True)
    return outcome(
        request,
        code=code,
        retry_us=int(raw[1]),
        backlog_us=int(raw[2]),
        used=(int(raw[3]), int(raw[4]), int(raw[5])),
        to_midnight_s=int(raw[6]),
    )
