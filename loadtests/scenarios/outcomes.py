"""How a scenario judges an answer: by the statuses it expects, each counted apart.

A 403 for a report without consent, or a 429 after a burst, is the gateway
doing its job; counting those as failures would hide the real ones. So each
sample is named after its status (`… [429]`) and fails only when the status
is not one the scenario expects.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager


def settle(response: ResponseContextManager, expected: Collection[int]) -> int:
    status = int(response.status_code or 0)
    response.request_meta["name"] = f"{response.request_meta['name']} [{status}]"
    if status in expected:
        response.success()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
    else:
        detail = (response.text or "")[:200] if status else str(getattr(response, "error", ""))
        fail(response, f"expected {sorted(expected)}, got {status}: {detail}")
    return status


def fail(response: ResponseContextManager, why: str) -> None:
    response.failure(why)  # type: ignore[no-untyped-call]  # locust leaves it unannotated


def retry_after(response: ResponseContextManager, ceiling: float = 5.0) -> float:
    """Seconds a refused client waits before trying again, as a well-behaved bank would."""
    value = response.headers.get("retry-after", "1") if response.headers is not None else "1"
    try:
        return min(ceiling, max(0.0, float(str(value))))
    except ValueError:
        return 1.0


def post_bytes(
    client: FastHttpSession, path: str, body: bytes, **kwargs: Any
) -> ResponseContextManager:
    """POST exact bytes (signed XML in GB18030, NDJSON): geventhttpclient sends them as
    they are, though Locust's hint names only str and dict."""
    return client.post(path, data=body, catch_response=True, **kwargs)  # type: ignore[arg-type]
