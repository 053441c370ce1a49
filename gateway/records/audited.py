"""Every record line written is audited for its enterprise, with the batch that stores it.

One entry per line naming an enterprise (credit code, category, the
department's record id, the version, the outcome), so the enterprise's access
log shows who delivered, changed or tried to change its records. The entries
go into the audit chain in the batch's own transaction, as one append after
the records are written: the head row's lock held only from that append to
the commit. On PostgreSQL a batch of many lines is written with COPY (`chain.append_linked`,
docs/performance.md "Audit entries of an ingest batch by COPY").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from gateway.audit.chain import AuditEvent, append_many
from gateway.keys.store import LoadedKey

_REASON_MAX = 200  # audit_entries.reason


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


def _decision(line: Written) -> str:
    return "deny" if line.outcome == "rejected" else "allow"


def _reason(category: str, line: Written) -> str:
    """`record <outcome>: <category> <record id> v<version>[: why refused]`."""
    version = f" v{line.version}" if line.version else ""
    text = f"record {line.outcome}: {category} {line.record_id or '-'}{version}"
    if line.reason:
        text += f": {line.reason}"
    return text[:_REASON_MAX]
