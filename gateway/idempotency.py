"""`Idempotency-Key` for POSTs that create things.

The same key and body again returns the first answer and creates nothing;
the same key with another body is 422; the same key while the first request
still runs is 409. Keys are kept 24 hours. A request that crashed leaves its
key `in_progress`; after `abandon_after` another attempt may take it over
(the operations behind it are themselves idempotent, so running again is safe).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.errors import BadRequest, Conflict, InvalidValue
from gateway.store.tables import idempotency_keys

KEEP = timedelta(hours=24)
ABANDON_AFTER = timedelta(minutes=10)
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: bytes


def request_digest(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise BadRequest("Idempotency-Key: 1-200 visible ASCII characters")
    return key


def begin(conn: Connection, client_id: str, key: str, digest: str) -> Replay | None:
    """Claim the key; None means go ahead, a Replay means answer with it."""
    now = datetime.now(UTC)
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - KEEP))
    # The key already exists when the insert fails; then it is looked at below.
    with contextlib.suppress(IntegrityError), conn.begin_nested():
        conn.execute(
            insert(idempotency_keys).values(
                client_id=client_id, key=key, request_sha256=digest,
                state="in_progress", created_at=now,
            )
        )  # fmt: skip
        return None
    row = conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
        )
    ).one()
    if row.request_sha256 != digest:
        raise InvalidValue("Idempotency-Key was used with another request body")
    if row.state == "done":
        return Replay(row.status_code, row.body)
    created = row.created_at
    if now - created < ABANDON_AFTER:
        raise Conflict("a request with this Idempotency-Key is still in progress")
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key)
        .values(created_at=now)
    )
    return None


def finish(conn: Connection, client_id: str, key: str, status_code: int, body: bytes) -> None:
    conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key)
        .values(state="done", status_code=status_code, body=body)
    )


def release(conn: Connection, client_id: str, key: str) -> None:
    """The request failed before answering: let a retry run it."""
    conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
        )
    )
