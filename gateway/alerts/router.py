from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response, StreamingResponse

from gateway.alerts import service
from gateway.alerts.schemas import AlertDetail, AlertPage, stream_docs
from gateway.apidocs import answer_docs
from gateway.audit.service import allowed, record_with
from gateway.deps import EngineDep
from gateway.enterprises.service import checked_code
from gateway.errors import problem_docs
from gateway.identity.deps import AlertReader, AlertWriter
from gateway.params import JSON_ONLY_DOC, CreditCodeQuery, JsonOnly, Rfc3339

router = APIRouter(tags=["alerts"])
STREAM_POLL_S = 1.0
HEARTBEAT_S = 15.0
_PROBLEMS = problem_docs(
    {
        401: "Missing, invalid, expired or revoked token",
        403: "Token lacks alerts:read (or alerts:write to work an alert)",
        404: "No such alert",
        409: "The alert's status does not allow this",
        422: "A filter, limit, cursor or note is invalid; detail says which",
        429: "Rate limited; Retry-After and RateLimit say when to come back",
    }
)
_WORK_PROBLEMS = {**_PROBLEMS, **problem_docs({400: "The body is not JSON", **JSON_ONLY_DOC})}
AlertId = Annotated[str, Path(max_length=40)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    note: Annotated[str, Field(min_length=1, max_length=2000)]


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/v1/alerts",
    summary="Alerts, newest change first",
    responses={**answer_docs(AlertPage, "One page of alerts"), **_PROBLEMS},
)
async def list_alerts(
    caller: AlertReader,
    engine: EngineDep,
    status: Annotated[str | None, Query(max_length=14)] = None,
    severity: Annotated[str | None, Query(max_length=10)] = None,
    rule: Annotated[str | None, Query(max_length=40)] = None,
    credit_code: CreditCodeQuery = None,
    since: Annotated[Rfc3339 | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    code = checked_code(credit_code) if credit_code is not None else None
    async with engine.connect() as conn:
        page = await conn.run_sync(
            lambda sync: service.page(
                sync, status=status, severity=severity, rule=rule, credit_code=code,
                since=since, cursor=cursor, limit=limit,
            )
        )  # fmt: skip
    return _json(page)


@router.get(
    "/v1/alerts/stream",
    summary="Server-Sent Events of new and changed alerts",
    description=(
        "Each `alert` event carries the alert as JSON and its revision as the event id; "
        "reconnect with `Last-Event-ID` to resume. A comment line every 15 s keeps "
        "proxies from closing the connection."
    ),
    # Documented as an event stream only: no application/json entry.
    response_class=Response,
    responses={
        200: {
            "description": "`alert` events, each one alert (as in the list) as JSON",
            "content": {"text/event-stream": stream_docs()},
        },
        **_PROBLEMS,
    },
)
async def stream_alerts(
    request: Request,
    caller: AlertReader,
    engine: EngineDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else None

    async def events() -> AsyncIterator[bytes]:
        # Without a cursor, from now on: a client loads the current list by GET first.
        feed = service.ChangeFeed(start if start is not None else service.current_revision())
        idle = 0.0
        yield b": connected\n\n"
        while not await request.is_disconnected():
            async with engine.connect() as conn:
                changed = await conn.run_sync(feed.take)
            for alert in changed:
                yield b"event: alert\nid: %d\ndata: %s\n\n" % (
                    alert["revision"],
                    orjson.dumps(alert),
                )
            idle = 0.0 if changed else idle + STREAM_POLL_S
            if idle >= HEARTBEAT_S:
                idle = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/alerts/{alert_id}",
    summary="One alert with its evidence and history",
    responses={**answer_docs(AlertDetail, "The alert and its history"), **_PROBLEMS},
)
async def get_alert(alert_id: AlertId, caller: AlertReader, engine: EngineDep) -> Response:
    async with engine.connect() as conn:
        return _json(await conn.run_sync(service.get, alert_id))


async def _work(
    request: Request,
    engine: AsyncEngine,
    alert_id: str,
    action: service.Action,
    actor: str,
    note: str,
) -> Response:
    async with engine.begin() as conn:
        alert = await conn.run_sync(service.work, alert_id, action, actor, note)
        answer = orjson.dumps(alert)
        # In the same transaction: the alert is worked and audited, or neither.
        event = allowed(
            request, actor, answer, reason=service.audit_reason(alert),
            credit_code=alert["credit_code"],
        )  # fmt: skip
        await record_with(request, conn, event)
    return Response(answer, media_type="application/json")


@router.post(
    "/v1/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an open alert",
    responses={**answer_docs(AlertDetail, "The alert, now acknowledged"), **_WORK_PROBLEMS},
)
async def acknowledge_alert(
    alert_id: AlertId,
    request: Request,
    caller: AlertWriter,
    engine: EngineDep,
    _: JsonOnly,
    body: Annotated[NoteIn, Body()],
) -> Response:
    return await _work(request, engine, alert_id, "acknowledge", caller.client_id, body.note)


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    summary="Resolve an alert, with a note",
    responses={**answer_docs(AlertDetail, "The alert, now resolved"), **_WORK_PROBLEMS},
)
async def resolve_alert(
    alert_id: AlertId,
    request: Request,
    caller: AlertWriter,
    engine: EngineDep,
    _: JsonOnly,
    body: Annotated[NoteIn, Body()],
) -> Response:
    return await _work(request, engine, alert_id, "resolve", caller.client_id, body.note)
