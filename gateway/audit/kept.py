"""Reports kept with their audit entries, so the bytes sent can be sent again.

An issued report is a consent cut, shared by every request under consents to
the same sections that day, plus the request's own members (report id, time,
recipient, purpose, consent, validity) and the signature over both. The audit
writer stores the request's part (`issued_reports`, a few hundred bytes) in
the transaction of its audit entry, so a report is kept exactly when its
answer is audited, without a round trip of its own; on PostgreSQL both ride
the one `audit_append` statement. The cut (`report_cuts`) is written the
first time a process issues from it, keyed by its SHA-256.

A cut's content includes its report day (`as_of_date`), so it is only issued
from on that day: every report citing it was issued within a day of the cut's
`created_at`. `purge` relies on that to drop cuts by age alone, two days
behind the reports, with no join; and a process's memory of which cuts are
stored (`StoredCuts`) can never name one purged while still in use.

What is stored is what the bank received (masked personal fields only, as the
report holds them); nothing of it is logged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.tables import issued_reports, report_cuts

CUTS_REMEMBERED = 4096
CUT_MARGIN = timedelta(days=2)  # a cut outlives the reports citing it by this much


@dataclass(frozen=True, slots=True)
class KeptReport:
    """One issued report, as the audit writer stores it with the entry."""

    report_id: str
    client_id: str  # the recipient
    credit_code: str
    cut_sha256: str
    cut: bytes  # the cut's canonical JSON: written only if not stored yet
    own: bytes  # the request's own members as a canonical JSON object
    signature: str  # detached JWS over the report (cut and own members joined)
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class Issued:
    """A kept report read back."""

    report_id: str
    client_id: str
    credit_code: str
    cut: bytes
    own: bytes
    signature: str
    issued_at: datetime


class StoredCuts:
    """The digests of cuts this process knows are committed (bounded): their
    content is not sent again. Marked only after the commit that stored them."""

    def __init__(self, entries: int = CUTS_REMEMBERED) -> None:
        self._known: OrderedDict[str, None] = OrderedDict()
        self._entries = entries

    def unknown(self, kept: Iterable[KeptReport]) -> dict[str, bytes]:
        return {k.cut_sha256: k.cut for k in kept if k.cut_sha256 not in self._known}

    def stored(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self._known[digest] = None
            self._known.move_to_end(digest)
        while len(self._known) > self._entries:
            self._known.popitem(last=False)


# PostgreSQL: the batch's audit entries, its issued reports and any new cuts in
# one statement (one transaction, one round trip), as `audit_append` alone is
# for other routes. Neither insert reads what the other writes.
# `audit_append_keeping` (migration 0015) stores the reports' own rows and calls
# `audit_append`: one statement, one transaction, one round trip, planned once
# a session (as a statement with the insert in a WITH it cost 130 µs more of
# PostgreSQL's CPU a batch of one, as this function 50 µs; measured).
APPEND_KEEPING_PG = (
    "SELECT out_seq, out_hash FROM audit_append_keeping(%(batch)s::json, %(issued)s::json)"
)
# The first time a process issues from a cut, the cut goes in the same statement.
APPEND_KEEPING_WITH_CUTS_PG = (
    "WITH cuts AS (INSERT INTO report_cuts (sha256, content, created_at)"
    " SELECT c.sha256, c.content, now()"
    " FROM json_to_recordset(%(cuts)s::json) AS c(sha256 text, content text)"
    " ON CONFLICT (sha256) DO NOTHING)"
    " SELECT out_seq, out_hash FROM audit_append_keeping(%(batch)s::json, %(issued)s::json)"
)


def pg_statement(
    kept: Sequence[KeptReport], cuts: Mapping[str, bytes]
) -> tuple[str, dict[str, str]]:
    """The statement storing `kept` and `cuts` with a batch of audit entries
    (its `batch` parameter left to the caller), and its other parameters."""
    issued = [{**_row(k), "issued_at": k.issued_at.isoformat()} for k in kept]
    params = {"issued": orjson.dumps(issued).decode()}
    if not cuts:
        return APPEND_KEEPING_PG, params
    new = [{"sha256": digest, "content": content.decode()} for digest, content in cuts.items()]
    return APPEND_KEEPING_WITH_CUTS_PG, {**params, "cuts": orjson.dumps(new).decode()}


def store(conn: Connection, kept: Sequence[KeptReport], cuts: Mapping[str, bytes]) -> None:
    """The same rows in the caller's transaction (SQLite, and the sync path)."""
    if not kept:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    if cuts:
        now = datetime.now(UTC)
        conn.execute(
            dialect.insert(report_cuts).on_conflict_do_nothing(),
            [{"sha256": d, "content": c.decode(), "created_at": now} for d, c in cuts.items()],
        )
    conn.execute(issued_reports.insert(), [_row(k) for k in kept])


def _row(kept: KeptReport) -> dict[str, Any]:
    """One `issued_reports` row."""
    return {
        "report_id": kept.report_id,
        "client_id": kept.client_id,
        "credit_code": kept.credit_code,
        "cut_sha256": kept.cut_sha256,
        "own": kept.own.decode(),
        "signature": kept.signature,
        "issued_at": kept.issued_at,
    }


async def find(engine: AsyncEngine, report_id: str) -> Issued | None:
    """The kept report `report_id` with its cut, or None: whoever asks (the caller
    decides who may see it)."""
    query = (
        select(
            issued_reports.c.client_id,
            issued_reports.c.credit_code,
            issued_reports.c.own,
            issued_reports.c.signature,
            issued_reports.c.issued_at,
            report_cuts.c.content,
        )
        .join(report_cuts, report_cuts.c.sha256 == issued_reports.c.cut_sha256)
        .where(issued_reports.c.report_id == report_id)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Issued(
        report_id=report_id,
        client_id=row.client_id,
        credit_code=row.credit_code,
        cut=row.content.encode(),
        own=row.own.encode(),
        signature=row.signature,
        issued_at=row.issued_at,
    )


def purge(conn: Connection, issued_before: datetime) -> tuple[int, int]:
    """Delete reports issued before `issued_before` and the cuts no report can
    cite any more; (reports, cuts) deleted. In the caller's transaction."""
    reports = conn.execute(
        delete(issued_reports).where(issued_reports.c.issued_at < issued_before)
    ).rowcount
    cuts = conn.execute(
        delete(report_cuts).where(report_cuts.c.created_at < issued_before - CUT_MARGIN)
    ).rowcount
    return int(reports or 0), int(cuts or 0)


def as_members(issued: Issued) -> dict[str, Any]:
    """The report's members (cut and own) as values."""
    report: dict[str, Any] = orjson.loads(issued.cut)
    report.update(orjson.loads(issued.own))
    return report
