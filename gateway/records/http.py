"""Ingest a posted NDJSON batch: the same Ingestor as `xyd ingest`, per-line results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from pydantic import Field
from sqlalchemy import Engine

from gateway.apidocs import Doc, sometimes
from gateway.audit.service import AuditUnavailable, route_of
from gateway.errors import Forbidden
from gateway.idempotency import Replay, begin, finish, release, request_digest
from gateway.identity.clients import get_client
from gateway.identity.keys import KeyError_
from gateway.identity.tokens import Caller
from gateway.logs import request_id_var
from gateway.pii_keys import KeyRing
from gateway.records.audited import WriteAudit
from gateway.records.binding import writer_for
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, LineOutcome, OutcomeName
from gateway.state import state_of
from policies.departments import Writer


class LineResult(Doc):
    line: int = Field(ge=1)
    outcome: OutcomeName
    record_id: str = sometimes("The department's record id, when the line named one")
    version: int = sometimes("The version stored (accepted, updated, duplicate)")
    reason: str = sometimes("Why the line was rejected")


class Counts(Doc):
    accepted: int
    updated: int
    duplicate: int
    rejected: int


class IngestAnswer(Doc):
    """What POST /v1/records/{category} answers (documentation): `ingest_batch`'s members."""

    category: str
    run_id: str
    summary: Counts
    results: list[LineResult] = Field(description="One per line, in line order")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Who delivers a batch: the department its lines are bound to, and its audit."""

    writer: Writer
    audit: WriteAudit


async def delivery(request: Request, caller: Caller) -> Delivery:
    """The caller's department (403 when its client is registered for none) and
    how its lines are audited; the client is read afresh, so a change to its
    registration holds from the next batch."""
    state = state_of(request)
    async with state.engine.connect() as conn:
        client = await conn.run_sync(get_client, caller.client_id)
    writer = writer_for(client, state.departments) if client else None
    if writer is None:
        raise Forbidden(
            "this department client is registered for no department in departments.yaml; "
            "register it with `xyd clients create --department … --categories …`"
        )
    try:
        signer = await state.audit.pinned_signer()
    except KeyError_ as exc:
        raise AuditUnavailable("the audit trail cannot be written; nothing was stored") from exc
    every = state.settings.audit_checkpoint_every
    audit = WriteAudit(caller.client_id, route_of(request), signer, every, request_id_var.get())
    return Delivery(writer, audit)


def ingest_batch(
    engine: Engine,
    pii_key: bytes,
    batch_size: int,
    category: str,
    body: bytes,
    keys: KeyRing | None,
    delivery: Delivery,
) -> dict[str, Any]:
    outcomes: list[LineOutcome] = []
    ingestor = Ingestor(
        engine,
        category,
        pii_key,
        batch_size,
        keys=keys,
        writer=delivery.writer,
        audit=delivery.audit,
    )
    summary = ingestor.run(read_ndjson(body.splitlines()), source="api", on_outcome=outcomes.append)
    return {
        "category": category,
        "run_id": summary.run_id,
        "summary": {
            name: summary.counts[name] for name in ("accepted", "updated", "duplicate", "rejected")
        },
        "results": [
            {
                "line": o.line,
                "outcome": o.outcome,
                **({"record_id": o.record_id} if o.record_id else {}),
                **({"version": o.version} if o.version else {}),
                **({"reason": o.reason} if o.reason else {}),
            }
            for o in outcomes
        ],
    }


def ingest_idempotently(
    engine: Engine,
    pii_key: bytes,
    batch_size: int,
    *,
    client_id: str,
    key: str | None,
    category: str,
    path: str,
    body: bytes,
    keys: KeyRing | None,
    delivery: Delivery,
) -> tuple[int, bytes, bool]:
    """(status, body, replayed). Runs in a worker thread: all of it is blocking I/O."""

    def ingest() -> bytes:
        return orjson.dumps(
            ingest_batch(engine, pii_key, batch_size, category, body, keys, delivery)
        )

    if key is None:
        answer = ingest()
        return 200, answer, False
    with engine.begin() as conn:
        replay = begin(conn, client_id, key, request_digest("POST", path, body))
    if isinstance(replay, Replay):
        return replay.status_code, replay.body, True
    try:
        answer = ingest()
    except BaseException:
        with engine.begin() as conn:
            release(conn, client_id, key)
        raise
    with engine.begin() as conn:
        finish(conn, client_id, key, 200, answer)
    return 200, answer, False
