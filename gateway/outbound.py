"""Where the gateway may connect at all (SSRF): platform calls and banks' webhooks.

Any public address is allowed; a loopback, private, link-local or otherwise
non-global one only when its host is allow-listed (`XYD_OUTBOUND_ALLOWED_HOSTS`).
`check_config` judges a configured URL, `check` a request's URL after resolving
its host, and `transport()` checks every request, redirects included, before
connecting. A refused target raises `OutboundRefused`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx


class OutboundRefused(Exception):
    """The URL's host is, or resolves to, an address outside the allow-list."""


# The embedded demo's simulators listen on loopback; production lists its own.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class OutboundPolicy:
    """Where outbound calls may go. `allowed_hosts` may be non-global addresses."""

    allowed_hosts: frozenset[str] = frozenset(DEFAULT_ALLOWED_HOSTS)

    @classmethod
    def of(cls, hosts: Iterable[str]) -> OutboundPolicy:
        return cls(frozenset(h.strip().lower().strip("[]") for h in hosts if h.strip()))

    def check_config(self, name: str, url: str) -> None:
        """At build: an http(s) URL, and no literal non-global address unless allowed
        (a host name is resolved and checked on every request)."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{name} must be an http(s) URL")
        host = parsed.host.lower()
        if host in self.allowed_hosts:
            return
        try:
            public = _public(host)
        except ValueError:
            return  # a name, checked when it is resolved
        if not public:
            raise ValueError(f"{name}: {host} is not a public address; allow-list it first")

    async def check(self, url: httpx.URL) -> None:
        host = url.host.lower()
        if url.scheme not in ("http", "https"):
            raise OutboundRefused(f"{url.scheme}: only http(s) is called")
        if host in self.allowed_hosts:
            return
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise OutboundRefused(f"{host}: does not resolve ({exc})") from None
        for *_, sockaddr in found:
            if not _public(str(sockaddr[0])):
                raise OutboundRefused(
                    f"{host} resolves to {sockaddr[0]}, not a public address; "
                    "allow-list the host in XYD_OUTBOUND_ALLOWED_HOSTS if it is meant"
                )

    def transport(self) -> httpx.AsyncBaseTransport:
        return _GuardedTransport(self, httpx.AsyncHTTPTransport())


class _GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport) -> None:
        self.policy, self.inner = policy, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.policy.check(request.url)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
