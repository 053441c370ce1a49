"""The coalescer that lets concurrent requests share a round trip, and the two
places it matters most: the pipelined rate-limit script and the group-committed
audit trail (both still exact, both still one result per request)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.chain import AuditEvent, checkpoint_keys, verify
from gateway.audit.service import AuditWriter
from gateway.batching import Coalescer
from gateway.keys.store import KeyRing, ensure_key, load_ring
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head
from policies.rate import RatePlan, RateRequest
from policies.rate_redis import RedisLimiter


class Recorder:
    def __init__(self, fail_on: int | None = None, broken: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_on, self.broken = fail_on, broken

    async def work(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await asyncio.sleep(0.01)  # a round trip: others arrive meanwhile
        if self.broken:
            raise ConnectionError("down")
        return [ValueError(f"bad {i}") if i == self.fail_on else i * 10 for i in items]


async def test_an_idle_coalescer_runs_each_item_alone() -> None:
    recorder = Recorder()
    batches = Coalescer(recorder.work)
    assert [await batches.submit(i) for i in range(3)] == [0, 10, 20]
    assert recorder.batches == [[0], [1], [2]]


async def test_items_arriving_during_a_batch_share_the_next() -> None:
    recorder = Recorder()
    batches = Coalescer(recorder.work, max_batch=4)
    results = await asyncio.gather(*(batches.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_one_items_error_is_its_own_and_a_failed_batch_fails_all() -> None:
    batches = Coalescer(Recorder(fail_on=2).work)
    results = await asyncio.gather(*(batches.submit(i) for i in range(4)),
                                   return_exceptions=True)  # fmt: skip
    assert results[:2] == [0, 10]
    assert isinstance(results[2], ValueError)
    assert results[3] == 30
    broken = Coalescer(Recorder(broken=True).work)
    failed = await asyncio.gather(*(broken.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed)
    # The coalescer recovers: the next item gets a batch of its own.
    assert await Coalescer(Recorder().work).submit(5) == 50


async def test_a_submitter_that_goes_away_does_not_disturb_the_others() -> None:
    recorder = Recorder()
    batches = Coalescer(recorder.work)
    first = asyncio.create_task(batches.submit(1))
    second = asyncio.create_task(batches.submit(2))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 20
    assert recorder.batches == [[1, 2]]


# --- the rate-limit script, pipelined ------------------------------------------------


async def test_a_pipelined_burst_admits_exactly_the_burst(rds: Redis) -> None:
    limiter = RedisLimiter(rds)
    plan = RatePlan(rate_per_s=0.01, burst=7, reports_per_day=0)
    results = await limiter.check_many([RateRequest("bank-a", plan, cost=1)] * 20)
    assert [r.allowed for r in results if not isinstance(r, Exception)] == [True] * 7 + [False] * 13


async def test_one_broken_key_fails_only_its_own_request(rds: Redis) -> None:
    await rds.hset("xyd:rl:gcra:bank-b", "not", "a string")
    limiter = RedisLimiter(rds)
    plan = RatePlan(rate_per_s=10, burst=10, reports_per_day=0)
    results = await limiter.check_many(
        [RateRequest(c, plan, cost=1) for c in ("bank-a", "bank-b", "bank-c")]
    )
    assert not isinstance(results[0], Exception) and results[0].allowed
    assert isinstance(results[1], Exception)
    assert not isinstance(results[2], Exception) and results[2].allowed


# --- the audit trail, group-committed -------------------------------------------------


class Keys:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def current(self) -> KeyRing:
        return self.ring


def audit_writer(engine: Engine, settings: Settings) -> AuditWriter:
    with engine.begin() as conn:
        ensure_key(conn, settings.kek_bytes(), "audit", "ES256")
        ring = load_ring(conn, settings.kek_bytes())
    return AuditWriter(engine, Keys(ring))  # type: ignore[arg-type]


async def test_concurrent_entries_commit_in_batches_as_one_unbroken_chain(
    engine: Engine, settings: Settings
) -> None:
    writer = audit_writer(engine, settings)
    committed: list[int] = []
    original = writer._batches.work

    async def write(events: list[AuditEvent]) -> Sequence[int | BaseException]:
        committed.append(len(events))
        return await original(events)

    writer._batches.work = write
    seqs = await asyncio.gather(*(
        writer.append(AuditEvent(client_id="bank-a", route="GET /x", decision="allow",
                                 reason=f"r{i}", request_id=f"q{i}"))
        for i in range(250)
    ))  # fmt: skip
    assert sorted(seqs) == list(range(1, 251))
    assert max(committed) > 1  # they did share transactions
    assert sum(committed) == 250
    with engine.connect() as conn:
        count, breaks = verify(conn, checkpoint_keys(conn))
        rows = conn.execute(select(audit_entries.c.request_id, audit_entries.c.seq)).all()
        checkpoints = conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar()
    assert (count, breaks) == (250, [])
    # Each caller got the number of its own entry, and a checkpoint fell every 100.
    by_request = {request_id: seq for request_id, seq in rows}
    assert all(by_request[f"q{i}"] == seqs[i] for i in range(250))
    assert checkpoints == 2


async def test_a_batch_the_store_refuses_leaves_no_entry_and_raises_a_store_error(
    engine: Engine, settings: Settings
) -> None:
    writer = audit_writer(engine, settings)
    first = AuditEvent(client_id="bank-a", route="GET /x", decision="allow", request_id="ok")
    assert await writer.append(first) == 1
    # A row already at seq 2 makes the next batch's insert fail, on either store.
    with engine.begin() as conn:
        conn.execute(
            audit_entries.insert().values(
                seq=2, at="x", client_id="intruder", route="GET /x", decision="allow",
                prev_hash="0" * 64, entry_hash="0" * 64,
            )
        )  # fmt: skip
    with pytest.raises(SQLAlchemyError):
        await writer.append(AuditEvent(client_id="bank-a", route="GET /x", decision="allow"))
    with engine.connect() as conn:
        head = conn.execute(select(audit_head.c.seq)).scalar_one()
        clients = conn.execute(select(audit_entries.c.client_id).order_by("seq")).scalars().all()
    # Rolled back whole: the head did not move and nothing of the batch was kept.
    assert head == 1
    assert clients == ["bank-a", "intruder"]
    # The writer still works once the obstacle is gone.
    with engine.begin() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 2))
    assert (
        await writer.append(AuditEvent(client_id="bank-a", route="GET /x", decision="allow")) == 2
    )
