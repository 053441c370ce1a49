"""SQL of the audit trail's readers and the sealer: today's counts,
checkpoints stored off the request path and exported to the witness. Works on a
sync Connection inside the caller's transaction; it never commits.

Appending to the chain and verifying it keep their SQL in chain.py (the
chain's own repository: its PostgreSQL statement is on the hot path), and
kept reports theirs in kept.py."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, func, select, text, update

from gateway.audit.checkpoints import Checkpoint
from gateway.store.tables import audit_checkpoints, audit_entries, clients


def seq_bounds(conn: Connection) -> tuple[int | None, int | None]:
    """The first and last sequence numbers in the trail (None, None when empty)."""
    low, high = conn.execute(
        select(func.min(audit_entries.c.seq), func.max(audit_entries.c.seq))
    ).one()
    return low, high


def first_from(conn: Connection, seq: int) -> Row[int, str] | None:
    """(seq, at) of the first entry at or after `seq`."""
    return conn.execute(
        select(audit_entries.c.seq, audit_entries.c.at)
        .where(audit_entries.c.seq >= seq)
        .order_by(audit_entries.c.seq)
        .limit(1)
    ).first()


def allowed_counts(
    conn: Connection, first: int, routes: Collection[str], start: datetime, end: datetime
) -> Sequence[Row[str, str | None, str | None, str, int]]:
    """(client_id, credit_code, consent_id, route, entries) of the `allow`
    entries of `routes` from seq `first` on, timed in [start, end)."""
    return conn.execute(
        select(
            audit_entries.c.client_id,
            audit_entries.c.credit_code,
            audit_entries.c.consent_id,
            audit_entries.c.route,
            func.count(),
        )
        .where(
            audit_entries.c.seq >= first,
            audit_entries.c.decision == "allow",
            audit_entries.c.route.in_(list(routes)),
            audit_entries.c.at >= start.isoformat(timespec="microseconds"),
            audit_entries.c.at < end.isoformat(timespec="microseconds"),
        )
        .group_by(
            audit_entries.c.client_id,
            audit_entries.c.credit_code,
            audit_entries.c.consent_id,
            audit_entries.c.route,
        )
    ).all()


def org_codes(conn: Connection, client_ids: set[str]) -> dict[str, str | None]:
    if not client_ids:
        return {}
    rows = conn.execute(
        select(clients.c.client_id, clients.c.org_code).where(
            clients.c.client_id.in_(sorted(client_ids))
        )
    )
    return {row.client_id: row.org_code for row in rows}


_STORE = text(
    "INSERT INTO audit_checkpoints (seq, entry_hash, signed) VALUES (:seq, :entry_hash, :signed)"
    " ON CONFLICT (seq) DO NOTHING"
)
_MISSING = text(
    "SELECT e.seq, e.entry_hash FROM audit_entries e"
    " WHERE e.seq >= :low AND e.seq < :high AND e.seq % :every = 0"
    " AND NOT EXISTS (SELECT 1 FROM audit_checkpoints c WHERE c.seq = e.seq)"
    # Never at or below what the witness holds: a checkpoint missing there was
    # taken away, and signing what the store now says would hide a rewrite.
    " AND e.seq > COALESCE("
    "(SELECT MAX(x.seq) FROM audit_checkpoints x WHERE x.exported_at IS NOT NULL), 0)"
    " ORDER BY e.seq"
)


def missing_checkpoints(conn: Connection, low: int, high: int, every: int) -> list[tuple[int, str]]:
    """(seq, hash) of each interval entry in [low, high) that has no checkpoint,
    above the last one exported to the witness."""
    rows = conn.execute(_MISSING, {"low": low, "high": high, "every": every})
    return [(int(row.seq), str(row.entry_hash)) for row in rows]


def store_checkpoints(conn: Connection, made: Sequence[Checkpoint]) -> None:
    """Store `made`; one already stored at its seq is kept as it is."""
    conn.execute(_STORE, [{"seq": c.seq, "entry_hash": c.head, "signed": c.signed} for c in made])


def unexported_checkpoints(conn: Connection, limit: int) -> list[Checkpoint]:
    """Stored checkpoints the witness has not been given yet, oldest first."""
    table = audit_checkpoints.c
    rows = conn.execute(
        select(table.seq, table.entry_hash, table.signed)
        .where(table.exported_at.is_(None))
        .order_by(table.seq)
        .limit(limit)
    )
    return [Checkpoint(row.seq, row.entry_hash, row.signed) for row in rows]


def mark_exported(conn: Connection, seqs: Collection[int], at: datetime) -> None:
    conn.execute(
        update(audit_checkpoints)
        .where(audit_checkpoints.c.seq.in_(list(seqs)))
        .values(exported_at=at)
    )
