"""A bank's event, enqueued in the transaction of what caused it.

An event goes to the consent's grantee bank only when that bank has a
webhook; its `event_id` is made here, once, so every retry of the delivery
carries the same one and the bank can drop duplicates.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection

from gateway.outbox import enqueue
from gateway.webhooks import repository

DESTINATION = "webhook"  # the outbox's destination for every bank's events
EventType = Literal["consent.revoked", "consent.expired", "enterprise.changed"]


def enqueue_event(
    conn: Connection,
    event_type: EventType,
    *,
    client_id: str,
    consent_id: str,
    credit_code: str,
    occurred_at: datetime,
    data_version: int | None = None,
) -> str | None:
    """The event's id, or None when the bank has no webhook (nothing is queued)."""
    if repository.webhook_url(conn, client_id) is None:
        return None
    event_id = f"evt_{secrets.token_urlsafe(16)}"
    payload: dict[str, object] = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(),
        "consent_id": consent_id,
        "credit_code": credit_code,
        "client_id": client_id,
    }
    if data_version is not None:
        payload["data_version"] = data_version
    enqueue(conn, DESTINATION, event_type, payload)
    return event_id


def note_baseline(conn: Connection, consent_id: str, credit_code: str) -> None:
    """A monitoring consent starts from its enterprise's data as it is now: only
    later changes are `enterprise.changed`."""
    version = repository.data_version(conn, credit_code)
    if version is not None:
        repository.note_version(conn, consent_id, version, None, datetime.now(UTC))
