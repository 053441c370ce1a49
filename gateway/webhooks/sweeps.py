"""The events nothing in a request causes, found by sweeping the store.

`consent.expired`: a consent whose validity ran out in the last
`EXPIRY_LOOKBACK` (a bank that sets a webhook today is not told of every
consent that ever expired), each once. `enterprise.changed`: an enterprise
under a live `post_loan_monitoring` consent whose data version moved past the
one its bank was last told of. Each sweep handles at most `limit` consents a
round and runs in one transaction: the events and what was told commit
together, and a second worker sweeping the same consent collides on
`webhook_notices` and rolls back instead of telling twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from gateway.webhooks import repository
from gateway.webhooks.events import enqueue_event

EXPIRY_LOOKBACK = timedelta(days=7)


def sweep_expired(conn: Connection, limit: int, now: datetime | None = None) -> int:
    """Enqueue `consent.expired` for each newly expired consent; how many."""
    now = now or datetime.now(UTC)
    rows = repository.newly_expired(conn, now - EXPIRY_LOOKBACK, now, limit)
    for row in rows:
        repository.remember_expired(conn, row.id, now)
        enqueue_event(
            conn,
            "consent.expired",
            client_id=row.grantee_client_id,
            consent_id=row.id,
            credit_code=row.credit_code,
            occurred_at=row.valid_until,
        )
    return len(rows)


def sweep_changed(conn: Connection, limit: int, now: datetime | None = None) -> int:
    """Enqueue `enterprise.changed` for each monitored enterprise with new data; how many.

    A consent first seen here (its baseline was not noted when it was made) is
    noted at the current version without an event.
    """
    now = now or datetime.now(UTC)
    sent = 0
    for row in repository.changed_monitored(conn, now, limit):
        version = int(row.data_version)
        told = None if row.told is None else int(row.told)
        if not repository.note_version(conn, row.id, version, told, now) or told is None:
            continue
        enqueue_event(
            conn,
            "enterprise.changed",
            client_id=row.grantee_client_id,
            consent_id=row.id,
            credit_code=row.credit_code,
            occurred_at=now,
            data_version=version,
        )
        sent += 1
    return sent
