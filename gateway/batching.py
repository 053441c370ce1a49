"""Coalescing concurrent requests' small I/O into one round trip.

Under load many requests want the same kind of work at once: an audit entry
appended, a consent read, a rate-limit script run. Each alone pays a round
trip and a thread hop; together they pay one. A `Coalescer` hands everything
submitted while the previous batch was in flight to the next call of its
`work`, so an idle gateway answers as fast as before (a batch of one) and a
busy one batches by itself, without a timer.

Each submitter still waits for its own item's result: an audit entry is
acknowledged only once its batch has committed, a read starts after the
request arrived (so it sees what was committed before), and a failed batch
fails every item in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """`work` answers a batch with one result per item, in order; an item's result
    may be an exception, which only that item's submitter sees."""

    def __init__(
        self,
        work: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        max_batch: int = 256,
    ) -> None:
        self.work = work
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._draining:
            self._draining = True
            task = asyncio.create_task(self._drain())
            # Held until done: the loop keeps only weak references to tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    results = await self.work([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        # Cancelled: the app is stopping; nobody is left waiting forever.
                        for _, future in self._pending:
                            future.cancel()
                        self._pending.clear()
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its request went away; the work still happened
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False
