"""Bounded retrying HTTP for the adapters that call platforms (pulls, notifications).

`send` retries what is worth retrying (429, 5xx, a connection that failed or
timed out) a bounded number of times, with exponential back-off and jitter,
and honours `Retry-After`. Anything else is handed back to the caller, who
knows what a 401 or 404 means for its platform.

Where the adapters may connect at all (SSRF) is `gateway.outbound.OutboundPolicy`'s
decision; a refused target raises its `OutboundRefused`.

Exceptions::

    UpstreamError              the platform answered something the adapter cannot use
     └─ RetriesExhausted       still 429 / 5xx / unreachable after the last attempt,
                               or it asked us to wait longer than we are willing to
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from gateway.timeutil import aware

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Generous for a platform answering slowly, short enough that a dead one
# does not hold a scheduled sync for minutes.
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class UpstreamError(Exception):
    """The platform answered something the adapter cannot use (the message says what)."""


class RetriesExhausted(UpstreamError):
    """The platform kept refusing or failing; the next scheduled sync tries again."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request. `sleep` is replaceable so tests need not wait."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 20.0
    max_retry_after_s: float = 120.0
    statuses: frozenset[int] = RETRYABLE_STATUSES
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Exponential with "equal jitter": never zero, never in lockstep with other callers."""
        ceiling = min(self.cap_s, self.base_s * 2.0**attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def after(self, seconds: float) -> float:
        # A little on top of what the platform asked, so callers it throttled
        # together do not all return in the same instant.
        return seconds + self.rng.uniform(0, min(1.0, seconds / 10 + 0.05))


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None if absent or junk."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (aware(when) - (now or datetime.now(UTC))).total_seconds())


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    stream: bool = False,
    content: bytes | None = None,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One request, retried within `policy`; the first answer not worth retrying.

    `content` (raw bytes), `data` (a form), `params` and `headers` as httpx takes
    them. With `stream=True` the body is not read: the caller reads (see
    `read_limited`) and closes it. Raises RetriesExhausted.
    """
    last = policy.attempts - 1
    for attempt in range(policy.attempts):
        try:
            response = await client.send(
                client.build_request(
                    method, url, content=content, data=data, params=params, headers=headers
                ),
                stream=stream,
            )
        except httpx.TransportError as exc:
            if attempt == last:
                raise RetriesExhausted(
                    f"{method} {url}: {exc!r} after {policy.attempts} attempts"
                ) from exc
            await policy.sleep(policy.backoff(attempt))
            continue
        if response.status_code not in policy.statuses:
            return response
        await response.aclose()
        if attempt == last:
            raise RetriesExhausted(
                f"{method} {url}: HTTP {response.status_code} after {policy.attempts} attempts"
            )
        asked = retry_after(response)
        if asked is not None and asked > policy.max_retry_after_s:
            raise RetriesExhausted(
                f"{method} {url}: HTTP {response.status_code}, asked to retry after {asked:.0f} s"
            )
        await policy.sleep(policy.backoff(attempt) if asked is None else policy.after(asked))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """A streamed body, refused (UpstreamError) as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"{response.request.url}: body larger than {limit} bytes")
            chunks.append(chunk)
    finally:
        await response.aclose()
    return b"".join(chunks)
