"""The monitor's event bus: one Protocol, Redis Streams in production, a queue embedded.

Redis: one stream, one consumer group; several `xyd monitor` workers share
it. A worker acknowledges an event only after its effects are committed; a
worker that dies leaves its events pending, and another claims them with
XAUTOCLAIM once they have been idle long enough. Delivery is therefore at
least once, and the monitor makes each event's effect happen once (it
records applied event ids in the same transaction as the alerts).

An event that failed is delivered again after `claim_idle_ms`, in both
modes, each delivery counted (`Delivery.deliveries`): the monitor
dead-letters one that keeps failing instead of retrying it forever.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.redisconn import sibling
from policies.risk.base import MonitorEvent

STREAM = "xyd:monitor:events"
GROUP = "monitor"
EPOCH_KEY = "xyd:monitor:epoch"
MAX_LEN = 1_000_000  # approximate trim: far more than a day of events
MAX_BLOCK_MS = 2_000  # the longest a read waits for new events


@dataclass(frozen=True, slots=True)
class Delivery:
    token: str  # the stream entry id (Redis) or a sequence number (memory)
    event: MonitorEvent
    deliveries: int = 1  # how many times the event was delivered, this time included


def encode(event: MonitorEvent) -> bytes:
    return orjson.dumps(
        {
            "id": event.id,
            "kind": event.kind,
            "occurred_at": event.occurred_at.isoformat(),
            "credit_code": event.credit_code,
            "attrs": dict(event.attrs),
        },
        default=str,
    )


def decode(raw: bytes | str) -> MonitorEvent:
    data: dict[str, Any] = orjson.loads(raw)
    return MonitorEvent(
        id=str(data["id"]),
        kind=data["kind"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        credit_code=data.get("credit_code"),
        attrs=data.get("attrs") or {},
    )


class EventBus(Protocol):
    async def publish(self, events: Sequence[MonitorEvent]) -> None: ...

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]: ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    async def retry(self, deliveries: Sequence[Delivery]) -> None:
        """Events read but not applied: delivered again, counted, after the claim delay."""
        ...

    async def epoch(self) -> str | None:
        """Names the bus's current contents: it changes when they were lost (Redis
        restarted empty). None: the bus lives and dies with this process."""
        ...

    async def drained(self) -> bool:
        """Every event published so far has been applied and acknowledged."""
        ...


class MemoryBus:
    """Embedded mode: one process publishes and consumes; nothing survives a restart,
    which the relay makes up for by republishing from the database watermark."""

    def __init__(self, *, claim_idle_ms: int = 30_000) -> None:
        self.queue: deque[Delivery] = deque()
        self.ready = asyncio.Event()
        self.serial = 0
        self.in_flight = 0
        self.retry_after_s = claim_idle_ms / 1000
        self.waiting: deque[tuple[float, Delivery]] = deque()  # (due, delivery), due order

    async def publish(self, events: Sequence[MonitorEvent]) -> None:
        for event in events:
            self.serial += 1
            self.queue.append(Delivery(str(self.serial), event))
        self.ready.set()

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        self._due()
        if not self.queue:
            self.ready.clear()
            wait_s = block_ms / 1000
            if self.waiting:
                wait_s = max(0.0, min(wait_s, self.waiting[0][0] - time.monotonic()))
            try:
                await asyncio.wait_for(self.ready.wait(), wait_s)
            except TimeoutError:
                self._due()
                if not self.queue:
                    return []
        batch: list[Delivery] = []
        while self.queue and len(batch) < count:
            batch.append(self.queue.popleft())
        self.in_flight += len(batch)
        return batch

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.in_flight -= len(deliveries)

    async def retry(self, deliveries: Sequence[Delivery]) -> None:
        due = time.monotonic() + self.retry_after_s
        for d in deliveries:
            self.waiting.append((due, Delivery(d.token, d.event, d.deliveries + 1)))
        self.in_flight -= len(deliveries)

    def _due(self) -> None:
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            self.queue.append(self.waiting.popleft()[1])

    async def epoch(self) -> str | None:
        return None

    async def drained(self) -> bool:
        return not self.queue and not self.waiting and self.in_flight <= 0


class RedisStreamBus:
    def __init__(self, redis: Redis, *, claim_idle_ms: int = 30_000) -> None:
        self.redis = redis
        self.claim_idle_ms = claim_idle_ms
        self._group_ready = False
        self._reader = _blocking_reader(redis)

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def publish(self, events: Sequence[MonitorEvent]) -> None:
        if not events:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(STREAM, {"e": encode(event)}, maxlen=MAX_LEN, approximate=True)
            await pipe.execute()

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        try:
            return await self._read(consumer, count, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis restarted without its data and the group went with the stream:
            # made again from the stream's start, it is given what the relay publishes.
            self._group_ready = False
            return await self._read(consumer, count, block_ms)

    async def _read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        await self._ensure_group()
        # First what a dead worker left pending, then what is new.
        claimed: Any = await self.redis.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count
        )
        entries: list[Any] = list(claimed[1]) if claimed else []
        counts = await self._delivery_counts(entries) if entries else {}
        if not entries:
            answer: Any = await self._reader.xreadgroup(
                GROUP, consumer, {STREAM: ">"}, count=count, block=min(block_ms, MAX_BLOCK_MS)
            )
            entries = [entry for _, stream_entries in answer or [] for entry in stream_entries]
        deliveries = []
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending: nothing left to apply
                continue
            token = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            raw = fields.get(b"e") or fields.get("e")
            deliveries.append(Delivery(token, decode(raw), counts.get(token, 1)))
        return deliveries

    async def _delivery_counts(self, claimed: list[Any]) -> dict[str, int]:
        """How often each claimed entry has been delivered (XAUTOCLAIM counted this one)."""
        ids = [e[0].decode() if isinstance(e[0], bytes) else str(e[0]) for e in claimed]
        async with self.redis.pipeline(transaction=False) as pipe:
            for token in ids:
                pipe.xpending_range(STREAM, GROUP, min=token, max=token, count=1)
            answers: list[Any] = await pipe.execute()
        counts = {}
        for token, rows in zip(ids, answers, strict=True):
            if rows:
                counts[token] = int(rows[0]["times_delivered"])
        return counts

    async def retry(self, deliveries: Sequence[Delivery]) -> None:
        # Left pending: XAUTOCLAIM delivers them again once idle for claim_idle_ms.
        return None

    async def aclose(self) -> None:
        if self._reader is not self.redis:
            await self._reader.aclose()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self.redis.xack(STREAM, GROUP, *[d.token for d in deliveries])

    async def epoch(self) -> str | None:
        # Set once with the stream; a Redis that comes back empty has none, and
        # the first caller after it names the new contents.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
            pipe.get(EPOCH_KEY)
            _, value = await pipe.execute()
        return value.decode() if isinstance(value, bytes) else str(value)

    async def drained(self) -> bool:
        await self._ensure_group()
        try:
            groups: Any = await self.redis.xinfo_groups(STREAM)
        except ResponseError:
            self._group_ready = False
            return False
        for group in groups:
            if (group.get("name") or group.get(b"name")) in (GROUP, GROUP.encode()):
                lag = group.get("lag", group.get(b"lag"))
                pending = group.get("pending", group.get(b"pending"))
                return bool(lag == 0 and pending == 0)
        return False

    async def lag(self) -> int | None:
        """Entries the group has not yet been given (Redis 7's XINFO GROUPS `lag`)."""
        await self._ensure_group()
        try:
            groups: Any = await self.redis.xinfo_groups(STREAM)
        except ResponseError:  # the stream is gone (Redis lost its data): make it again
            self._group_ready = False
            return None
        for group in groups:
            name = group.get("name") or group.get(b"name")
            if name in (GROUP, GROUP.encode()):
                value = group.get("lag", group.get(b"lag"))
                return int(value) if value is not None else None
        return None


def _blocking_reader(redis: Redis) -> Redis:
    """A client for the blocking read: the gateway's clients time out in a quarter
    second (a request must not wait on a dead Redis), and a read blocking for a
    second on an idle stream then failed every time (a traceback every 1.7 s).
    Its socket timeout is the block plus the usual margin, so only a Redis that
    stopped answering times it out."""
    timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
    if not timeout:
        return redis
    return sibling(redis, timeout=timeout + MAX_BLOCK_MS / 1000, max_connections=4)
