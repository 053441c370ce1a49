"""Serving an ASGI app (the gateway, or a platform simulator) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import uvicorn

from testkit.services import free_port

_T = TypeVar("_T")
# Each served app's event loop: its engines, pools and Redis client are bound to it.
_LOOPS: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def serve(app: Any, *, ready_path: str = "/healthz", port: int | None = None) -> Iterator[str]:
    """Run `app` with uvicorn in a thread (on `port`, or one free now); yield its
    base URL; stop it afterwards."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.started:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base + ready_path, timeout=1)
                break
        time.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    _LOOPS[app] = server.servers[0].get_loop()
    try:
        yield base
    finally:
        _LOOPS.pop(app, None)
        server.should_exit = True
        thread.join(timeout=10)


def call_served(
    app: Any, call: Callable[..., Awaitable[_T]], *args: Any, timeout: float = 20
) -> _T:
    """`call(*args)` run in the event loop `serve` runs `app` in, from the test's
    thread: what stands in for a page a test does not drive (the consent page's
    `CodeFlow.approve`) uses the app's own engines there."""
    future = asyncio.run_coroutine_threadsafe(_awaited(call, *args), _LOOPS[app])
    return future.result(timeout)


async def _awaited(call: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    return await call(*args)
