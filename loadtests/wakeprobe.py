"""What this machine charges a process for being woken: the context of every
paced-load figure in RESULTS.md.

An echo server on uvloop answers 100-byte messages from one client over
loopback, first paced (the server sleeps between messages, as the gateway's
workers, PostgreSQL and Redis do under the open-loop run), then back to
back (as under wrk, where a worker always has the next request waiting). The
server's CPU per message is read from /proc. On bare metal the two are
close; on a virtual machine where waking an idle CPU is dear, the paced
figure is several times the other, and so is every paced request's share.

    python -m loadtests.wakeprobe [--rate 300] [--paced 1500] [--burst 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

from loadtests.procstat import CpuMeter
from loadtests.stores import ROOT
from testkit.services import free_port

MESSAGE = b"x" * 100


def serve(port: int) -> None:
    import uvloop

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def _connect(port: int, deadline_s: float = 10.0) -> socket.socket:
    until = time.monotonic() + deadline_s
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > until:
                raise
            time.sleep(0.05)
            continue
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


def _exchange(conn: socket.socket, count: int, rate: float | None) -> None:
    started = time.perf_counter()
    for n in range(count):
        if rate is not None:
            wait = started + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        conn.sendall(MESSAGE)
        got = 0
        while got < len(MESSAGE):
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError("the echo server went away")
            got += len(chunk)


def measure(rate: float, paced: int, burst: int) -> tuple[float, float]:
    """(server CPU µs a message paced at `rate`, the same back to back)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "loadtests.wakeprobe", "--serve", str(port)], cwd=ROOT
    )
    try:
        with _connect(port) as conn:
            _exchange(conn, 200, None)  # the server's first allocations, outside the count
            meter = CpuMeter([server.pid])
            meter.start()
            _exchange(conn, paced, rate)
            paced_us = meter.stop() / paced * 1e6
            meter.start()
            _exchange(conn, burst, None)
            burst_us = meter.stop() / burst * 1e6
        return paced_us, burst_us
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--paced", type=int, default=1500)
    parser.add_argument("--burst", type=int, default=20000)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    paced_us, burst_us = measure(args.rate, args.paced, args.burst)
    print(
        f"echo server CPU a message: {paced_us:.0f} µs paced at {args.rate:.0f}/s, "
        f"{burst_us:.0f} µs back to back ({paced_us / burst_us:.1f} times)"
    )


if __name__ == "__main__":
    main()
