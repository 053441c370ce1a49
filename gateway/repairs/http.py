"""What the repair routes, the dashboard's review page and the portal share: the
writes run with their audit entry (`apply_audited`, `decide_audited`), the records
path bound to a request's actor, and an evidence file answered as an attachment.

The writes go through the records path, which COPYs on PostgreSQL: they run on
the sync engine in a thread, never on an `AsyncConnection.run_sync` connection.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import orjson
from fastapi import Request
from sqlalchemy import Connection
from starlette.responses import Response

from gateway.audit.chain import append_many
from gateway.audit.service import AuditUnavailable, allowed, route_of
from gateway.keys.store import KeyError_
from gateway.logs import request_id_var
from gateway.records.audited import WriteAudit
from gateway.state import GatewayState

from . import evidence, service


async def records_path(request: Request, actor: str, state: GatewayState) -> service.RecordsPath:
    """How this request writes records: as ingestion does, audited for `actor` (a
    client id, or `user:<name>` on the dashboard)."""
    try:
        signer = await state.audit.pinned_signer()
    except KeyError_ as exc:
        raise AuditUnavailable("the audit trail cannot be written; nothing was stored") from exc
    audit = WriteAudit(
        actor, route_of(request), signer, state.settings.audit_checkpoint_every,
        request_id_var.get(),
    )  # fmt: skip
    return service.RecordsPath(
        state.sync_engine, state.pii_key, state.pii_keys, state.departments, audit
    )


def audit_in(
    conn: Connection,
    request: Request,
    actor: str,
    path: service.RecordsPath,
    body: bytes,
    code: str,
    what: str,
) -> None:
    """The call's entry, in the transaction of the write it records: both or neither."""
    event = allowed(request, actor, body, reason=f"repair {what}", credit_code=code)
    audit = path.audit
    append_many(conn, [event], signer=audit.signer, checkpoint_every=audit.checkpoint_every)


def attachment(content: bytes, media_type: str, stem: str) -> Response:
    """A file to save, never to render: our own name, the sniffed type, nosniff."""
    name = f"{stem}.{evidence.EXTENSIONS.get(media_type, 'bin')}"
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


def limits_of(state: GatewayState) -> service.Limits:
    return service.Limits(state.settings.config_dir, state.settings.repair_review_days)


async def apply_audited(
    request: Request, state: GatewayState, applicant: service.Applicant, new: service.NewApplication
) -> dict[str, Any]:
    """`service.apply`, its commitment record and the call's audit entry (as
    `applicant.actor`) in one transaction; its errors as `service.apply`'s."""
    path = await records_path(request, applicant.actor, state)
    limits = limits_of(state)

    def write() -> dict[str, Any]:
        with state.sync_engine.begin() as conn:
            found = service.apply(conn, path, applicant, new, limits, datetime.now(UTC))
            what = f"{found['id']} applied"
            audit_in(
                conn, request, applicant.actor, path, orjson.dumps(found), new.credit_code, what
            )
            return found

    return await anyio.to_thread.run_sync(write)


async def decide_audited(
    request: Request,
    state: GatewayState,
    department: str,
    actor: str,
    application_id: str,
    decision: Literal["approve", "reject"],
    reason: str | None,
) -> dict[str, Any]:
    """`service.decide` (an approval's credit_repair record included) and the call's
    audit entry in one transaction; its errors as `service.decide`'s."""
    path = await records_path(request, actor, state)

    def write() -> dict[str, Any]:
        with state.sync_engine.begin() as conn:
            found = service.decide(
                conn, path, department, actor, application_id, decision, reason, datetime.now(UTC)
            )
            what = f"{application_id} {found['status']}"
            audit_in(conn, request, actor, path, orjson.dumps(found), found["credit_code"], what)
            return found

    return await anyio.to_thread.run_sync(write)
