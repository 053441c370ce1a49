"""The repair routes: a platform files for an enterprise, a department reviews.

`POST /v1/repairs` takes JSON with the evidence base64-encoded (no multipart
parser is installed, and one JSON body is one bounded read): the body is
refused (413) past 4/3 of XYD_REPAIR_EVIDENCE_MAX_TOTAL_BYTES plus 64 KiB
before it is read whole, each file's text past its own bound before it is
decoded. A department's client reviews only applications about penalties its
department decided: anyone else's is 404, as an unknown one. Every call is
audited once (a refusal once the caller is known too); a write's entry
commits with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from gateway.access.callers import RecordWriter, RepairReviewer
from gateway.access.decision import audit_denial
from gateway.apidocs import answer_docs
from gateway.audit.service import record_allowed
from gateway.deps import EngineDep, StateDep
from gateway.errors import (
    BadRequest,
    Forbidden,
    InvalidValue,
    PayloadTooLarge,
    ProblemError,
    problem_docs,
)
from gateway.idempotency import Replay, begin, check_key, finish, request_digest
from gateway.identifiers import checked_code
from gateway.identity.clients import get_client
from gateway.identity.tokens import Caller
from gateway.params import JSON_ONLY_DOC, JsonOnly
from gateway.state import GatewayState

from . import evidence, schemas, service
from .http import attachment, audit_in, decide_audited, limits_of, records_path

router = APIRouter(tags=["repairs"])
_BODY_SLACK = 64 * 1024
ApplicationId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
EvidenceId = Annotated[int, Path(ge=1, le=2**62)]
_COMMON = {
    401: "Missing or invalid token",
    429: "Rate limited; Retry-After and RateLimit say when to come back",
    503: "The audit trail or the rate limiter is unavailable",
}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its nested models written in place (no `$defs`)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved = resolve(schema)
    assert isinstance(resolved, dict)
    return resolved


def body_limit(state: GatewayState) -> int:
    """The longest POST /v1/repairs body: all evidence base64-encoded, plus the rest."""
    settings = state.settings
    return evidence.base64_limit(settings.repair_evidence_max_total_bytes) + _BODY_SLACK


async def _refusing(request: Request, caller: Caller, error: ProblemError) -> ProblemError:
    """`error`, audited as a refusal first (a 5xx is the middleware's to audit)."""
    if error.status < 500:
        await audit_denial(request, caller, error)
    return error


async def _department(request: Request, caller: Caller, state: GatewayState) -> str:
    """The reviewing department: the one the caller's client is registered for."""
    async with state.engine.connect() as conn:
        client = await conn.run_sync(get_client, caller.client_id)
    if client is None or client.client_type != "department" or client.department is None:
        raise await _refusing(
            request, caller, Forbidden("only a department's client reviews credit repairs")
        )
    return client.department


def _json(answer: bytes, status: int = 200, **headers: str) -> Response:
    return Response(answer, status, media_type="application/json", headers=headers or None)


@router.get(
    "/v1/repairs/commitment",
    summary="The credit commitment (失信修复型) an applicant accepts, in full",
    responses={
        **answer_docs(schemas.CommitmentText, "Its text; accept it by text_sha256"),
        **problem_docs({**_COMMON, 403: "Token lacks records:write"}),
    },
)
async def get_commitment(request: Request, caller: RecordWriter, state: StateDep) -> Response:
    text = service.commitment_text(state.settings.config_dir)
    answer = orjson.dumps(
        {
            "version": text.version, "commitment_type": text.commitment_type,
            "title_zh": text.title.zh, "title_en": text.title.en,
            "text_zh": text.text.zh, "text_en": text.text.en, "text_sha256": text.sha256,
        }
    )  # fmt: skip
    await record_allowed(request, caller.client_id, answer, reason="repair commitment")
    return _json(answer)


@router.post(
    "/v1/repairs",
    status_code=201,
    summary="File a credit repair application on an enterprise's behalf (platforms)",
    description=(
        "JSON: the enterprise, the penalty's `record_id` (as reports show it), an optional "
        "statement, the commitment accepted (its text_sha256), and 1 to "
        "XYD_REPAIR_EVIDENCE_MAX_FILES evidence files base64-encoded, each a PDF, JPEG or PNG "
        "by its content. `Idempotency-Key` honoured."
    ),
    # The body is read raw, bounded, before it is parsed: FastAPI cannot document it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(schemas.RepairIn)}},
        }
    },
    responses={
        **answer_docs(schemas.Application, "The application, pending review", status=201),
        **problem_docs(
            {
                **_COMMON,
                **JSON_ONLY_DOC,
                400: "Malformed JSON or Idempotency-Key",
                403: "Token lacks records:write, or the client is not a platform",
                404: "No such penalty of this enterprise",
                409: "The penalty has a pending application (or the Idempotency-Key is in use)",
                413: "Body, a file or all files together over their bounds",
                415: "Not JSON, or a file that is not a PDF, JPEG or PNG by its content",
                422: "A value is invalid, the penalty is not repairable now (reason, earliest), "
                "the commitment is not the current text, or too many files",
            }
        ),
    },
)
async def apply(
    request: Request,
    caller: RecordWriter,
    state: StateDep,
    engine: EngineDep,
    _: JsonOnly,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    if caller.client_type != "platform":
        raise await _refusing(
            request, caller, Forbidden("a platform files repair applications for enterprises")
        )
    try:
        raw = await _bounded_body(request, body_limit(state))
        new = _application(raw, state)
    except ProblemError as error:
        raise await _refusing(request, caller, error) from None
    key = check_key(idempotency_key) if idempotency_key is not None else None
    path = await records_path(request, caller.client_id, state)
    limits = limits_of(state)
    applicant = service.Applicant(caller.client_id, "platform")
    fingerprint = request_digest("POST", request.url.path, raw)
    code = new.credit_code

    def write() -> tuple[int, bytes, bool]:
        # The records path writes with COPY on PostgreSQL: a sync connection, in a thread.
        with state.sync_engine.begin() as conn:
            if key is not None:
                replay = begin(conn, caller.client_id, key, fingerprint)
                if isinstance(replay, Replay):
                    audit_in(conn, request, caller.client_id, path, replay.body, code, "(replayed)")
                    return replay.status_code, replay.body, True
            found = service.apply(conn, path, applicant, new, limits, datetime.now(UTC))
            answer = orjson.dumps(found)
            if key is not None:
                finish(conn, caller.client_id, key, 201, answer)
            audit_in(conn, request, caller.client_id, path, answer, code, f"{found['id']} applied")
            return 201, answer, False

    try:
        status, answer, replayed = await anyio.to_thread.run_sync(write)
    except ProblemError as error:
        # Audited once the transaction is over: it may hold SQLite's write lock.
        raise await _refusing(request, caller, error) from None
    if replayed:
        return _json(answer, status, **{"Idempotent-Replayed": "true"})
    return _json(answer, 201)


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"a repair application is at most {limit} bytes")
    return await evidence.read_bounded(request.stream(), limit)


def _application(raw: bytes, state: GatewayState) -> service.NewApplication:
    """The body validated and its files checked: count first, then each before the next."""
    settings = state.settings
    try:
        body = schemas.RepairIn.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None
    except ValidationError as exc:
        raise InvalidValue(_summary(exc)) from None
    code = checked_code(body.credit_code)
    evidence.check_count(len(body.evidence), settings.repair_evidence_max_files)
    files = []
    for item in body.evidence:
        data = evidence.decode_base64(
            item.file_name, item.content_base64, settings.repair_evidence_max_bytes
        )
        files.append(evidence.check_file(item.file_name, data, settings.repair_evidence_max_bytes))
        evidence.check_total(files, settings.repair_evidence_max_total_bytes)
    return service.NewApplication(
        code, body.record_id, body.statement, body.commitment.text_sha256, files
    )


@router.get(
    "/v1/repairs",
    summary="A department's review queue: applications about penalties it decided",
    responses={
        **answer_docs(schemas.Applications, "The applications, the oldest first"),
        **problem_docs(
            {
                **_COMMON,
                403: "Token lacks repairs:review, or not a department",
                422: "Unknown status",
            }
        ),
    },
)
async def review_queue(
    request: Request,
    caller: RepairReviewer,
    state: StateDep,
    engine: EngineDep,
    status: Literal["pending", "approved", "rejected"] = "pending",
    limit: Annotated[int, Query(ge=1, le=service.LIST_MAX)] = 50,
) -> Response:
    department = await _department(request, caller, state)
    async with engine.connect() as conn:
        items = await conn.run_sync(lambda c: service.queue(c, department, status, limit))
    answer = orjson.dumps({"items": items})
    await record_allowed(request, caller.client_id, answer, reason=f"repair queue {status}")
    return _json(answer)


@router.get(
    "/v1/repairs/{application_id}",
    summary="One application, for the department reviewing it",
    responses={
        **answer_docs(schemas.Application, "The application"),
        **problem_docs(
            {
                **_COMMON,
                403: "Token lacks repairs:review, or not a department",
                404: "No such application for this department",
                422: "A malformed application id",
            }
        ),
    },
)
async def get_application(
    application_id: ApplicationId,
    request: Request,
    caller: RepairReviewer,
    state: StateDep,
    engine: EngineDep,
) -> Response:
    viewer = service.Viewer.reviewer(await _department(request, caller, state))
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda c: service.get(c, application_id, viewer))
    except ProblemError as error:
        raise await _refusing(request, caller, error) from None
    answer = orjson.dumps(found)
    await record_allowed(
        request, caller.client_id, answer, reason=f"repair {application_id} read",
        credit_code=found["credit_code"],
    )  # fmt: skip
    return _json(answer)


@router.get(
    "/v1/repairs/{application_id}/evidence/{evidence_id}",
    summary="One evidence file, as an attachment, for the department reviewing it",
    response_class=Response,
    responses={
        200: {
            "description": "The file's bytes, as an attachment, of its sniffed type",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/pdf", "image/jpeg", "image/png")
            },
        },
        **problem_docs(
            {
                **_COMMON,
                403: "Token lacks repairs:review, or not a department",
                404: "No such file for this department",
                422: "A malformed application or file id",
            }
        ),
    },
)
async def get_evidence(
    application_id: ApplicationId,
    evidence_id: EvidenceId,
    request: Request,
    caller: RepairReviewer,
    state: StateDep,
    engine: EngineDep,
) -> Response:
    viewer = service.Viewer.reviewer(await _department(request, caller, state))
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda c: service.evidence_file(c, application_id, evidence_id, viewer)
            )
    except ProblemError as error:
        raise await _refusing(request, caller, error) from None
    content = bytes(found.content)
    await record_allowed(
        request, caller.client_id, content, reason=f"repair {application_id} evidence {evidence_id}"
    )
    return attachment(content, found.media_type, f"{application_id}-{found.position}")


@router.post(
    "/v1/repairs/{application_id}/decision",
    summary="Approve or reject an application; an approval publishes the credit_repair record",
    responses={
        **answer_docs(schemas.Application, "The application, decided"),
        **problem_docs(
            {
                **_COMMON,
                **JSON_ONLY_DOC,
                400: "Malformed JSON",
                403: "Token lacks repairs:review, or not a department",
                404: "No such application for this department",
                409: "Already decided",
                422: "A value is invalid; a rejection needs a reason",
            }
        ),
    },
)
async def decide(
    application_id: ApplicationId,
    request: Request,
    caller: RepairReviewer,
    state: StateDep,
    _: JsonOnly,
    body: Annotated[schemas.DecisionIn, Body()],
) -> Response:
    department = await _department(request, caller, state)
    try:
        found = await decide_audited(
            request, state, department, caller.client_id, application_id, body.decision,
            body.reason,
        )  # fmt: skip
    except ProblemError as error:
        raise await _refusing(request, caller, error) from None
    answer = orjson.dumps(found)
    return _json(answer)


def _summary(exc: ValidationError) -> str:
    """`field: why` for the first five faults, bounded."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        field = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)[:500]
