from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import Response

from gateway.access.callers import ConsentWriter
from gateway.access.marks import mark_changed
from gateway.apidocs import answer_docs
from gateway.audit.chain import AuditEvent
from gateway.audit.service import allowed, record, record_with, route_of
from gateway.consents import service
from gateway.consents.schemas import Consent, ConsentIn, ConsentPage, RevokeIn
from gateway.deps import ConsentRulesDep, EngineDep, RedisDep
from gateway.errors import problem_docs
from gateway.idempotency import Replay, begin, check_key, finish, request_digest
from gateway.identifiers import checked_code
from gateway.identity.tokens import Caller
from gateway.params import JSON_ONLY_DOC, CreditCodeQuery, JsonOnly, Rfc3339
from policies.consent import ConsentRules

router = APIRouter(tags=["consents"])
_PROBLEMS = problem_docs(
    {
        400: "Malformed body or Idempotency-Key",
        401: "Missing or invalid token",
        403: "Token lacks consents:write; or, to register one, consents are not accepted "
        "through the direct channel here (XYD_CONSENT_CHANNELS)",
        404: "No such consent (or not yours); to register one, no such enterprise",
        409: "Already revoked, or the same Idempotency-Key still in progress",
        **JSON_ONLY_DOC,
        422: "A value is invalid (or the enterprise is deregistered); detail says which",
        429: "Rate limited; Retry-After and RateLimit say when to come back",
        503: "The audit trail or the rate limiter is unavailable; nothing is disclosed",
    }
)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json", headers=headers)


async def _audit(
    request: Request,
    conn: AsyncConnection,
    caller: Caller,
    consent: dict[str, Any],
    body: bytes,
    *,
    replayed: bool = False,
) -> None:
    """The entry, in the transaction that changed the consent: both or neither."""
    # A replayed answer kept from before consents named their channel came direct.
    channel = consent.get("channel", "direct")
    event = allowed(
        request,
        caller.client_id,
        body,
        reason=f"consent {consent['status']} via {channel}{' (replayed)' if replayed else ''}",
        credit_code=consent["credit_code"],
        consent_id=consent["id"],
        purpose=consent["purpose"],
    )
    await record_with(request, conn, event)


async def _audit_refused(
    request: Request, caller: Caller, body: ConsentIn, refused: service.ChannelNotAccepted
) -> None:
    """A registration through a channel not accepted here: nothing is stored, the
    attempt is kept (committed on its own) for the enterprise's access log."""
    event = AuditEvent(
        client_id=caller.client_id,
        route=route_of(request),
        decision="deny",
        reason=f"{refused.type_slug}:{refused.extensions['channel']}",
        credit_code=body.credit_code,
        purpose=body.purpose,
    )
    await record(request, event)


@router.post(
    "/v1/consents",
    status_code=201,
    summary="Register an enterprise's consent",
    responses={
        **answer_docs(
            Consent,
            "The consent registered (or, for a retried Idempotency-Key, the first answer)",
            status=201,
        ),
        **_PROBLEMS,
    },
)
async def create_consent(
    request: Request,
    caller: ConsentWriter,
    engine: EngineDep,
    rules: ConsentRulesDep,
    _: JsonOnly,
    body: Annotated[ConsentIn, Body()],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    try:
        return await _register(request, caller, engine, rules, body, idempotency_key)
    except service.ChannelNotAccepted as refused:
        await _audit_refused(request, caller, body, refused)
        raise


async def _register(
    request: Request,
    caller: Caller,
    engine: AsyncEngine,
    rules: ConsentRules,
    body: ConsentIn,
    idempotency_key: str | None,
) -> Response:
    raw = await request.body()
    async with engine.begin() as conn:
        if idempotency_key is not None:
            key = check_key(idempotency_key)
            fingerprint = request_digest("POST", request.url.path, raw)
            replay = await conn.run_sync(begin, caller.client_id, key, fingerprint)
            if isinstance(replay, Replay):
                first = orjson.loads(replay.body)
                await _audit(request, conn, caller, first, replay.body, replayed=True)
                return Response(
                    replay.body,
                    replay.status_code,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        consent = await conn.run_sync(service.create, caller, body, rules)
        answer = orjson.dumps(consent)
        if idempotency_key is not None:
            await conn.run_sync(finish, caller.client_id, idempotency_key, 201, answer)
        await _audit(request, conn, caller, consent, answer)
    return Response(answer, 201, media_type="application/json")


@router.get(
    "/v1/consents/{consent_id}",
    summary="One consent and its history",
    responses={**answer_docs(Consent, "The consent and its history"), **_PROBLEMS},
)
async def get_consent(consent_id: str, caller: ConsentWriter, engine: EngineDep) -> Response:
    async with engine.connect() as conn:
        return _json(await conn.run_sync(service.get, caller, consent_id))


@router.get(
    "/v1/consents",
    summary="Consents the caller granted, holds or witnessed",
    description=(
        "Oldest change first. Each item's `change` names its latest event "
        "(`consent.created`, `consent.revoked`). Poll with `changed_since` and then "
        "follow `next_cursor` (passed back as `cursor`) until it is null: a bank "
        "learns of every revocation this way."
    ),
    responses={
        **answer_docs(ConsentPage, "One page of consents, oldest change first"),
        **_PROBLEMS,
    },
)
async def list_consents(
    caller: ConsentWriter,
    engine: EngineDep,
    credit_code: CreditCodeQuery = None,
    changed_since: Annotated[Rfc3339 | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    code = checked_code(credit_code) if credit_code is not None else None
    async with engine.connect() as conn:
        page = await conn.run_sync(
            lambda sync: service.list_for(
                sync,
                caller,
                credit_code=code,
                changed_since=changed_since,
                cursor=cursor,
                limit=limit,
            )
        )
    return _json(page)


@router.post(
    "/v1/consents/{consent_id}/revoke",
    summary="Revoke; effective for the very next request",
    responses={**answer_docs(Consent, "The consent, now revoked"), **_PROBLEMS},
)
async def revoke_consent(
    consent_id: str,
    request: Request,
    caller: ConsentWriter,
    engine: EngineDep,
    redis: RedisDep,
    _: JsonOnly,
    body: Annotated[RevokeIn, Body()],
) -> Response:
    # Marked before it commits: once this answers, no worker grants from its copy.
    await mark_changed(redis, consent_id)
    async with engine.begin() as conn:
        consent = await conn.run_sync(service.revoke, caller, consent_id, body.reason)
        answer = orjson.dumps(consent)
        await _audit(request, conn, caller, consent, answer)
    return Response(answer, media_type="application/json")
