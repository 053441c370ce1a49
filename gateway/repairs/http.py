"""What the repair routes and the dashboard's review page share: the records path
bound to a request's actor, the call's audit entry in a write's transaction, and
an evidence file answered as an attachment."""

from __future__ import annotations

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
