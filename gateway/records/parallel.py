"""Validation in worker processes, for big feeds.

Reading, validating and normalising a penalty line costs 100-130 µs of
Python (pydantic and our field validators ~70 of it), so one process caps a
feed below 10,000 lines a second before the database has done anything.
Worker processes take that part, a batch each, while the parent stores the
batches in file order, one transaction after the other: outcomes, the
rejects file and idempotency are those of the single-process path, because
the parent still sees and stores every batch in order.

Workers are forked: importing the gateway costs a fresh interpreter 1.5 s or
more, a fork a few milliseconds. A fork copies only the calling thread, so the
pool must be started before the caller starts any other thread (the CLI's
progress bar, a server's thread pool); when other threads are already there,
workers come from a fork server instead, which is safe and only slower to
start. Workers never use the parent's database connections, and a worker
leaves with os._exit, which closes inherited sockets without a word to the
server.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from itertools import islice
from types import TracebackType

from gateway.keys.pii import KeyRing
from gateway.records.readers import Line, read_lines, read_ndjson
from gateway.records.schemas import RecordBase
from gateway.records.service import Prepared, prepare, schema_for
from policies.departments import Writer

_schema: type[RecordBase] | None = None
_pii_key = b""
_keys: KeyRing | None = None
_writer: Writer | None = None


def default_workers() -> int:
    """One worker per CPU; none on a single CPU, where workers cannot help."""
    cpus = len(os.sched_getaffinity(0))
    return cpus if cpus > 1 else 0


def pool_for(
    category: str,
    pii_key: bytes,
    workers: int,
    keys: KeyRing | None = None,
    writer: Writer | None = None,
) -> AbstractContextManager[ValidationPool | None]:
    """A pool of `workers` processes, or None (validate in the caller) for `workers` < 1."""
    if workers < 1:
        return nullcontext()
    return ValidationPool(category, pii_key, workers, keys=keys, writer=writer)


class ValidationPool:
    """Worker processes preparing batches of one category's lines; use as a context manager."""

    def __init__(
        self,
        category: str,
        pii_key: bytes,
        workers: int,
        start_method: str | None = None,
        keys: KeyRing | None = None,
        writer: Writer | None = None,
    ) -> None:
        schema_for(category)  # an unknown category fails here, not in a worker
        method = start_method or ("fork" if threading.active_count() == 1 else "forkserver")
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # The server imports the gateway once; each worker forks from it.
            context.set_forkserver_preload([__name__])
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            # The key ring goes once to each worker, with the HMAC key and the
            # department the lines are bound to.
            initargs=(category, pii_key, keys, writer),
        )

    def __enter__(self) -> ValidationPool:
        # What is alive now (the imported gateway, mostly) lives as long as
        # the process: frozen, the collector stops walking it on every full
        # collection (~15 µs a line in a worker otherwise), and forked workers
        # keep sharing its pages instead of copying them.
        gc.freeze()
        # With fork, every worker is forked on the first submit: do it now,
        # while this is still the only thread.
        self._executor.submit(_ready).result()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def prepare_feed(
        self, raw_lines: Iterable[bytes], fmt: str, batch_size: int
    ) -> Iterator[Prepared]:
        """A feed's batches prepared in the workers, in file order."""
        if fmt == "ndjson":
            return self.prepare_ndjson(raw_lines, batch_size)
        return self.prepare_lines(read_lines(raw_lines, fmt), batch_size)

    def prepare_ndjson(self, raw_lines: Iterable[bytes], batch_size: int) -> Iterator[Prepared]:
        """Each batch of `batch_size` physical lines prepared, in file order."""
        numbered = _numbered_slices(raw_lines, batch_size)
        return self._in_order(self._executor.submit(_prepare_ndjson, *job) for job in numbered)

    def prepare_lines(self, lines: Iterable[Line], batch_size: int) -> Iterator[Prepared]:
        """Lines read in the parent (CSV, whose quoted fields span lines), prepared here."""
        iterator = iter(lines)
        slices = iter(lambda: list(islice(iterator, batch_size)), [])
        return self._in_order(self._executor.submit(_prepare_lines, chunk) for chunk in slices)

    def _in_order(self, futures: Iterator[Future[Prepared]]) -> Iterator[Prepared]:
        # Enough batches in flight to keep every worker busy while the parent
        # stores one, few enough to bound memory on a file of any size.
        window: deque[Future[Prepared]] = deque()
        for future in futures:
            window.append(future)
            if len(window) > 2 * self.workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _numbered_slices(raw_lines: Iterable[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    iterator = iter(raw_lines)
    first = 1
    while chunk := list(islice(iterator, size)):
        yield first, chunk
        first += len(chunk)


def _start_worker(
    category: str, pii_key: bytes, keys: KeyRing | None, writer: Writer | None
) -> None:
    global _schema, _pii_key, _keys, _writer
    _schema, _pii_key, _keys, _writer = schema_for(category), pii_key, keys, writer
    gc.freeze()  # a fork server's imports, as the parent's above


def _ready() -> bool:
    return True


def _prepare_lines(lines: list[Line]) -> Prepared:
    assert _schema is not None, "worker not started"
    return [prepare(_schema, line, _pii_key, _keys, _writer) for line in lines]


def _prepare_ndjson(first: int, raw_lines: list[bytes]) -> Prepared:
    return _prepare_lines(list(read_ndjson(raw_lines, first)))
