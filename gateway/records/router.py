from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from gateway.audit.chain import AuditEvent
from gateway.audit.service import digest, record, route_of
from gateway.errors import UnsupportedMediaType, problem_docs
from gateway.idempotency import check_key
from gateway.identity.deps import RecordWriter
from gateway.records.http import ingest_idempotently
from gateway.records.service import schema_for

router = APIRouter(tags=["records"])
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "One result per line: accepted, duplicate, updated or rejected"},
    **problem_docs(
        {
            400: "Malformed Idempotency-Key",
            401: "Missing or invalid token",
            403: "Token lacks records:write",
            404: "Unknown category",
            409: "The same Idempotency-Key is still being processed",
            413: "Body too large",
            415: "Body is not application/x-ndjson",
            422: "Idempotency-Key reused with another body",
            429: "Rate limited; Retry-After and RateLimit say when to come back",
            503: "The audit trail or the rate limiter is unavailable; nothing is disclosed",
        }
    ),
}


@router.post(
    "/v1/records/{category}",
    summary="Deliver a batch of government credit records (NDJSON)",
    responses=_RESPONSES,
)
async def post_records(
    category: str,
    request: Request,
    caller: RecordWriter,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    schema_for(category)  # 404 before reading the body
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NDJSON_TYPES:
        raise UnsupportedMediaType("send application/x-ndjson: one JSON object a line")
    key = check_key(idempotency_key) if idempotency_key is not None else None
    body = await request.body()
    settings = request.app.state.settings
    status, answer, replayed = await anyio.to_thread.run_sync(
        lambda: ingest_idempotently(
            request.app.state.sync_engine,
            settings.pii_key_bytes(),
            settings.ingest_batch_size,
            client_id=caller.client_id,
            key=key,
            category=category,
            path=request.url.path,
            body=body,
        )
    )
    await record(
        request,
        AuditEvent(
            client_id=caller.client_id,
            route=route_of(request),
            decision="allow",
            reason=f"{category} batch{' (replayed)' if replayed else ''}",
            response_sha256=digest(answer),
        ),
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(answer, status_code=status, media_type="application/json", headers=headers)
