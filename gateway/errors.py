"""Errors as types, rendered as RFC 9457 problem documents in one place.

    ProblemError                 base: carries status, problem type and title
    ├── BadRequest               400 malformed request
    ├── Unauthorized             401 (adds WWW-Authenticate)
    ├── Forbidden                403
    ├── NotFound                 404
    ├── NotAcceptable            406 (an Accept header we cannot satisfy)
    ├── Conflict                 409
    ├── PayloadTooLarge          413
    ├── UnsupportedMediaType     415
    ├── InvalidValue             422 a value is invalid; `detail` says which and why
    ├── RateLimited              429 (adds Retry-After)
    └── DependencyUnavailable    503 a dependency (database, Redis) is down

Services raise these (or subclasses defined next to them); no service raises
`HTTPException`. `install_problem_handlers` maps them, FastAPI's validation
errors, Starlette's HTTP errors and anything unexpected to problem+json;
`GatewayMiddleware` renders every 5xx problem, a database that is down, full
or read-only (503, `outage`) and anything unexpected (500) for every route.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.logs import redact

PROBLEM_BASE = "https://xyd-gateway.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

log = logging.getLogger("xyd.errors")


class ProblemError(Exception):
    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type_slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(ProblemError):
    status, type_slug, title = 400, "bad-request", "Malformed request"


class Unauthorized(ProblemError):
    status, type_slug, title = 401, "unauthorized", "Missing or invalid credentials"

    def __init__(self, detail: str, *, scheme: str = "Bearer", **extensions: Any) -> None:
        super().__init__(
            detail, headers={"WWW-Authenticate": f'{scheme} error="invalid_token"'}, **extensions
        )


class Forbidden(ProblemError):
    status, type_slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, type_slug, title = 404, "not-found", "No such resource"


class MethodNotAllowed(ProblemError):
    status, type_slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(ProblemError):
    status, type_slug, title = 406, "not-acceptable", "No acceptable representation"


class Conflict(ProblemError):
    status, type_slug, title = 409, "conflict", "Conflict"


class RequestTimeout(ProblemError):
    """The body did not arrive in time: answered, then the connection is closed."""

    status, type_slug, title = 408, "request-timeout", "Request body too slow"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, headers={"Connection": "close"}, **extensions)


class PayloadTooLarge(ProblemError):
    status, type_slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, type_slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidValue(ProblemError):
    status, type_slug, title = 422, "invalid-value", "Invalid value"


class RateLimited(ProblemError):
    status, type_slug, title = 429, "rate-limited", "Too many requests"

    def __init__(
        self,
        detail: str,
        *,
        retry_after_s: int,
        extra_headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        headers = {**(extra_headers or {}), "Retry-After": str(max(1, retry_after_s))}
        super().__init__(detail, headers=headers, **extensions)


class DependencyUnavailable(ProblemError):
    status, type_slug, title = 503, "dependency-unavailable", "A dependency is unavailable"


class ServerBusy(ProblemError):
    """More requests in flight in this worker than XYD_MAX_CONCURRENCY: come back soon."""

    status, type_slug, title = 503, "server-busy", "Too many requests in flight"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": "1"}, **extensions)


_BY_STATUS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidValue,
        RateLimited,
        DependencyUnavailable,
    )
}


# What every problem body holds (RFC 9457); kinds add members, such as `errors`.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "Stable URI of the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path"},
    },
    "additionalProperties": True,
}


def problem_docs(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem answers: problem_docs({404: "why"})."""
    return {
        code: {"description": text, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
        for code, text in described.items()
    }


def problem_response(error: ProblemError, instance: str | None = None) -> Response:
    return Response(
        content=orjson.dumps(error.to_problem(instance)),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def _validation_problem(exc: RequestValidationError) -> ProblemError:
    errors = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        # A body that is not JSON at all is malformed (400), not an invalid value.
        if err.get("type") == "json_invalid":
            return BadRequest("request body is not valid JSON")
        errors.append({"field": ".".join(loc), "reason": err.get("msg", "invalid")})
    summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
    return InvalidValue(summary or "invalid request", errors=errors)


def database_problem(exc: BaseException) -> DependencyUnavailable | None:
    """The 503 for a database error that means "down, unreachable, full or read-only";
    None for any other database error (a bug, answered 500)."""
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        if not isinstance(exc, OperationalError | InterfaceError):
            return None
    elif not isinstance(exc, DBAPIError | PoolTimeout):
        return None
    reason = str(getattr(exc, "orig", exc)).lower()
    if any(sign in reason for sign in _UNWRITABLE):
        # SQLite in embedded mode: the file or its disk cannot take writes.
        return DependencyUnavailable(
            "the database cannot be written (disk full or read-only); nothing was changed"
        )
    return DependencyUnavailable("the database is unavailable; retry later")


def outage(exc: BaseException, path: str) -> DependencyUnavailable | None:
    """`database_problem`, logged: an outage is not a bug, so one line and no
    trace (there would be one per request)."""
    error = database_problem(exc)
    if error is not None:
        log.error(
            "database unavailable: %s (%s)", type(exc).__name__, error.detail,
            extra={"path": redact(path)},
        )  # fmt: skip
    return error


# SQLite's words for a file it cannot write: the disk is full, the file or its
# directory is read-only (in WAL mode the -shm file then cannot even be opened).
_UNWRITABLE = ("readonly", "read-only", "disk is full", "unable to open database file")


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        if exc.status >= 500:
            # GatewayMiddleware answers every 5xx, once it has settled the request
            # (the gate's charge given back, the failure audited).
            raise exc
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI wraps errors raised while reading the body (such as our
        # PayloadTooLarge from the size-limiting receive) in a plain 400.
        if isinstance(exc.__cause__, ProblemError):
            return problem_response(exc.__cause__, request.url.path)
        cls = _BY_STATUS.get(exc.status_code, BadRequest)
        detail = exc.detail if isinstance(exc.detail, str) else cls.title
        error = cls(detail)
        error.headers.update(dict(exc.headers or {}))
        return problem_response(error, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The trace goes to the log with the request id, never to the client.
        log.exception("unhandled error", extra={"path": redact(request.url.path)})
        return problem_response(ProblemError("unexpected error; quote the X-Request-Id"))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
    _document_outages(app)


OUTAGE = (
    "A dependency (the database, Redis, the audit trail) is unavailable; nothing was "
    "disclosed. Retry later"
)


def _document_outages(app: FastAPI) -> None:
    """Every operation may answer 503: the middleware turns a database outage into
    one on any route. The document says so where a route does not say more."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            outage = problem_docs({503: OUTAGE})[503]
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    operation.setdefault("responses", {}).setdefault("503", outage)
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]
