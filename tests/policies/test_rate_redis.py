"""The rate policy on a real Redis: the same rules, exact across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import replace

import pytest
import redis
from redis.asyncio import Redis

from policies.rate import SHANGHAI_OFFSET_S, RateOutcome, RatePlan, RateRequest
from policies.rate_redis import RedisLimiter, ReplicaLag, ReplicaWait
from testkit.services import RedisServer

pytestmark = pytest.mark.redis

# One request every 100 s: nothing replenishes while a test runs.
SLOW = RatePlan(rate_per_s=0.01, burst=5, reports_per_day=3)
CODE_A, CODE_B = "91510100MA61R8XX1B", "91510100MA6CGUGA1W"


def report(client: str = "bank-a", **overrides: object) -> RateRequest:
    fields: dict[str, object] = {
        "client_id": client,
        "plan": SLOW.model_copy(update={"burst": 1000, "reports_per_day": 1000}),
        "cost": 1,
        "reports": 1,
        "enterprise_cap": 1000,
        "credit_code": CODE_A,
    }
    fields.update(overrides)
    return RateRequest(**fields)  # type: ignore[arg-type]


async def test_burst_is_admitted_exactly(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    request = RateRequest("bank-a", SLOW, cost=1)
    results = [await limiter.check(request) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert results[-1].refused == "rate"
    assert 99 <= results[-1].retry_after_s <= 101
    assert results[4].limits[0].remaining == 0
    # The arrival time is stored as exact integer microseconds, not 1.7e+15.
    stored = await rds.get("xyd:rl:gcra:bank-a")
    assert stored is not None
    assert stored.isdigit()


async def test_daily_quota_and_its_expiry_at_chengdu_midnight(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    request = report(plan=SLOW.model_copy(update={"burst": 100}))
    assert [(await limiter.check(request)).allowed for _ in range(4)] == [True] * 3 + [False]
    refused = await limiter.check(request)
    assert refused.refused == "daily"
    seconds, _ = await rds.time()
    to_midnight = 86_400 - (seconds + SHANGHAI_OFFSET_S) % 86_400
    assert abs(refused.retry_after_s - to_midnight) <= 1
    ttl = await rds.ttl("xyd:rl:day:client:bank-a")
    assert 0 < ttl <= to_midnight


async def test_enterprise_cap_and_consent_cap(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    assert (await limiter.check(report("bank-a", enterprise_cap=2))).allowed
    assert (await limiter.check(report("bank-b", enterprise_cap=2))).allowed
    assert (await limiter.check(report("bank-c", enterprise_cap=2))).refused == "enterprise"
    assert (await limiter.check(report("bank-c", enterprise_cap=2, credit_code=CODE_B))).allowed
    capped = report("bank-d", credit_code=CODE_B, consent_id="cns_1", consent_daily=1)
    assert (await limiter.check(capped)).allowed
    assert (await limiter.check(capped)).refused == "consent"


async def test_a_refusal_charges_nothing(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    assert (await limiter.check(report("bank-a", enterprise_cap=1))).allowed
    tat = await rds.get("xyd:rl:gcra:bank-b")
    for _ in range(3):
        assert (await limiter.check(report("bank-b", enterprise_cap=1))).refused == "enterprise"
    assert await rds.get("xyd:rl:gcra:bank-b") == tat is None
    assert await rds.get("xyd:rl:day:client:bank-b") is None
    assert await rds.get(f"xyd:rl:day:ent:{CODE_A}") == b"1"


async def test_denylist_rides_the_same_call(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    guarded = RateRequest(
        "bank-a", SLOW, cost=1, deny_keys=("deny:token", "deny:client"), sentinel="epoch"
    )
    stale = await limiter.check(guarded)
    assert stale.stale_denylist
    assert not stale.allowed
    await rds.set("epoch", "1")
    assert (await limiter.check(guarded)).allowed
    await rds.set("deny:client", "1")
    denied = await limiter.check(guarded)
    assert denied.denylisted
    assert not denied.allowed
    # Neither refusal charged the rate: four more of the burst of five remain.
    results = [await limiter.check(RateRequest("bank-a", SLOW, cost=1)) for _ in range(5)]
    assert [r.allowed for r in results] == [True] * 4 + [False]


async def test_a_single_use_key_rides_the_same_call_and_a_replay_spends_nothing(
    rds: Redis,
) -> None:
    limiter = RedisLimiter(rds)
    spent = "xyd:jti:1700000000"
    once = RateRequest(
        "bank-a", SLOW, cost=1, once_set=spent, once_key="dpop:k:jti-1", once_ms=60_000
    )
    first = await limiter.check(once)
    assert first.allowed
    assert not first.replayed
    assert await rds.smembers(spent) == {b"dpop:k:jti-1"}
    assert 59_000 <= await rds.pttl(spent) <= 60_000
    replay = await limiter.check(once)
    assert replay.replayed
    assert not replay.allowed
    # Another key is another proof; the replay charged nothing: 3 of 5 remain.
    other = await limiter.check(
        RateRequest("bank-a", SLOW, cost=1, once_set=spent, once_key="dpop:k:jti-2", once_ms=30_000)
    )
    assert other.allowed
    # One set for both, remembered as long as its longest-lived key.
    assert await rds.scard(spent) == 2
    assert await rds.pttl(spent) > 30_000
    results = [await limiter.check(RateRequest("bank-a", SLOW, cost=1)) for _ in range(4)]
    assert [r.allowed for r in results] == [True] * 3 + [False]


async def test_a_proof_the_release_before_spent_is_a_replay_and_spends_nothing(
    rds: Redis,
) -> None:
    limiter = RedisLimiter(rds)
    await rds.set("xyd:jti:dpop:k:jti-old", "1", px=60_000)
    old = RateRequest(
        "bank-a", SLOW, cost=1, once_set="xyd:jti:1700000001", once_key="dpop:k:jti-old",
        once_ms=60_000, once_legacy="xyd:jti:dpop:k:jti-old",
    )  # fmt: skip
    assert (await limiter.check(old)).replayed
    assert await rds.exists("xyd:jti:1700000001") == 0
    results = [await limiter.check(RateRequest("bank-a", SLOW, cost=1)) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]


async def test_a_denylisted_token_does_not_spend_its_proof(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    await rds.set("epoch", "1")
    await rds.set("deny:token", "1")
    denied = RateRequest(
        "bank-a", SLOW, cost=1, deny_keys=("deny:token",), sentinel="epoch",
        once_set="xyd:jti:1700000000", once_key="dpop:k:jti-3", once_ms=60_000,
    )  # fmt: skip
    assert (await limiter.check(denied)).denylisted
    assert await rds.exists("xyd:jti:1700000000") == 0


async def test_flushed_scripts_are_loaded_again_and_no_call_runs_twice(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    request = RateRequest("bank-a", SLOW, cost=1)
    assert (await limiter.check(request)).allowed
    await rds.script_flush()
    results = await limiter.check_many([request] * 5)
    assert all(isinstance(r, RateOutcome) for r in results)
    # A burst of five: one spent before the flush, four now, and exactly four.
    assert [r.allowed for r in results if isinstance(r, RateOutcome)] == [True] * 4 + [False]


async def test_a_script_error_is_its_own_request_alone(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    await rds.set("xyd:rl:gcra:bank-bad", "not a number")  # the script's tonumber() fails
    results = await limiter.check_many(
        [RateRequest("bank-a", SLOW, cost=1), RateRequest("bank-bad", SLOW, cost=1)]
    )
    assert isinstance(results[0], RateOutcome)
    assert results[0].allowed
    assert isinstance(results[1], Exception)
    # The connection went back to the pool in step: the next call reads its own reply.
    assert (await limiter.check(RateRequest("bank-a", SLOW, cost=1))).allowed


async def test_a_changed_consent_refuses_a_grant_from_a_copy_charging_nothing(
    rds: Redis,
) -> None:
    limiter = RedisLimiter(rds)
    copied = report(consent_id="cns_1", consent_daily=1, consent_mark="xyd:consent:changed:cns_1")
    assert (await limiter.check(copied)).allowed
    await rds.set("xyd:consent:changed:cns_1", "1")
    changed = await limiter.check(copied)
    assert changed.consent_changed
    assert not changed.allowed
    # Decided afresh (no mark asked for): the consent's one report a day was spent
    # by the first call only.
    fresh = await limiter.check(report(consent_id="cns_1", consent_daily=1))
    assert fresh.refused == "consent"


# --- giving back what a failed request took -----------------------------------


async def test_a_refund_gives_back_the_rate_and_every_count_it_took(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    capped = report(consent_id="cns_1", consent_daily=2, enterprise_cap=2)
    first = await limiter.check(capped)
    assert first.charge is not None
    assert (await limiter.check(capped)).allowed
    await limiter.refund(first.charge)
    again = await limiter.check(capped)
    assert {r.name: r.remaining for r in again.limits} == {
        "rate": 998,  # a burst of 1000, two taken
        "daily": 998,
        "enterprise": 0,
        "consent": 0,
    }
    assert (await limiter.check(capped)).refused == "enterprise"
    # The counts keep their expiry at midnight.
    assert 0 < await rds.ttl("xyd:rl:day:consent:cns_1") <= 86_400


async def test_a_refund_moves_the_rate_back_by_its_cost_alone(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    taken = await limiter.check(RateRequest("bank-a", SLOW, cost=2))
    assert taken.charge is not None
    assert (await limiter.check(RateRequest("bank-a", SLOW, cost=3))).allowed
    assert not (await limiter.check(RateRequest("bank-a", SLOW, cost=1))).allowed
    await limiter.refund(taken.charge)
    assert (await limiter.check(RateRequest("bank-a", SLOW, cost=2))).allowed
    assert not (await limiter.check(RateRequest("bank-a", SLOW, cost=1))).allowed


async def test_a_refund_of_the_only_charge_leaves_no_arrival_time(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    taken = await limiter.check(RateRequest("bank-a", SLOW, cost=1))
    assert taken.charge is not None
    await limiter.refund(taken.charge)
    assert await rds.exists("xyd:rl:gcra:bank-a") == 0  # a full burst again


async def test_no_count_goes_below_zero_and_yesterdays_are_not_refunded(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    taken = await limiter.check(report())
    assert taken.charge is not None
    yesterday = replace(taken.charge, day=taken.charge.day - 1)
    await limiter.refund(yesterday)
    assert await rds.get("xyd:rl:day:client:bank-a") == b"1"
    await limiter.refund(taken.charge)
    await limiter.refund(taken.charge)
    assert await rds.get("xyd:rl:day:client:bank-a") == b"0"
    assert await rds.get(f"xyd:rl:day:ent:{CODE_A}") == b"0"


async def test_a_refused_check_has_nothing_to_give_back(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    assert (await limiter.check(report(enterprise_cap=1))).charge is not None
    refused = await limiter.check(report("bank-b", enterprise_cap=1))
    assert refused.refused == "enterprise"
    assert refused.charge is None


# --- several processes on one limit ------------------------------------------

RATE, BURST, SECONDS, PROCESSES, TASKS = 100.0, 50, 3.0, 4, 16


def _hammer(url: str, counts: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> tuple[int, float, float]:
        client = Redis.from_url(url, max_connections=TASKS)
        limiter = RedisLimiter(client)
        plan = RatePlan(rate_per_s=RATE, burst=BURST, reports_per_day=0)
        request = RateRequest("bank-hammer", plan, cost=1)
        deadline = time.monotonic() + SECONDS

        async def worker() -> int:
            admitted = 0
            while time.monotonic() < deadline:
                admitted += (await limiter.check(request)).allowed
            return admitted

        try:
            first = await client.time()
            admitted = sum(await asyncio.gather(*(worker() for _ in range(TASKS))))
            last = await client.time()
            return admitted, first[0] + first[1] / 1e6, last[0] + last[1] / 1e6
        finally:
            await client.aclose()

    counts.put(asyncio.run(run()))


def test_four_processes_never_exceed_the_plan(redis_srv: RedisServer) -> None:
    redis.Redis.from_url(redis_srv.url).flushall()
    context = multiprocessing.get_context("spawn")
    counts = context.Queue()
    workers = [
        context.Process(target=_hammer, args=(redis_srv.url, counts)) for _ in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    results = [counts.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=30)
        assert process.exitcode == 0
    admitted = sum(count for count, _, _ in results)
    # Redis's clock, from before any process's first call to after the last.
    window = max(end for _, _, end in results) - min(start for _, start, _ in results)
    bound = BURST + int(RATE * window)
    print(f"admitted {admitted} of at most {bound} ({window:.2f} s, {PROCESSES} processes)")
    assert admitted <= bound, f"admitted {admitted} > bound {bound}"
    # And the limit is not simply refusing everything: it admits about the plan.
    assert admitted >= BURST + RATE * SECONDS * 0.8, f"admitted only {admitted} of {bound}"


async def test_a_write_no_replica_acknowledged_fails_the_call(rds: Redis) -> None:
    """XYD_REDIS_WAIT_REPLICAS: this Redis has no replica, so WAIT 1 times out
    and the call raises (the gate then fails closed) instead of admitting on
    counts a failover could lose."""
    limiter = RedisLimiter(rds, ReplicaWait(replicas=1, timeout_ms=20))
    with pytest.raises(ReplicaLag, match="0 of 1 Redis replicas"):
        await limiter.check(RateRequest("bank-wait", SLOW, cost=1))
    assert (await RedisLimiter(rds, ReplicaWait(0, 20)).check(report("bank-wait2"))).allowed
