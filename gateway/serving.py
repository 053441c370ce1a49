"""How `xyd serve` runs several worker processes: each accepts on a socket of its own.

uvicorn binds one listening socket and hands it to every worker. The worker
whose loop wakes first accepts every connection waiting, so a client opening
its keep-alive pool at once lands on one worker: 32 connections went 32/0,
32/0 and 27/5 between two workers here, and the loaded worker queued requests
while the other idled (the open-loop benchmark's p50 was the whole pool's
depth). With SO_REUSEPORT each worker listens on a socket of its own on the
same address, and the kernel spreads new connections over them by their
address and port.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gateway.address import announced

log = logging.getLogger("xyd.serve")


def bind_reuse_port(
    family: int, host: str, port: int, kind: type[socket.socket] = socket.socket
) -> socket.socket:
    """A socket bound to `host:port` beside others doing the same (not yet listening)."""
    sock = kind(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class PortHolder(socket.socket):
    """What the supervisor hands its workers in place of a listening socket.

    In the supervisor it is bound and never listens: it holds the port (a
    conflict fails at start, not in every worker) and takes no connections,
    since only listening sockets share them. Each worker that receives it
    binds a socket of its own on the same address instead, which uvicorn then
    listens on."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (bind_reuse_port, (self.family, host, port))


def serve(config: uvicorn.Config, state_dir: Path | None = None) -> None:
    """Run the app as `config` says; with several workers, each on its own socket.

    With `state_dir`, STATE_DIR/serve.json names the address while it serves
    (gateway/address.py), written once the port is known to be free."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        # SO_REUSEPORT would let a second gateway share a port already in use,
        # splitting its traffic without a word: a plain bind first refuses that.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((config.host, config.port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    with contextlib.ExitStack() as stack:
        if state_dir is not None:
            stack.enter_context(announced(state_dir, config.host, config.port))
        _run(config, family)


def _run(config: uvicorn.Config, family: int) -> None:
    if config.workers <= 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    try:
        holder = bind_reuse_port(family, config.host, config.port, PortHolder)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        sys.exit(STARTUP_FAILURE)
    with holder:
        Multiprocess(config, sockets=[holder]).run()
