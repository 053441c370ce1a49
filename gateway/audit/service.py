"""Recording decisions from the request path: committed before the answer leaves."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.chain import AuditEvent, append
from gateway.errors import DependencyUnavailable
from gateway.identity.keys import KeyError_
from gateway.identity.service import Identity
from gateway.logs import request_id_var

log = logging.getLogger("xyd.audit")
CHECKPOINT_EVERY = 100


def route_of(request: Request) -> str:
    """`METHOD /template`: how audit entries and config/rates.yaml name a route."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def record(request: Request, event: AuditEvent) -> int:
    """Append `event` in its own committed transaction; 503 if that is not possible.

    The caller sends nothing protected until this returns: no audit, no answer.
    """
    identity: Identity = request.app.state.identity
    if event.request_id is None:
        event = replace(event, request_id=request_id_var.get())
    try:
        ring = await identity.keys.current()
        signer = ring.signing_key("audit", datetime.now(UTC))
        async with request.app.state.engine.begin() as conn:
            return int(
                await conn.run_sync(append, event, signer=signer, checkpoint_every=CHECKPOINT_EVERY)
            )
    except (SQLAlchemyError, OSError, KeyError_) as exc:
        log.error("audit write failed; refusing the request", exc_info=True)
        raise DependencyUnavailable(
            "the audit trail cannot be written; nothing was disclosed"
        ) from exc


async def record_allowed(
    request: Request,
    client_id: str,
    body: bytes,
    *,
    reason: str | None = None,
    credit_code: str | None = None,
    consent_id: str | None = None,
    purpose: str | None = None,
) -> int:
    """An allowed answer on this route, with the digest of exactly what is sent."""
    return await record(
        request,
        AuditEvent(
            client_id=client_id,
            route=route_of(request),
            decision="allow",
            reason=reason,
            credit_code=credit_code,
            consent_id=consent_id,
            purpose=purpose,
            response_sha256=digest(body),
        ),
    )
