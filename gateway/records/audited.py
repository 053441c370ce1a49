"""Every record line written is audited for its enterprise, with the batch that stores it.

One entry per line naming an enterprise (credit code, category, the
department's record id, the version, the outcome), so the enterprise's access
log shows who delivered, changed or tried to change its records. The entries
go into the audit chain in the batch's own transaction, as one append after
the records are written: the head row's lock held only from that append to
the commit.

On PostgreSQL a batch's entries are linked here and written with COPY
(`_append_copied`) instead of through `audit_append`, whose PL/pgSQL loop
hashes and inserts them one statement at a time: for a thousand lines that
loop was about 16 µs of the server's CPU a line, a third of all it spent
storing a penalty record (docs/performance.md, "Audit entries of an ingest
batch by COPY"). The chain is the same either way: the numbers reserved by one
update of the head row under its lock, each entry hashed by `entry_hash` over
the one before it, the head moved to the last, checkpoints due signed in the
same transaction; `verify` recomputes every hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from gateway.audit import checkpoints
from gateway.audit.chain import AuditEvent, append_many, entry_hash
from gateway.keys.store import LoadedKey
from gateway.records import copytext
from gateway.store.bulk import copy_text

_REASON_MAX = 200  # audit_entries.reason
_ENTRY_COLUMNS = (
    "seq", "at", "client_id", "credit_code", "consent_id", "purpose", "route", "decision",
    "reason", "response_sha256", "request_id", "prev_hash", "entry_hash",
)  # fmt: skip
# The head row's lock, taken first and held to the commit, orders every
# writer's batches (as `audit_append` and `chain.append_linked` take it).
_RESERVE = "UPDATE audit_head SET seq = seq + %(n)s WHERE id = 1 RETURNING seq, entry_hash"
_ADVANCE = "UPDATE audit_head SET entry_hash = %(entry_hash)s WHERE id = 1"
# A sealer may sign the same interval first: same seq, same head.
_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, entry_hash, signed)"
    " VALUES (%(seq)s, %(entry_hash)s, %(signed)s) ON CONFLICT (seq) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Written:
    """One line's outcome, as its audit entry records it."""

    credit_code: str
    outcome: str  # accepted | updated | duplicate | rejected
    record_id: str | None
    version: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class WriteAudit:
    """Who writes (a client, or an operator's `xyd ingest` for a department), and how."""

    client_id: str
    route: str
    signer: LoadedKey | None
    checkpoint_every: int
    # The request's id, taken where the request runs: batches commit on a writer thread.
    request_id: str | None = None

    def append(self, conn: Connection, category: str, written: Sequence[Written]) -> None:
        """Append one entry per line, in the caller's transaction (committed with it)."""
        if not written:
            return
        if conn.dialect.name == "postgresql":
            self._append_copied(conn, category, written)
            return
        events = [
            AuditEvent(
                client_id=self.client_id,
                route=self.route,
                decision=_decision(line),
                reason=_reason(category, line),
                credit_code=line.credit_code,
                request_id=self.request_id,
            )
            for line in written
        ]
        append_many(conn, events, signer=self.signer, checkpoint_every=self.checkpoint_every)

    def _append_copied(self, conn: Connection, category: str, written: Sequence[Written]) -> None:
        """The entries reserved, linked here, COPYed, the head moved, checkpoints stored."""
        head_seq, previous = conn.exec_driver_sql(_RESERVE, {"n": len(written)}).one()
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        first = int(head_seq) - len(written) + 1
        lines, due = [], []
        for seq, line in enumerate(written, start=first):
            entry = {
                "seq": seq, "at": at, "client_id": self.client_id,
                "credit_code": line.credit_code, "consent_id": None, "purpose": None,
                "route": self.route, "decision": _decision(line),
                "reason": _reason(category, line), "response_sha256": None,
                "request_id": self.request_id, "prev_hash": previous,
            }  # fmt: skip
            entry["entry_hash"] = previous = entry_hash(entry)
            lines.append(copytext.line(entry.values()))
            if self.signer is not None and seq % self.checkpoint_every == 0:
                due.append(checkpoints.sign(seq, previous, self.signer))
        copy_text(conn, "audit_entries", _ENTRY_COLUMNS, "".join(lines).encode())
        conn.exec_driver_sql(_ADVANCE, {"entry_hash": previous})
        if due:
            rows = [{"seq": c.seq, "entry_hash": c.head, "signed": c.signed} for c in due]
            conn.exec_driver_sql(_CHECKPOINT, rows)


def _decision(line: Written) -> str:
    return "deny" if line.outcome == "rejected" else "allow"


def _reason(category: str, line: Written) -> str:
    """`record <outcome>: <category> <record id> v<version>[: why refused]`."""
    version = f" v{line.version}" if line.version else ""
    text = f"record {line.outcome}: {category} {line.record_id or '-'}{version}"
    if line.reason:
        text += f": {line.reason}"
    return text[:_REASON_MAX]
