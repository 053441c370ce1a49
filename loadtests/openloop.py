"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers do.

wrk keeps its connections busy (closed loop): when the server slows, wrk
slows with it and the waiting never shows in its latencies. wrk2's fix is
not in Debian, so this paces requests itself: request k is due at
t0 + k / rate, goes out on the first idle keep-alive connection, and its
latency runs from when it was due, not from when a connection was free. A
server that cannot keep up therefore shows the queue it builds in p99, as a
bank's would see it. Raw HTTP/1.1 on asyncio protocols (uvloop when present),
answers parsed as their bytes arrive, no coroutine per request: lighter than
an HTTP client library or asyncio streams, which matters on 2 cores shared
with the server (its own CPU is reported beside its figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from loadtests.wrkrun import Request

MIN_SLEEP_S = 0.001


def encode(request: Request, host: str) -> bytes:
    body = request.body.encode()
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}",
             *(f"{k}: {v}" for k, v in request.headers.items())]  # fmt: skip
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class PacedResult:
    target_rps: float
    sent: int
    completed: int
    bad_status: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    client_cpu_s: float  # this generator's own CPU, to judge what it took from the server
    wakeups: int  # of the pacing loop: at most one a millisecond, or it spins

    @property
    def achieved_rps(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, reads its answer as bytes
    arrive, then takes the next one waiting. Callbacks, not a coroutine per
    request: the generator shares the cores with the server it measures."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due: float | None = None  # when the request in flight was due
        self.status = 0
        self.need = -1  # body bytes still to come; -1: reading the head
        self.chunked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.run.ready(self)

    def send(self, due: float, raw: bytes) -> None:
        assert self.transport is not None
        self.due = due
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            while self.due is not None and self._answer_complete():
                due, self.due = self.due, None
                self.run.answered(self, due, self.status)
        except (ValueError, IndexError):  # not HTTP as we know it: drop this connection
            assert self.transport is not None
            self.transport.abort()

    def _answer_complete(self) -> bool:
        buffer = self.buffer
        if self.need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buffer[: end + 4]).lower()
            del buffer[: end + 4]
            self.status = int(head.split(b" ", 2)[1])
            at = head.find(b"\r\ncontent-length:")
            self.chunked = at < 0 and b"\r\ntransfer-encoding: chunked" in head
            self.need = 0 if at < 0 else int(head[at + 17 : head.index(b"\r\n", at + 2)])
        while self.chunked:
            if self.need > 0:  # a chunk's data and its CRLF
                if len(buffer) < self.need:
                    return False
                del buffer[: self.need]
                self.need = 0
            end = buffer.find(b"\r\n")
            if end < 0:
                return False
            size = int(bytes(buffer[:end]).split(b";")[0], 16)
            if size == 0:  # the last chunk: its CRLF (no trailers here) ends the answer
                if len(buffer) < end + 4:
                    return False
                del buffer[: end + 4]
                self.chunked, self.need = False, -1
                return True
            del buffer[: end + 2]
            self.need = size + 2
        if len(buffer) < self.need:
            return False
        del buffer[: self.need]
        self.need = -1
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)


class _Run:
    """The connections, the requests waiting for one, and what came back."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop, self.host, self.port = loop, host, port
        self.idle: list[_Connection] = []
        self.waiting: deque[tuple[float, bytes]] = deque()
        self.in_flight: set[_Connection] = set()
        self.latencies: list[float] = []
        self.bad_status = self.errors = 0
        self.reconnecting: set[asyncio.Task[Any]] = set()
        self.expected: int | None = None  # once every request has gone out
        self.settled = asyncio.Event()
        self.closing = False

    async def connect(self) -> None:
        await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)

    def submit(self, due: float, raw: bytes) -> None:
        if self.idle:
            self._send(self.idle.pop(), due, raw)
        else:
            self.waiting.append((due, raw))

    def _send(self, conn: _Connection, due: float, raw: bytes) -> None:
        self.in_flight.add(conn)
        conn.send(due, raw)

    def ready(self, conn: _Connection) -> None:
        if self.waiting:
            self._send(conn, *self.waiting.popleft())
        else:
            self.idle.append(conn)

    def answered(self, conn: _Connection, due: float, status: int) -> None:
        self.latencies.append(time.perf_counter() - due)
        self.bad_status += status >= 400
        self.in_flight.discard(conn)
        self.ready(conn)
        self.check_settled()

    def lost(self, conn: _Connection) -> None:
        if self.closing:
            return
        if conn in self.idle:
            self.idle.remove(conn)
        if conn in self.in_flight:
            self.in_flight.discard(conn)
            self.errors += 1
            self.check_settled()
        # Keep the connection count: open another in its place.
        task = self.loop.create_task(self.connect())
        self.reconnecting.add(task)
        task.add_done_callback(self.reconnecting.discard)

    def check_settled(self) -> None:
        if self.expected is not None and len(self.latencies) + self.errors >= self.expected:
            self.settled.set()


async def paced(
    base_url: str,
    requests: Sequence[Request],
    *,
    rate: float,
    seconds: float,
    connections: int = 32,
) -> PacedResult:
    """Send `rate` requests/s for `seconds`, cycling through `requests` (give one per
    request when each may be used once); wait for the stragglers, then report."""
    url = urlsplit(base_url)
    loop = asyncio.get_running_loop()
    run = _Run(loop, url.hostname or "127.0.0.1", url.port or 80)
    raw = [encode(r, url.netloc) for r in requests]
    await asyncio.gather(*(run.connect() for _ in range(connections)))
    total = int(rate * seconds)
    cpu = time.process_time()
    start = time.perf_counter()
    sent = wakeups = 0
    while sent < total:
        wakeups += 1
        # Everything due by now goes out at once; a late timer must not thin the load.
        due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
        for k in range(sent, due_now):
            run.submit(start + k / rate, raw[k % len(raw)])
        sent = due_now
        # Sleep until the next one is due, a millisecond at least: the loop's timers
        # have that resolution, and a shorter sleep returns at once, so the loop
        # would spin (it did: 26 wake-ups a request, half a core at 1,000/s) on the
        # cores it shares with the server. Requests due meanwhile leave together
        # on waking, their latency still counted from when each was due.
        await asyncio.sleep(max(MIN_SLEEP_S, start + sent / rate - time.perf_counter()))
    run.expected = sent
    run.check_settled()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.settled.wait(), 30)
    elapsed = time.perf_counter() - start
    client_cpu_s = time.process_time() - cpu
    run.closing = True
    for conn in [*run.idle, *run.in_flight]:
        if conn.transport is not None:
            conn.transport.close()
    ordered = sorted(run.latencies) or [0.0]
    cuts = statistics.quantiles(ordered, n=1000) if len(ordered) > 1 else ordered * 999
    return PacedResult(
        target_rps=rate, sent=sent, completed=len(run.latencies),
        bad_status=run.bad_status, errors=run.errors, seconds=elapsed,
        p50_ms=statistics.median(ordered) * 1000, p99_ms=cuts[989] * 1000,
        p999_ms=cuts[998] * 1000, max_ms=ordered[-1] * 1000,
        client_cpu_s=client_cpu_s, wakeups=wakeups,
    )  # fmt: skip


def run_paced(
    base_url: str, requests: Sequence[Request], *, rate: float, seconds: float
) -> PacedResult:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(paced(base_url, requests, rate=rate, seconds=seconds))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(paced(base_url, requests, rate=rate, seconds=seconds))
