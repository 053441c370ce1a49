"""Serving an ASGI app (the gateway, or a platform simulator) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from testkit.services import free_port


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
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
