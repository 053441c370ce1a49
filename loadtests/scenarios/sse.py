"""Hold a Server-Sent Events stream open for a while, then hang up.

Locust's pooled HTTP client would hand a still-streaming connection back to
its pool; a socket of our own is closed for certain when the officer looks
away, as a browser tab's would be.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Held:
    status: int
    first_byte_ms: float  # until the stream's first line: what a dashboard waits for
    events: int
    received: int


def hold(base_url: str, path: str, headers: dict[str, str], seconds: float) -> Held:
    url = urlsplit(base_url)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    started = time.perf_counter()
    raw = socket.create_connection((host, port), timeout=5)
    conn: socket.socket = (
        ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        if url.scheme == "https"
        else raw
    )
    with conn:
        lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept: text/event-stream",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data, first_byte_ms = b"", 0.0
        deadline = started + seconds
        while (left := deadline - time.perf_counter()) > 0:
            conn.settimeout(left)
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if not first_byte_ms and b"\r\n\r\n" in data:
                first_byte_ms = (time.perf_counter() - started) * 1000
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    return Held(status, first_byte_ms, body.count(b"event: alert"), len(data))
