"""`GuardedHttp`'s answers as they reach the socket: a response with a length leaves
head and body in one send; a streamed one gets its head at once."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from gateway.connections import GuardedHttp, ServeConfig


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


async def _serve(app: Any, request: bytes, settle: asyncio.Event | None = None) -> Recording:
    config = ServeConfig(app, header_timeout_s=5, max_connections=10, lifespan="off")
    config.load()
    protocol = GuardedHttp(config, ServerState(), app_state={})
    transport = Recording()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
        if settle is not None and transport.writes:
            break
    return transport


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_sized_answer_leaves_in_one_write() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b'{"ok":true}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    writes = asyncio.run(_serve(app, REQUEST)).writes
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b'\r\n\r\n{"ok":true}')


def test_an_empty_sized_answer_still_sends_its_head() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    writes = asyncio.run(_serve(app, REQUEST)).writes
    assert b"".join(writes).startswith(b"HTTP/1.1 204 No Content\r\n")


def test_a_streamed_answer_gets_its_head_before_its_body() -> None:
    released = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        await released.wait()  # no event yet: the client must already have the head
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})

    async def run() -> list[bytes]:
        transport = await _serve(app, REQUEST, settle=released)
        return transport.writes

    writes = asyncio.run(run())
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in writes[0]


def test_an_app_failing_between_head_and_body_sends_what_it_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})  # fmt: skip
        raise RuntimeError("broken after the head")

    transport = asyncio.run(_serve(app, REQUEST))
    assert transport.closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 200 OK\r\n")
