"""A closed-loop sender: N keep-alive connections, each sending its next prepared
request as soon as the answer to its last one is in, until every request has
gone out once; each answer (status and body) is kept for the caller to read.

As `loadtests.openloop` does, it writes raw HTTP/1.1 on asyncio protocols
(uvloop when present) and reads answers as their bytes arrive, with no
coroutine per request: an HTTP client library in threads costs the sending
side about as much CPU as the server spends, and both share 2 cores.
Answers must carry Content-Length (the gateway's all do).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection was lost before the answer came
    body: bytes


def encode(host: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """A POST of `body` to `path`, ready for the wire."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Sender(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: int | None = None  # the index of the request in flight
        self.status, self.need = 0, -1  # need: body bytes to come; -1 while reading the head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if not self.run.todo:
            self.current = None
            self.transport.close()
            return
        self.current, raw = self.run.todo.popleft()
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None and self._complete():
            body = bytes(self.buffer[: self.need])
            del self.buffer[: self.need]
            self.run.answers[self.current] = Answer(self.status, body)
            self.need = -1
            self._next()

    def _complete(self) -> bool:
        if self.need < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(self.buffer[: end + 4]).lower()
            del self.buffer[: end + 4]
            self.status = int(head.split(b" ", 2)[1])
            at = head.index(b"\r\ncontent-length:")
            self.need = int(head[at + 17 : head.index(b"\r\n", at + 2)])
        return len(self.buffer) >= self.need

    def connection_lost(self, exc: Exception | None) -> None:
        if self.current is not None:
            self.run.answers[self.current] = Answer(0, b"")
        self.run.closed()


class _Run:
    def __init__(self, requests: Sequence[bytes], connections: int) -> None:
        self.todo = deque(enumerate(requests))
        self.answers: list[Answer | None] = [None] * len(requests)
        self.open = connections
        self.finished = asyncio.get_running_loop().create_future()

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.finished.done():
            self.finished.set_result(None)


async def _send(bases: Sequence[str], requests: Sequence[bytes], connections: int) -> list[Answer]:
    urls = [urlsplit(base) for base in bases]
    places = [(url.hostname or "127.0.0.1", url.port or 80) for url in urls]
    loop = asyncio.get_running_loop()
    count = max(1, min(connections, len(requests)))
    run = _Run(requests, count)
    for n in range(count):
        host, port = places[n % len(places)]
        await loop.create_connection(lambda: _Sender(run), host, port)
    await run.finished
    return [a if a is not None else Answer(0, b"") for a in run.answers]


def send_all(
    bases: Sequence[str], requests: Sequence[bytes], connections: int
) -> tuple[list[Answer], float]:
    """Every request sent once over `connections` connections at once, spread over
    the servers at `bases` (each request names its own Host): the answers in the
    requests' order, and the seconds it took."""
    started = time.perf_counter()
    try:
        import uvloop
    except ImportError:
        answers = asyncio.run(_send(bases, requests, connections))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            answers = runner.run(_send(bases, requests, connections))
    return answers, time.perf_counter() - started
