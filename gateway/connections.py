"""The HTTP connections `xyd serve` keeps: a head timeout and a cap per worker.

uvicorn closes a keep-alive connection idle after an answer, but waits for a
request's head for ever: one opened and left silent, or fed a header byte at
a time, holds a descriptor until the client lets go (20,000 of them emptied
a worker's descriptor table). Its `limit_concurrency` counts those idle
connections too, so they would turn /healthz into 503s rather than make
room. Here:

- a connection whose request head is not complete `header_timeout_s` after
  it opened, or after its previous answer, is closed;
- at `max_connections` a new connection closes the one idle longest (no
  request in progress); with none idle, the new one is closed instead.

Requests in flight are bounded in `GatewayMiddleware` (503), and a body's
arrival time there too (408).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import weakref
from collections import OrderedDict
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

log = logging.getLogger("xyd.serve")
# Descriptors a worker keeps for everything but client connections: the
# database and Redis pools, log and metric files, the printer's threads.
RESERVED_FDS = 256


class ServeConfig(uvicorn.Config):
    """uvicorn's Config with the bounds `GuardedHttp` reads (it is given the config)."""

    def __init__(
        self, app: Any, *, header_timeout_s: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(app, http=GuardedHttp, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft descriptor limit towards `wanted` (at most the hard
    limit; workers inherit it); return the connections it leaves room for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    room = wanted if soft == resource.RLIM_INFINITY else min(wanted, soft - RESERVED_FDS)
    if room < wanted:
        log.warning(
            "descriptor limit %d leaves room for %d connections a worker, not %d",
            soft, room, wanted,
        )  # fmt: skip
    return max(1, room)


# Per server: its connections waiting for a request head, idle longest first.
_WAITING: weakref.WeakKeyDictionary[ServerState, OrderedDict[GuardedHttp, None]] = (
    weakref.WeakKeyDictionary()
)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head timeout and a connection cap."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState, **kwargs: Any) -> None:
        super().__init__(config, server_state, **kwargs)
        self.header_timeout_s: float = getattr(config, "header_timeout_s", 10.0)
        self.max_connections: int = getattr(config, "max_connections", 2048)
        self.waiting = _WAITING.setdefault(server_state, OrderedDict())
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._close_longest_idle():
            transport.close()
            return
        self._await_head()

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            cycle.transport = HeadWithBody(self.transport, cycle)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        # A pipelined request already has its head: the connection is not idle.
        idle_next = not self.pipeline
        super().on_response_complete()
        if idle_next and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self.waiting[self] = None
        self.waiting.move_to_end(self)
        if self.head_timer is not None:
            self.head_timer.cancel()
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _head_arrived(self) -> None:
        self.waiting.pop(self, None)
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        self.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()

    def _close_longest_idle(self) -> bool:
        while self.waiting:
            oldest, _ = self.waiting.popitem(last=False)
            if not oldest.transport.is_closing():
                oldest._head_arrived()
                oldest.transport.close()
                return True
        return False


class HeadWithBody:
    """The transport a response cycle writes to, holding a response's head until
    its body so that both leave in one send.

    uvicorn writes the status line and headers, then the body, each with its own
    `transport.write`: on an idle socket each is a send of its own, and two
    segments for the client to read. A send on this machine's loopback costs
    the sender the receiver's TCP processing and wake-up too (strace: two
    writes a report answer). Only a head announcing a `content-length` is
    held: uvicorn writes its body next, even an empty one; a streamed answer
    (chunked: the live dashboard's events) gets its head at once. Anything else
    the cycle does with its transport goes straight through.
    """

    __slots__ = ("cycle", "head", "transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self.transport, self.cycle = transport, cycle
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self.head
        if head is not None:
            self.head = None
            self.transport.write(head + data)
        elif (
            self.cycle.response_started
            and self.cycle.chunked_encoding is False
            and not self.cycle.response_complete
            and data.startswith(b"HTTP/")
        ):
            self.head = data  # the head just written: the body comes next
        else:
            self.transport.write(data)

    def close(self) -> None:
        # An app that failed between head and body: what it sent, as before.
        if self.head is not None:
            head, self.head = self.head, None
            self.transport.write(head)
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
