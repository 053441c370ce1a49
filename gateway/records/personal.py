"""Sealed personal fields in the store: recover a record's, count them, re-encrypt them.

`record_versions.personal` holds a version's personal values sealed under a
key version (`gateway/keys/pii.py`), `personal_key_version` that version.
Re-encryption moves rows sealed under any other version onto the active
one, a bounded batch per transaction: a crash loses at most the batch in
flight, and running it again carries on where the committed batches stopped
(a row already under the active version is never selected again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, bindparam, func, select, update

from gateway.keys.pii import KeyRing, PersonalDataError, aad_for
from gateway.records.disputes import UnknownRecord
from gateway.store.tables import record_versions, records

_rv = record_versions.c


def recover(
    conn: Connection, keys: KeyRing, record_id: int, version: int | None = None
) -> dict[str, str]:
    """A record version's personal values in clear ({} when it has none), for lawful recovery.

    Raises UnknownRecord, or PersonalDataError when the value does not open.
    """
    wanted = records.c.version if version is None else version
    row = conn.execute(
        select(records.c.category, records.c.source_department, records.c.source_record_id)
        .add_columns(_rv.personal)
        .join(record_versions, _rv.record_id == records.c.id)
        .where(records.c.id == record_id, _rv.version == wanted)
    ).first()
    if row is None:
        raise UnknownRecord(f"no record {record_id} (version {version or 'current'})")
    if row.personal is None:
        return {}
    aad = aad_for(row.category, row.source_department, row.source_record_id)
    clear: dict[str, str] = orjson.loads(keys.open(row.personal, aad))
    return clear


def rows_per_key_version(conn: Connection) -> dict[int, int]:
    """How many record versions each key version seals."""
    rows = conn.execute(
        select(_rv.personal_key_version, func.count())
        .where(_rv.personal_key_version.isnot(None))
        .group_by(_rv.personal_key_version)
    ).all()
    return {int(version): int(count) for version, count in rows}


def reencrypt_batch(conn: Connection, keys: KeyRing, limit: int) -> int:
    """Re-seal up to `limit` rows not under the active version; return how many."""
    query = (
        select(
            _rv.record_id,
            _rv.version,
            _rv.personal,
            _rv.personal_key_version,
            records.c.category,
            records.c.source_department,
            records.c.source_record_id,
        )
        .join(records, records.c.id == _rv.record_id)
        .where(_rv.personal_key_version.isnot(None), _rv.personal_key_version != keys.active)
        .order_by(_rv.record_id, _rv.version)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # Two runs at once take different rows instead of waiting on each other.
        query = query.with_for_update(of=record_versions, skip_locked=True)
    changes: list[dict[str, Any]] = []
    for row in conn.execute(query):
        aad = aad_for(row.category, row.source_department, row.source_record_id)
        try:
            plain = keys.open(row.personal, aad)
        except PersonalDataError as exc:
            raise PersonalDataError(
                f"record {row.record_id} version {row.version}: {exc}"
            ) from None
        changes.append(
            {
                "b_id": row.record_id,
                "b_version": row.version,
                "b_old": row.personal_key_version,
                "b_sealed": keys.seal(plain, aad),
            }
        )
    if changes:
        conn.execute(
            update(record_versions)
            .where(
                and_(
                    _rv.record_id == bindparam("b_id"),
                    _rv.version == bindparam("b_version"),
                    _rv.personal_key_version == bindparam("b_old"),
                )
            )
            .values(personal=bindparam("b_sealed"), personal_key_version=keys.active),
            changes,
        )
    return len(changes)


@dataclass
class ReencryptSummary:
    active: int
    reencrypted: int = 0
    batches: int = 0
    remaining: dict[int, int] = field(default_factory=dict)


def reencrypt(
    engine: Engine,
    keys: KeyRing,
    batch_size: int,
    before_commit: Callable[[int], None] | None = None,
) -> ReencryptSummary:
    """Re-seal every row onto the active version, one committed transaction per batch.

    `before_commit(rows)` runs inside each batch's transaction (progress; an
    exception there rolls that batch back and stops, as a crash would).
    """
    summary = ReencryptSummary(keys.active)
    while True:
        with engine.begin() as conn:
            done = reencrypt_batch(conn, keys, batch_size)
            if done and before_commit is not None:
                before_commit(done)
        if not done:
            break
        summary.reencrypted += done
        summary.batches += 1
    with engine.connect() as conn:
        summary.remaining = rows_per_key_version(conn)
    return summary
