"""The open-loop generator keeps its schedule and reads every answer."""

from __future__ import annotations

import asyncio

from loadtests.openloop import PacedResult, paced
from loadtests.wrkrun import Request

ANSWERS = {
    b"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"/no": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            writer.write(ANSWERS[head.split(b" ")[1]])
            await writer.drain()
    except asyncio.IncompleteReadError:
        writer.close()


async def run(requests: list[Request], rate: float = 100) -> PacedResult:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await paced(f"http://127.0.0.1:{port}", requests, rate=rate, seconds=2.0)


def test_schedule_and_statuses() -> None:
    requests = [Request("GET", p, {}) for p in ("/ok", "/chunked", "/ok", "/no")]
    result = asyncio.run(run(requests))
    assert result.sent == result.completed == 200
    assert result.bad_status == 50
    p99_ms = result.p99_ms
    # Counted from each request's due time, not from the start of the run (which
    # would give about 2,000 ms): a bound far from both survives a busy machine.
    assert p99_ms < 1000


def test_the_pacer_never_wakes_more_than_once_a_millisecond() -> None:
    """It once woke 26 times a request (sub-millisecond sleeps return at once),
    spending half a core on the machine the server under test shares."""
    result = asyncio.run(run([Request("GET", "/ok", {})], rate=4000))
    assert result.completed == 8000
    assert result.wakeups <= 2.0 * 1000 + 50
