"""Disputes (异议): an enterprise objects to a record; the report says so until resolved.

Platforms (on the enterprise's behalf) and the department that delivered
the record open them; that department alone resolves them: `upheld` (it then
delivers the corrected record, stored as a new version) or `rejected`. A
department is the one its client is registered for, never one it names. Opening and
resolving bump the enterprise's `data_version`, so no cached report hides
the change. SQL on a sync Connection; the caller owns the transaction.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, insert, select, update

from gateway.apidocs import Doc
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.clients import get_client
from gateway.identity.tokens import Caller
from gateway.store.tables import enterprises, record_disputes, records

OPENERS = frozenset({"department", "platform"})
RESOLVERS = frozenset({"department"})
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: Note = Field(description="What the enterprise says is wrong")


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    outcome: Literal["upheld", "rejected"]
    note: Note


class Dispute(Doc):
    """What the dispute routes answer (documentation): the members `_render` writes."""

    id: str
    record_id: int
    credit_code: str | None
    status: Literal["open", "upheld", "rejected"]
    reason: str
    opened_by: str
    opened_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str | None


class UnknownRecord(NotFound):
    type_slug, title = "unknown-record", "No such record"


class UnknownDispute(NotFound):
    type_slug, title = "unknown-dispute", "No such dispute"


def _render(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.isoformat()

    return {
        "id": row.id,
        "record_id": row.record_id,
        "credit_code": row.credit_code,
        "status": row.status,
        "reason": row.reason,
        "opened_by": row.opened_by,
        "opened_at": iso(row.opened_at),
        "resolved_by": row.resolved_by,
        "resolved_at": iso(row.resolved_at),
        "resolution_note": row.resolution_note,
    }


def _bump(conn: Connection, credit_code: str | None, now: datetime) -> None:
    if credit_code:
        conn.execute(
            update(enterprises)
            .where(enterprises.c.credit_code == credit_code)
            .values(data_version=enterprises.c.data_version + 1, updated_at=now)
        )


def open_dispute(
    conn: Connection, caller: Caller, category: str, record_id: int, body: DisputeIn
) -> dict[str, Any]:
    if caller.client_type not in OPENERS:
        raise Forbidden("only a department or a platform may open a dispute")
    record = conn.execute(
        select(records.c.id, records.c.credit_code, records.c.source_department).where(
            records.c.id == record_id, records.c.category == category
        )
    ).first()
    if record is None:
        raise UnknownRecord(f"no {category} record {record_id}")
    if caller.client_type == "department":
        _require_owner(conn, caller, record.source_department, "opens a dispute on")
    already = conn.execute(
        select(record_disputes.c.id).where(
            record_disputes.c.record_id == record_id, record_disputes.c.status == "open"
        )
    ).first()
    if already is not None:
        raise Conflict(f"record {record_id} already has an open dispute", dispute_id=already.id)
    now = datetime.now(UTC)
    dispute_id = f"dsp_{secrets.token_urlsafe(12)}"
    conn.execute(
        insert(record_disputes).values(
            id=dispute_id,
            record_id=record_id,
            credit_code=record.credit_code,
            opened_by=caller.client_id,
            opened_at=now,
            reason=body.reason,
            status="open",
        )
    )
    _bump(conn, record.credit_code, now)
    return get(conn, dispute_id)


def resolve(
    conn: Connection, caller: Caller, record_id: int, dispute_id: str, body: ResolutionIn
) -> dict[str, Any]:
    if caller.client_type not in RESOLVERS:
        raise Forbidden("only a department may resolve a dispute")
    current = get(conn, dispute_id)
    if current["record_id"] != record_id:
        raise UnknownDispute(f"no dispute {dispute_id} on record {record_id}")
    owner = conn.execute(
        select(records.c.source_department).where(records.c.id == record_id)
    ).scalar_one()
    _require_owner(conn, caller, owner, "resolves a dispute on")
    if current["status"] != "open":
        raise Conflict(f"dispute {dispute_id} is already {current['status']}")
    now = datetime.now(UTC)
    conn.execute(
        update(record_disputes)
        .where(record_disputes.c.id == dispute_id, record_disputes.c.status == "open")
        .values(
            status=body.outcome,
            resolved_by=caller.client_id,
            resolved_at=now,
            resolution_note=body.note,
        )
    )
    _bump(conn, current["credit_code"], now)
    return get(conn, dispute_id)


def _require_owner(conn: Connection, caller: Caller, owner: str, action: str) -> None:
    """Forbidden unless the caller's client is registered for `owner`."""
    client = get_client(conn, caller.client_id)
    if client is None or client.department != owner:
        raise Forbidden(f"only the department that delivered a record {action} it ({owner})")


def get(conn: Connection, dispute_id: str) -> dict[str, Any]:
    row = conn.execute(select(record_disputes).where(record_disputes.c.id == dispute_id)).first()
    if row is None:
        raise UnknownDispute(f"no dispute {dispute_id}")
    return _render(row)


def for_enterprise(conn: Connection, credit_code: str) -> dict[int, dict[str, Any]]:
    """Per record: its open dispute, else its latest resolved one (what a report shows)."""
    rows = conn.execute(
        select(record_disputes)
        .where(record_disputes.c.credit_code == credit_code)
        .order_by(record_disputes.c.opened_at)
    )
    shown: dict[int, dict[str, Any]] = {}
    for row in rows:
        if shown.get(row.record_id, {}).get("status") != "open":
            shown[row.record_id] = _render(row)
    return shown
