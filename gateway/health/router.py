from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from gateway.apidocs import answer_docs
from gateway.deps import EngineDep, RedisDep, SettingsDep
from gateway.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA
from gateway.health.schemas import Health, Readiness
from gateway.health.service import check_database, check_redis
from gateway.metrics import render_latest

router = APIRouter(tags=["operations"])
# Apart, so an operator can leave it out (XYD_PUBLIC_METRICS=false).
metrics_router = APIRouter(tags=["operations"])


def _json(
    body: dict[str, Any], status: int = 200, media_type: str = "application/json"
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type)


@router.get(
    "/healthz",
    summary="The process is up",
    responses=answer_docs(Health, "The process is up"),
)
async def healthz() -> Response:
    return _json({"status": "ok"})


@router.get(
    "/readyz",
    summary="Database and (when configured) Redis are reachable",
    responses={
        **answer_docs(Readiness, "Every dependency answered"),
        503: {
            "description": "A dependency is down; the problem names which",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        },
    },
)
async def readyz(settings: SettingsDep, engine: EngineDep, redis: RedisDep) -> Response:
    timeout = settings.readiness_timeout_s
    checks = [await check_database(engine, timeout)]
    if redis is not None:
        checks.append(await check_redis(redis, timeout))
    down = [c for c in checks if not c.ok]
    summary = {c.name: c.detail for c in checks}
    if not down:
        return _json({"status": "ready", "checks": summary})
    names = " and ".join(c.name for c in down)
    return _json(
        {
            "type": PROBLEM_BASE + "dependency-unavailable",
            "title": "A dependency is unavailable",
            "status": 503,
            "detail": f"not ready: {names} down",
            "down": [c.name for c in down],
            "checks": summary,
        },
        status=503,
        media_type=PROBLEM_MEDIA_TYPE,
    )


@metrics_router.get(
    "/metrics",
    summary="Prometheus exposition, aggregated over worker processes",
    # Documented as text only: no application/json entry.
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
