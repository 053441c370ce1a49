"""All SQL of reports: one enterprise's current records (two indexed queries,
Core only), and the consent and data version each report request is checked
against (`ConsentReads`, batched, on the request path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import AsyncRowFactory, TupleRow, namedtuple_row
from sqlalchemy import Connection, Engine, and_, func, select

from gateway.consents.repository import CONSENTS_PG, ConsentRow, stored_from_row, stored_many
from gateway.db import Held
from gateway.store.tables import enterprises, ingest_runs, record_versions, records
from policies.consent import StoredConsent


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: int
    category: str
    source_department: str
    source_record_id: str
    subject_kind: str
    version: int
    effective_date: date | None
    updated_at: datetime
    data: dict[str, Any]


_RECORDS = (
    select(
        records.c.id,
        records.c.category,
        records.c.source_department,
        records.c.source_record_id,
        records.c.subject_kind,
        records.c.version,
        records.c.effective_date,
        records.c.updated_at,
        record_versions.c.data,
    )
    .select_from(
        records.join(
            record_versions,
            and_(
                record_versions.c.record_id == records.c.id,
                record_versions.c.version == records.c.version,
            ),
        )
    )
    .order_by(records.c.id)
)


def enterprise_row(conn: Connection, credit_code: str) -> dict[str, Any] | None:
    row = conn.execute(select(enterprises).where(enterprises.c.credit_code == credit_code)).first()
    return None if row is None else {str(k): v for k, v in row._mapping.items()}


def current_records(conn: Connection, credit_code: str) -> list[StoredRecord]:
    rows = conn.execute(_RECORDS.where(records.c.credit_code == credit_code))
    return [
        StoredRecord(
            id=row.id,
            category=row.category,
            source_department=row.source_department,
            source_record_id=row.source_record_id,
            subject_kind=row.subject_kind,
            version=row.version,
            effective_date=row.effective_date,
            updated_at=row.updated_at,
            data=dict(row.data),
        )
        for row in rows
    ]


def latest_feeds(conn: Connection) -> dict[str, datetime]:
    """Per category, when a department's last complete feed arrived."""
    rows = conn.execute(
        select(ingest_runs.c.category, func.max(ingest_runs.c.finished_at))
        .where(ingest_runs.c.complete.is_(True))
        .group_by(ingest_runs.c.category)
    )
    return {category: at for category, at in rows if at is not None}


Ask = tuple[str | None, str]  # (consent id from the request, credit code)
Found = tuple[StoredConsent | None, int | None]

_VERSIONS_PG = (
    "SELECT credit_code, data_version FROM enterprises WHERE credit_code = ANY(%(codes)s)"
)


# psycopg makes its named tuples at run time from the statement's columns, which
# CONSENTS_PG fixes: its rows are ConsentRows, though no checker can see that.
_CONSENT_ROWS = cast("AsyncRowFactory[ConsentRow]", namedtuple_row)


class ConsentReads:
    """For each ask, the consent as stored now and the enterprise's data version
    (None: no such enterprise); one round trip on PostgreSQL, two queries
    elsewhere, for any number of asks.

    Autocommit: no BEGIN before the reads and no ROLLBACK after; each read is its
    own snapshot, which is all a check needs. On PostgreSQL (picked once, here)
    both queries go in one pipeline on psycopg's asyncio connection, as
    driver-level SQL with one array parameter each: the speed path."""

    def __init__(self, engine: Engine) -> None:
        self._held = Held(engine, autocommit=True)

    async def consents_and_versions(self, asks: Sequence[Ask]) -> list[Found]:
        return await self._held.run(
            lambda pg: _consents_and_versions_pg(pg, asks),
            lambda conn: _consents_and_versions_core(conn, asks),
        )

    async def close(self) -> None:
        await self._held.close()


def _consents_and_versions_core(conn: Connection, asks: Sequence[Ask]) -> list[Found]:
    """`ConsentReads.consents_and_versions` on any store, in Core."""
    found = stored_many(conn, {consent_id for consent_id, _ in asks if consent_id})
    rows = conn.execute(
        select(enterprises.c.credit_code, enterprises.c.data_version).where(
            enterprises.c.credit_code.in_({code for _, code in asks})
        )
    )
    return _pair(asks, found, {code: int(version) for code, version in rows})


async def _consents_and_versions_pg(
    pg: AsyncConnection[TupleRow], asks: Sequence[Ask]
) -> list[Found]:
    ids = list({consent_id for consent_id, _ in asks if consent_id})
    codes = list({code for _, code in asks})
    consent_rows = pg.cursor(row_factory=_CONSENT_ROWS)
    version_rows = pg.cursor()
    async with pg.pipeline():
        if ids:
            await consent_rows.execute(CONSENTS_PG, {"ids": ids})
        await version_rows.execute(_VERSIONS_PG, {"codes": codes})
    found = {row.id: stored_from_row(row) for row in await consent_rows.fetchall()} if ids else {}
    versions = {code: int(version) for code, version in await version_rows.fetchall()}
    return _pair(asks, found, versions)


def _pair(
    asks: Sequence[Ask], found: dict[str, StoredConsent], versions: dict[str, int]
) -> list[Found]:
    return [
        (found.get(consent_id) if consent_id else None, versions.get(code))
        for consent_id, code in asks
    ]
