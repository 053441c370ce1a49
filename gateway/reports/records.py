"""Reading one enterprise's current records for a report: two indexed queries, Core only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from gateway.store.tables import enterprises, ingest_runs, record_versions, records
from gateway.timeutil import aware


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
            updated_at=aware(row.updated_at),
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
    return {category: aware(at) for category, at in rows if at is not None}
