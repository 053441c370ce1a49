"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers do.

wrk keeps its connections busy (closed loop): when the server slows, wrk
slows with it and the waiting never shows in its latencies. wrk2's fix is
not in Debian, so this paces requests itself: request k is due at
t0 + k / rate, goes out on the first idle keep-alive connection, and its
latency runs from when it was due, not from when a connection was free. A
server that cannot keep up therefore shows the queue it builds in p99, as a
bank's would see it. Raw HTTP/1.1 on asyncio streams (uvloop when present):
under 10 % of a core at 1,000 requests/s here (its own CPU is reported), lighter
than an HTTP client library, which matters on 2 cores shared with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head.split(b" ", 2)[1])
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        end = head.index(b"\r\n", at + 2)
        await reader.readexactly(int(head[at + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in head:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    return status


async def _connection(
    host: str, port: int, queue: asyncio.Queue[tuple[float, bytes] | None], out: _Tally
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await queue.get()) is not None:
            due, raw = item
            try:
                writer.write(raw)
                status = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                out.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            out.latencies.append(time.perf_counter() - due)
            out.bad_status += status >= 400
    finally:
        writer.close()


@dataclass
class _Tally:
    latencies: list[float]
    bad_status: int = 0
    errors: int = 0


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
    host, port = url.hostname or "127.0.0.1", url.port or 80
    raw = [encode(r, url.netloc) for r in requests]
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    tally = _Tally([])
    workers = [
        asyncio.create_task(_connection(host, port, queue, tally)) for _ in range(connections)
    ]
    total = int(rate * seconds)
    cpu = time.process_time()
    start = time.perf_counter()
    sent = wakeups = 0
    while sent < total:
        wakeups += 1
        # Everything due by now goes on the queue at once; a late timer must not thin the load.
        due_now = min(total, int((time.perf_counter() - start) * rate) + 1)
        for k in range(sent, due_now):
            queue.put_nowait((start + k / rate, raw[k % len(raw)]))
        sent = due_now
        # Sleep until the next one is due, a millisecond at least: the loop's timers
        # have that resolution, and a shorter sleep returns at once, so the loop
        # would spin (it did: 26 wake-ups a request, half a core at 1,000/s) on the
        # cores it shares with the server. Requests due meanwhile leave together
        # on waking, their latency still counted from when each was due.
        await asyncio.sleep(max(MIN_SLEEP_S, start + sent / rate - time.perf_counter()))
    for _ in workers:
        queue.put_nowait(None)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 30)
    elapsed = time.perf_counter() - start
    ordered = sorted(tally.latencies) or [0.0]
    cuts = statistics.quantiles(ordered, n=1000) if len(ordered) > 1 else ordered * 999
    return PacedResult(
        target_rps=rate, sent=sent, completed=len(tally.latencies),
        bad_status=tally.bad_status, errors=tally.errors, seconds=elapsed,
        p50_ms=statistics.median(ordered) * 1000, p99_ms=cuts[989] * 1000,
        p999_ms=cuts[998] * 1000, max_ms=ordered[-1] * 1000,
        client_cpu_s=time.process_time() - cpu, wakeups=wakeups,
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
