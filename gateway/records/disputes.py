"""Disputes (异议): an enterprise objects to a record; the report says so until resolved.

Platforms (on the enterprise's behalf), the enterprise's own person on the
portal (a `PortalPrincipal`, recorded by its keyed hash, on its own
enterprise's records only) and the department that delivered the record open
them; that department alone resolves them: `upheld` (it then
delivers the corrected record, stored as a new version) or `rejected`. A
department is the one its client is registered for, never one it names. Opening and
resolving bump the enterprise's `data_version`, so no cached report hides
the change. The SQL is in `dispute_repository`; the caller owns the transaction.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, Row

from gateway.apidocs import Doc
from gateway.consents.principal import PortalPrincipal
from gateway.enterprises import repository as enterprise_rows
from gateway.errors import Conflict, Forbidden, NotFound
from gateway.identity.clients import get_client
from gateway.identity.tokens import Caller
from gateway.records import dispute_repository as repository

OPENERS = frozenset({"department", "platform", "portal"})
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


def _render(row: Row[Any]) -> dict[str, Any]:
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
        enterprise_rows.bump_data_version(conn, credit_code, now)


def open_dispute(
    conn: Connection,
    caller: Caller | PortalPrincipal,
    category: str,
    record_id: int,
    body: DisputeIn,
) -> dict[str, Any]:
    if caller.client_type not in OPENERS:
        raise Forbidden("only a department, a platform or the enterprise may open a dispute")
    record = repository.record_of(conn, category, record_id)
    # The enterprise's person sees no other enterprise's records: unknown, as a missing one.
    theirs = isinstance(caller, PortalPrincipal) and (
        record is None or record.credit_code != caller.credit_code
    )
    if record is None or theirs:
        raise UnknownRecord(f"no {category} record {record_id}")
    if not isinstance(caller, PortalPrincipal) and caller.client_type == "department":
        _require_owner(conn, caller, record.source_department, "opens a dispute on")
    already = repository.open_dispute_on(conn, record_id)
    if already is not None:
        raise Conflict(f"record {record_id} already has an open dispute", dispute_id=already)
    now = datetime.now(UTC)
    dispute_id = f"dsp_{secrets.token_urlsafe(12)}"
    repository.add(
        conn,
        dispute_id=dispute_id,
        record_id=record_id,
        credit_code=record.credit_code,
        opened_by=caller.actor if isinstance(caller, PortalPrincipal) else caller.client_id,
        opened_at=now,
        reason=body.reason,
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
    owner = repository.record_owner(conn, record_id)
    _require_owner(conn, caller, owner, "resolves a dispute on")
    if current["status"] != "open":
        raise Conflict(f"dispute {dispute_id} is already {current['status']}")
    now = datetime.now(UTC)
    repository.close(
        conn, dispute_id, outcome=body.outcome, by=caller.client_id, at=now, note=body.note
    )
    _bump(conn, current["credit_code"], now)
    return get(conn, dispute_id)


def _require_owner(conn: Connection, caller: Caller, owner: str, action: str) -> None:
    """Forbidden unless the caller's client is registered for `owner`."""
    client = get_client(conn, caller.client_id)
    if client is None or client.department != owner:
        raise Forbidden(f"only the department that delivered a record {action} it ({owner})")


def get(conn: Connection, dispute_id: str) -> dict[str, Any]:
    row = repository.dispute(conn, dispute_id)
    if row is None:
        raise UnknownDispute(f"no dispute {dispute_id}")
    return _render(row)


def of_enterprise(conn: Connection, credit_code: str, limit: int) -> list[dict[str, Any]]:
    """The enterprise's disputes, the latest opened first (the portal's list)."""
    rows = repository.disputes_of(conn, credit_code)
    return [_render(row) for row in reversed(rows[-limit:])]


def for_enterprise(conn: Connection, credit_code: str) -> dict[int, dict[str, Any]]:
    """Per record: its open dispute, else its latest resolved one (what a report shows)."""
    shown: dict[int, dict[str, Any]] = {}
    for row in repository.disputes_of(conn, credit_code):
        if shown.get(row.record_id, {}).get("status") != "open":
            shown[row.record_id] = _render(row)
    return shown
