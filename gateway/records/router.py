from __future__ import annotations

from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Body, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from gateway.access.callers import RecordWriter
from gateway.access.decision import audit_denial
from gateway.apidocs import answer_docs
from gateway.audit.service import allowed, record_allowed, record_with
from gateway.deps import EngineDep, StateDep
from gateway.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType, problem_docs
from gateway.idempotency import Replay, begin, check_key, finish, request_digest
from gateway.identity.tokens import Caller
from gateway.params import JSON_ONLY_DOC, JsonOnly
from gateway.records import disputes
from gateway.records.http import IngestAnswer, delivery, ingest_idempotently
from gateway.records.service import schema_for

router = APIRouter(tags=["records"])
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **answer_docs(
        IngestAnswer,
        "One result per line: accepted, duplicate, updated or rejected "
        "(for a retried Idempotency-Key, the first answer)",
    ),
    **problem_docs(
        {
            400: "Malformed Idempotency-Key",
            401: "Missing or invalid token",
            403: "Token lacks records:write, or the client delivers for no department",
            404: "Unknown category",
            409: "The same Idempotency-Key is still being processed",
            413: "Body too large, or more lines than XYD_MAX_RECORDS_PER_REQUEST",
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
    # The body is read raw (it is not JSON), so FastAPI cannot document it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                # Any text: each line is judged on its own and answered in `results`.
                media: {"schema": {"description": "One JSON record a line"}}
                for media in NDJSON_TYPES
            },
        }
    },
)
async def post_records(
    category: str,
    request: Request,
    caller: RecordWriter,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    schema_for(category)  # 404 before reading the body
    if caller.client_type != "department":
        denial = Forbidden("only a government department delivers credit records")
        await audit_denial(request, caller, denial)
        raise denial
    try:
        bound = await delivery(request, caller)
    except Forbidden as denial:
        await audit_denial(request, caller, denial)
        raise
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NDJSON_TYPES:
        raise UnsupportedMediaType("send application/x-ndjson: one JSON object a line")
    key = check_key(idempotency_key) if idempotency_key is not None else None
    body = await request.body()
    settings = state.settings
    if _line_count(body) > settings.max_records_per_request:
        # Each line costs a validation and a result in the answer: bound both.
        raise PayloadTooLarge(
            f"at most {settings.max_records_per_request} lines a request; "
            "deliver larger feeds in several requests or with `xyd ingest`"
        )
    status, answer, replayed = await anyio.to_thread.run_sync(
        lambda: ingest_idempotently(
            state.sync_engine,
            state.pii_key,
            settings.ingest_batch_size,
            client_id=caller.client_id,
            key=key,
            category=category,
            path=request.url.path,
            body=body,
            keys=state.pii_keys,
            delivery=bound,
        )
    )
    await record_allowed(
        request,
        caller.client_id,
        answer,
        reason=f"{category} batch{' (replayed)' if replayed else ''}",
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(answer, status_code=status, media_type="application/json", headers=headers)


def _line_count(body: bytes) -> int:
    """Lines as `bytes.splitlines` sees them (\n, \r\n or a lone \r), without splitting."""
    breaks = body.count(b"\n") + body.count(b"\r") - body.count(b"\r\n")
    return breaks + (0 if not body or body.endswith((b"\n", b"\r")) else 1)


_DISPUTE_PROBLEMS = problem_docs(
    {
        400: "Malformed body or Idempotency-Key",
        401: "Missing or invalid token",
        403: "Token lacks records:write, this client type may not do this, "
        "or the record is another department's",
        404: "Unknown category, record or dispute",
        409: "An open dispute exists already, or this one is resolved",
        **JSON_ONLY_DOC,
        422: "A value is invalid; detail says which",
        429: "Rate limited; Retry-After and RateLimit say when to come back",
        503: "The audit trail or the rate limiter is unavailable",
    }
)
RecordId = Annotated[int, Path(ge=1, le=2**62, description="The record's id in reports")]


async def _audited(
    request: Request,
    conn: AsyncConnection,
    caller: Caller,
    dispute: dict[str, Any],
    answer: bytes,
    *,
    replayed: bool = False,
) -> None:
    """The entry, in the transaction that changed the dispute: both or neither."""
    event = allowed(
        request,
        caller.client_id,
        answer,
        reason=f"dispute {dispute['status']}{' (replayed)' if replayed else ''}",
        credit_code=dispute["credit_code"],
    )
    await record_with(request, conn, event)


@router.post(
    "/v1/records/{category}/{record_id}/disputes",
    status_code=201,
    summary="Open a dispute (异议) on a record, for the enterprise",
    description=(
        "A department, or a platform on the enterprise's behalf. Until it is resolved, "
        "reports mark the record as disputed. `Idempotency-Key` honoured."
    ),
    responses={
        **answer_docs(disputes.Dispute, "The dispute opened", status=201),
        **_DISPUTE_PROBLEMS,
    },
)
async def open_record_dispute(
    category: str,
    record_id: RecordId,
    request: Request,
    caller: RecordWriter,
    engine: EngineDep,
    _: JsonOnly,
    body: Annotated[disputes.DisputeIn, Body()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    schema_for(category)
    raw = await request.body()
    async with engine.begin() as conn:
        if idempotency_key is not None:
            key = check_key(idempotency_key)
            fingerprint = request_digest("POST", request.url.path, raw)
            replay = await conn.run_sync(begin, caller.client_id, key, fingerprint)
            if isinstance(replay, Replay):
                first = orjson.loads(replay.body)
                await _audited(request, conn, caller, first, replay.body, replayed=True)
                return Response(
                    replay.body,
                    replay.status_code,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        dispute = await conn.run_sync(disputes.open_dispute, caller, category, record_id, body)
        answer = orjson.dumps(dispute)
        if idempotency_key is not None:
            await conn.run_sync(finish, caller.client_id, idempotency_key, 201, answer)
        await _audited(request, conn, caller, dispute, answer)
    return Response(answer, 201, media_type="application/json")


@router.post(
    "/v1/records/{category}/{record_id}/disputes/{dispute_id}/resolve",
    summary="Resolve a dispute: upheld (then deliver the corrected record) or rejected",
    responses={**answer_docs(disputes.Dispute, "The dispute, now resolved"), **_DISPUTE_PROBLEMS},
)
async def resolve_record_dispute(
    category: str,
    record_id: RecordId,
    dispute_id: Annotated[str, Path(max_length=40)],
    request: Request,
    caller: RecordWriter,
    engine: EngineDep,
    _: JsonOnly,
    body: Annotated[disputes.ResolutionIn, Body()],
) -> Response:
    schema_for(category)
    async with engine.begin() as conn:
        dispute = await conn.run_sync(disputes.resolve, caller, record_id, dispute_id, body)
        answer = orjson.dumps(dispute)
        await _audited(request, conn, caller, dispute, answer)
    return Response(answer, media_type="application/json")
