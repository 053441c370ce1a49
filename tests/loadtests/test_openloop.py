"""The open-loop generator keeps its schedule and reads every answer."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from loadtests.openloop import PacedResult, paced
from loadtests.wrkrun import Request

ANSWERS = {
    b"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"/no": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
}


DRIPPED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            path = head.split(b" ")[1]
            if path == b"/close":  # hang up without an answer
                writer.close()
                return
            if path == b"/drip":  # an answer in single bytes, each sent on its own
                for n in range(len(DRIPPED)):
                    writer.write(DRIPPED[n : n + 1])
                    await writer.drain()
                    await asyncio.sleep(0)
                continue
            writer.write(ANSWERS[path])
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


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_answers_in_pieces_and_lost_connections(loop: str) -> None:
    """Answers are read as their bytes come (here one at a time, chunked); a
    connection the server drops counts as an error, and another takes its place.
    On both event loops: the benchmark runs it on uvloop's."""
    requests = [Request("GET", p, {}) for p in ("/drip", "/ok", "/close", "/ok")]
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(run(requests, rate=50))
    assert result.sent == 100
    assert result.errors == 25
    assert result.completed == 75
    assert result.bad_status == 0
