"""The rate policy in Redis: one EVALSHA per request, exact across processes.

The script reads the clock with Redis `TIME` (never a gateway process's
clock, which may drift between hosts), checks every limit that applies, and
commits all of them or none. Redis runs a script atomically, so any number
of gateway processes see one consistent count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from policies.rate import (
    NOT_APPLIED,
    SHANGHAI_OFFSET_S,
    Charge,
    Limits,
    RateOutcome,
    RateRequest,
    count_keys,
    outcome,
)

# KEYS: 1 the client's GCRA theoretical arrival time (µs); 2-5 the reports
#       today of the client, the enterprise, the consent and the (bank,
#       enterprise); 6 the denylist sentinel; 7 the set of spent single-use
#       keys (a DPoP proof's jti) for the key's signed second; 8 a consent's
#       change mark; 9 the replay floor; 10 the single-use key as the release
#       before kept it (a key of its own: a replay of a proof it spent is
#       refused during a rolling upgrade; the next release drops this);
#       11.. denylist keys.
# ARGV: 1 emission interval µs; 2 burst tolerance µs; 3 cost; 4 reports;
#       5-8 daily, enterprise, consent and bank share limits (-1: not applied);
#       9 UTC offset of the calendar day, s; 10 "1" to require the sentinel;
#       11 how long the single-use key is remembered, ms ("0": no such key);
#       12 "1" to refuse, charging nothing, if the change mark exists;
#       13 the second the single-use key was issued (refused under the floor);
#       14 the single-use key.
# Returns {code, retry µs, backlog µs, used daily, used enterprise,
#          used consent, used bank share, seconds to midnight, the day's
#          number}; code 0 allowed, 1-5 refused by that limit, 6 denylisted,
#          7 sentinel missing, 8 single-use key already used or issued before
#          the replay floor (a replay: no rate is spent), 9 the consent changed
#          (the caller's copy of it may be stale: nothing is spent).
GATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[10] == '1' and redis.call('EXISTS', KEYS[6]) == 0 then
  return {7, 0, 0, 0, 0, 0, 0, 0}
end
for i = 11, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {6, 0, 0, 0, 0, 0, 0, 0} end
end
if ARGV[12] == '1' and redis.call('EXISTS', KEYS[8]) == 1 then
  return {9, 0, 0, 0, 0, 0, 0, 0}
end
if ARGV[11] ~= '0' then
  local floor = redis.call('GET', KEYS[9])
  if floor and tonumber(ARGV[13]) < tonumber(floor) then return {8, 0, 0, 0, 0, 0, 0, 0} end
  if redis.call('EXISTS', KEYS[10]) == 1 then return {8, 0, 0, 0, 0, 0, 0, 0} end
  if redis.call('SADD', KEYS[7], ARGV[14]) == 0 then return {8, 0, 0, 0, 0, 0, 0, 0} end
  if redis.call('PTTL', KEYS[7]) < tonumber(ARGV[11]) then
    redis.call('PEXPIRE', KEYS[7], ARGV[11])
  end
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local reports = tonumber(ARGV[4])
local offset = tonumber(ARGV[9])
local local_s = tonumber(t[1]) + offset
local day = math.floor(local_s / 86400)
local day_end = (day + 1) * 86400 - offset
local to_midnight = day_end - tonumber(t[1])

local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local new_tat = tat + cost * interval

local used = {0, 0, 0, 0}
for i = 1, 4 do
  if tonumber(ARGV[4 + i]) >= 0 then
    used[i] = tonumber(redis.call('GET', KEYS[1 + i]) or 0)
  end
end

local code, retry = 0, 0
if new_tat - tolerance > now then
  code, retry = 1, new_tat - tolerance - now
else
  for i = 1, 4 do
    local limit = tonumber(ARGV[4 + i])
    if limit >= 0 and used[i] + reports > limit then
      code, retry = 1 + i, to_midnight * 1000000
      break
    end
  end
end

if code ~= 0 then
  return {code, string.format('%d', retry), string.format('%d', tat - now),
          used[1], used[2], used[3], used[4], to_midnight, day}
end
-- Numbers this large lose digits in Lua's default formatting: use %d.
redis.call('SET', KEYS[1], string.format('%d', new_tat),
           'PX', string.format('%d', math.ceil((new_tat - now) / 1000) + 1))
for i = 1, 4 do
  if tonumber(ARGV[4 + i]) >= 0 then
    used[i] = redis.call('INCRBY', KEYS[1 + i], reports)
    redis.call('EXPIREAT', KEYS[1 + i], day_end)
  end
end
return {0, 0, string.format('%d', new_tat - now), used[1], used[2], used[3], used[4],
        to_midnight, day}
"""

# What an allowed gate script took, given back (a request the gateway failed
# on). Only ever a second round trip on that failure.
# KEYS: 1 the client's GCRA arrival time (µs); 2.. the report counts charged.
# ARGV: 1 µs to move the arrival time back (cost x interval); 2 reports;
#       3 the day they were counted on; 4 UTC offset of the calendar day, s.
REFUND_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = redis.call('GET', KEYS[1])
if tat then
  local back = tonumber(tat) - tonumber(ARGV[1])
  if back > now then
    redis.call('SET', KEYS[1], string.format('%d', back),
               'PX', string.format('%d', math.ceil((back - now) / 1000) + 1))
  else
    -- An arrival time at or before now means a full burst either way.
    redis.call('DEL', KEYS[1])
  end
end
if math.floor((tonumber(t[1]) + tonumber(ARGV[4])) / 86400) ~= tonumber(ARGV[3]) then
  return 0  -- the counts it was taken from are done with
end
local reports = tonumber(ARGV[2])
for i = 2, #KEYS do
  local back = math.min(reports, tonumber(redis.call('GET', KEYS[i]) or 0))
  if back > 0 then redis.call('DECRBY', KEYS[i], back) end
end
return 1
"""

# Today's counts raised to at least what was counted elsewhere (the audit
# trail, after Redis lost its data); concurrent requests' counts are kept.
# KEYS: the counts. ARGV: 1 the day they were counted on; 2 UTC offset of the
# calendar day, s; 3.. one count per key.
RESTORE_SCRIPT = """
local t = redis.call('TIME')
local offset = tonumber(ARGV[2])
local day = math.floor((tonumber(t[1]) + offset) / 86400)
if day ~= tonumber(ARGV[1]) then return 0 end
local day_end = (day + 1) * 86400 - offset
for i = 1, #KEYS do
  local count = tonumber(ARGV[2 + i])
  if count > tonumber(redis.call('GET', KEYS[i]) or 0) then
    redis.call('SET', KEYS[i], count)
    redis.call('EXPIREAT', KEYS[i], day_end)
  end
end
return 1
"""

PREFIX = "xyd:rl:"
UNUSED = PREFIX + "unused"
DENIED, STALE, REPLAYED, CONSENT_CHANGED = 6, 7, 8, 9


def _count_keys(request: RateRequest, limits: Limits) -> list[str]:
    """The daily counts' keys, UNUSED where a limit does not apply."""
    names = count_keys(request.client_id, request.credit_code, request.consent_id, request.bank)
    return [
        f"{PREFIX}day:{name}" if limit != NOT_APPLIED else UNUSED
        for name, limit in zip(names, limits, strict=True)
    ]


def _keys_and_args(request: RateRequest) -> tuple[list[str], list[int | str]]:
    limits = request.limits()
    daily, enterprise, consent, share = limits
    keys = [
        f"{PREFIX}gcra:{request.client_id}",
        *_count_keys(request, limits),
        request.sentinel or UNUSED,
        request.once_set or UNUSED,
        request.consent_mark or UNUSED,
        request.once_floor or UNUSED,
        request.once_legacy or UNUSED,
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
        share,
        SHANGHAI_OFFSET_S,
        "1" if request.sentinel else "0",
        request.once_ms if request.once_key else 0,
        "1" if request.consent_mark else "0",
        request.once_issued_s,
        request.once_key or "",
    ]
    return keys, args


@dataclass(frozen=True)
class ReplicaWait:
    """`WAIT replicas timeout_ms` after writes that must outlive a failover.

    Redis replicates asynchronously: a count or a spent jti the master took but
    no replica received yet is gone once Sentinel promotes a replica, and a
    client would be admitted over its plan or a replayed jti accepted. Waiting
    for one replica's acknowledgement keeps it: the replication stream is one
    sequence, and Sentinel promotes the replica that has read furthest in it."""

    replicas: int
    timeout_ms: int

    def command(self) -> bytes:
        parts = [b"WAIT", b"%d" % self.replicas, b"%d" % self.timeout_ms]
        return b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)

    def check(self, acknowledged: object) -> None:
        """Raises when fewer replicas than asked acknowledged: what was written is
        not known to survive a failover, so the caller fails closed."""
        if not isinstance(acknowledged, int) or acknowledged < self.replicas:
            raise ReplicaLag(
                f"{acknowledged} of {self.replicas} Redis replicas acknowledged in "
                f"{self.timeout_ms} ms (XYD_REDIS_WAIT_REPLICAS)"
            )


class ReplicaLag(RedisError):
    """Too few replicas acknowledged a write in time."""


class RedisLimiter:
    """The gate script; `check_many` runs it for several requests in one pipelined
    round trip. Each request's script still runs atomically on its own in Redis,
    so limits stay exact; only the round trip and its overhead are shared.

    The commands are written in RESP here rather than by redis-py's pipeline,
    whose packing of a dozen arguments per call cost more per request than the
    rest of the gate (profiled); the replies are read by its parser."""

    def __init__(self, redis: Redis, wait: ReplicaWait | None = None) -> None:
        self.redis = redis
        self.wait = wait
        self.sha = redis.register_script(GATE_SCRIPT).sha.encode()
        self._refund = redis.register_script(REFUND_SCRIPT)
        self._restore = redis.register_script(RESTORE_SCRIPT)

    async def restore(self, counts: dict[str, int], day: int) -> None:
        """Raise today's counts to at least `counts` (by `count_keys` name), counted
        on `day`: what was admitted before Redis lost its data."""
        names = list(counts)
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            await self._restore(
                keys=[f"{PREFIX}day:{name}" for name in chunk],
                args=[day, SHANGHAI_OFFSET_S, *(counts[name] for name in chunk)],
            )

    async def refund(self, charge: Charge) -> None:
        request = charge.request
        counted = [key for key in _count_keys(request, request.limits()) if key != UNUSED]
        await self._refund(
            keys=[f"{PREFIX}gcra:{request.client_id}", *counted],
            args=[
                request.cost * request.plan.interval_us,
                request.reports,
                charge.day,
                SHANGHAI_OFFSET_S,
            ],
        )

    async def check(self, request: RateRequest) -> RateOutcome:
        [result] = await self.check_many([request])
        if isinstance(result, BaseException):
            raise result
        return result

    async def check_many(self, requests: Sequence[RateRequest]) -> list[RateOutcome | Exception]:
        """One outcome per request, in order; a script error is that request's alone.
        A connection failure raises for all of them."""
        raws = await self._run([_evalsha(self.sha, request) for request in requests])
        missing = [n for n, raw in enumerate(raws) if isinstance(raw, NoScriptError)]
        if missing:
            # Redis restarted or flushed its scripts: those calls ran nothing.
            await self.redis.script_load(GATE_SCRIPT)
            again = await self._run([_evalsha(self.sha, requests[n]) for n in missing])
            for n, raw in zip(missing, again, strict=True):
                raws[n] = raw
        return [
            raw if isinstance(raw, Exception) else _outcome(request, raw)
            for request, raw in zip(requests, raws, strict=True)
        ]

    async def _run(self, commands: list[bytes]) -> list[Any]:
        pool = self.redis.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        wait = [self.wait.command()] if self.wait is not None else []
        try:
            await conn.send_packed_command(b"".join(commands + wait), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            if self.wait is not None:
                self.wait.check(await conn.read_response())
            return replies
        except BaseException:
            # Replies may be left unread: this connection cannot serve anyone else.
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)


def _evalsha(sha: bytes, request: RateRequest) -> bytes:
    keys, args = _keys_and_args(request)
    parts = [b"EVALSHA", sha, b"%d" % len(keys), *(k.encode() for k in keys)]
    parts += [a.encode() if isinstance(a, str) else b"%d" % a for a in args]
    return b"*%d\r\n%s" % (len(parts), b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))


def _outcome(request: RateRequest, raw: Sequence[Any]) -> RateOutcome:
    code = int(raw[0])
    if code == DENIED:
        return RateOutcome(allowed=False, denylisted=True)
    if code == STALE:
        return RateOutcome(allowed=False, stale_denylist=True)
    if code == REPLAYED:
        return RateOutcome(allowed=False, replayed=True)
    if code == CONSENT_CHANGED:
        return RateOutcome(allowed=False, consent_changed=True)
    return outcome(
        request,
        code=code,
        retry_us=int(raw[1]),
        backlog_us=int(raw[2]),
        used=(int(raw[3]), int(raw[4]), int(raw[5]), int(raw[6])),
        to_midnight_s=int(raw[7]),
        day=int(raw[8]),
        backend="redis",
    )
