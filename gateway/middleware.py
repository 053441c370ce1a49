"""The outermost ASGI layer: request id, rate headers, body size and time limits,
the worker's concurrency limit, access log, metrics, and every 5xx answer.

A 5xx to a request the gate admitted is settled before it is sent: the gate
gives back what it charged, and the failure is an audit entry (`error`, the
request id), committed first; if that cannot be written the answer is the
audit's 503, as everywhere.

Plain ASGI rather than BaseHTTPMiddleware: it runs on every request and the
latter costs a task and a stream copy per call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit.service import AuditUnavailable, record_error
from gateway.direct import Direct
from gateway.errors import (
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    ServerBusy,
    outage,
    problem_response,
)
from gateway.identity.deps import path_credit_code
from gateway.logs import redact, request_id_var
from gateway.metrics import HTTP_LATENCY, HTTP_REQUESTS, Children
from gateway.state import state_of
from policies.rate import Charge

log = logging.getLogger("xyd.access")
_REQUESTS, _LATENCY = Children(HTTP_REQUESTS), Children(HTTP_LATENCY)

# An incoming id is echoed only when it is short and plain, so a client cannot
# inject log lines or huge headers through it.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

# Added to every answer that does not set its own (the dashboard and static
# files choose theirs). API answers carry credit data: nothing caches them,
# nothing renders or frames them. HTML (the OpenAPI viewers) keeps its own CSP.
_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_HSTS = (b"strict-transport-security", b"max-age=31536000")


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        https: bool = False,
        direct: Direct | None = None,
        body_timeout_s: float | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.direct = direct
        self.body_timeout_s = body_timeout_s
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.security_headers = (*_SECURITY_HEADERS, _HSTS) if https else _SECURITY_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = [*message.get("headers", []), header, *_rate_headers(scope)]
                message["headers"] = _with_security_headers(headers, self.security_headers)
            await send(message)

        declared = _content_length(scope)
        received = 0
        # The whole body within body_timeout_s of the request's start, however
        # it trickles in; after it, receive() waits as long as the answer does
        # (a stream listens on it for the client going away).
        body_due = None if self.body_timeout_s is None else started + self.body_timeout_s
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or body_due is None:
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, body_due - time.perf_counter())):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {self.body_timeout_s:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLarge(f"request body exceeds {self.max_body_bytes} bytes")
            return message

        self.in_flight += 1
        try:
            if self.max_concurrency is not None and self.in_flight > self.max_concurrency:
                raise ServerBusy(
                    f"more than {self.max_concurrency} requests in flight; retry shortly"
                )
            if declared is not None and declared > self.max_body_bytes:
                raise PayloadTooLarge(f"request body exceeds {self.max_body_bytes} bytes")
            params = self.direct.match(scope) if self.direct is not None else None
            if params is not None and self.direct is not None:
                await self.direct(scope, limited_receive, send_with_id, params)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except ProblemError as problem:
            if not response_started:
                if problem.status >= 500:
                    problem = await _settle(scope, problem)
                await _send_problem(problem, scope, receive, send_with_id)
        except Exception as exc:
            # A database that is down, full or read-only is a 503, from any route
            # (errors.outage logs it); anything else is a bug.
            path = scope.get("path", "")
            down = outage(exc, path) if isinstance(exc, SQLAlchemyError) else None
            if down is None:
                log.exception("unhandled error", extra={"path": redact(path)})
            if not response_started:
                answer = down or ProblemError("unexpected error; quote the X-Request-Id")
                await _send_problem(await _settle(scope, answer), scope, receive, send_with_id)
        finally:
            self.in_flight -= 1
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            _REQUESTS(method, route, str(status)).inc()
            _LATENCY(method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    # The path only: a query string may carry anything. A
                    # client that puts an ID number in the path gets it redacted.
                    "path": redact(scope.get("path", "")),
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


async def _settle(scope: Scope, answer: ProblemError) -> ProblemError:
    """The 5xx `answer` to send, once the request is settled: if the gate charged it,
    the charge given back and an `error` entry committed; the audit's 503 instead
    of a 500 if that entry cannot be written."""
    state = scope.get("state")
    if not isinstance(state, dict) or state.get("charge") is None:
        return answer  # not admitted: nothing charged, no caller to name
    charge: Charge = state.pop("charge")
    # The headers told what the request spent; it spent nothing now.
    state.pop("rate_headers", None)
    await state_of(scope["app"]).gate.refund(charge)
    if isinstance(answer, AuditUnavailable):
        return answer  # the trail is what failed: no entry can say so
    spent = charge.request
    request = Request(scope)
    try:
        await record_error(
            request,
            spent.client_id,
            answer.type_slug,
            credit_code=spent.credit_code or path_credit_code(request),
            consent_id=spent.consent_id,
        )
    except AuditUnavailable as unwritten:
        return answer if answer.status == unwritten.status else unwritten
    return answer


async def _send_problem(error: ProblemError, scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(error, scope.get("path"))(scope, receive, send)


def _with_security_headers(
    headers: list[tuple[bytes, bytes]], defaults: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    present = {name.lower(): value for name, value in headers}
    added = [item for item in defaults if item[0] not in present]
    html = present.get(b"content-type", b"").startswith(b"text/html")
    if not html and _API_CSP[0] not in present:
        added.append(_API_CSP)
    return [*headers, *added]


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _VALID_REQUEST_ID.match(value):
            return str(value.decode())
    return secrets.token_hex(16)


def _rate_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    # The gate leaves them in the request state; a refusal carries its own.
    state = scope.get("state")
    found = state.get("rate_headers") if isinstance(state, dict) else None
    if not found:
        return []
    return [(name.lower().encode(), value.encode()) for name, value in found.items()]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route_template(scope: Scope) -> str:
    # Label by the matched route's template, never the raw path: raw paths
    # carry credit codes and would make one series per enterprise.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
