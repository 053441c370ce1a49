"""All SQL of credit repair: applications, their evidence, the queue.
On the caller's Connection, in its transaction (nothing here commits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from gateway.store.tables import records, repair_applications, repair_evidence

_A = repair_applications
_E = repair_evidence
# Everything of a file but its bytes: what lists and pages show.
# (id, position, file_name, media_type, size, sha256), with the application's id or the bytes.
Facts = Row[str, int, int, str, str, int, str]
File = Row[int, int, str, str, int, str, bytes]
_EVIDENCE_FACTS = (_E.c.id, _E.c.position, _E.c.file_name, _E.c.media_type, _E.c.size, _E.c.sha256)


def record_facts(conn: Connection, record_id: int) -> Row[int, str, str | None, str] | None:
    """A record's category, credit code and department."""
    return conn.execute(
        select(records.c.id, records.c.category, records.c.credit_code, records.c.source_department)
        .where(records.c.id == record_id)
    ).first()  # fmt: skip


def penalised(conn: Connection, department: str | None, limit: int) -> list[str]:
    """Credit codes with a penalty (of `department`, if given), in record order."""
    query = select(records.c.credit_code).where(
        records.c.category == "penalty", records.c.credit_code.isnot(None)
    )
    if department is not None:
        query = query.where(records.c.source_department == department)
    codes = conn.execute(query.order_by(records.c.id).limit(limit)).scalars()
    return list(dict.fromkeys(c for c in codes if c is not None))


def pending_on(conn: Connection, record_id: int) -> str | None:
    """The id of the record's pending application, if it has one."""
    found = conn.execute(
        select(_A.c.id).where(_A.c.record_id == record_id, _A.c.status == "pending")
    ).first()
    return None if found is None else str(found.id)


def pending_by_record(conn: Connection, credit_code: str) -> dict[int, str]:
    """The enterprise's pending applications by the record they are about."""
    rows = conn.execute(
        select(_A.c.record_id, _A.c.id).where(
            _A.c.credit_code == credit_code, _A.c.status == "pending"
        )
    )
    return {int(row.record_id): str(row.id) for row in rows}


def add(conn: Connection, values: dict[str, Any], files: Sequence[dict[str, Any]]) -> None:
    conn.execute(insert(_A).values(**values))
    if files:
        conn.execute(insert(_E), [{"application_id": values["id"], **f} for f in files])


def application(conn: Connection, application_id: str) -> Row[Any] | None:
    return conn.execute(select(_A).where(_A.c.id == application_id)).first()


def evidence_of(conn: Connection, application_ids: Sequence[str]) -> dict[str, list[Facts]]:
    """Each application's files (without their bytes), in the order given."""
    found: dict[str, list[Facts]] = {i: [] for i in application_ids}
    if not application_ids:
        return found
    rows = conn.execute(
        select(_E.c.application_id, *_EVIDENCE_FACTS)
        .where(_E.c.application_id.in_(list(application_ids)))
        .order_by(_E.c.application_id, _E.c.position)
    )
    for row in rows:
        found[row.application_id].append(row)
    return found


def evidence_file(conn: Connection, application_id: str, evidence_id: int) -> File | None:
    """One file with its bytes, if it belongs to the application."""
    return conn.execute(
        select(*_EVIDENCE_FACTS, _E.c.content).where(
            _E.c.id == evidence_id, _E.c.application_id == application_id
        )
    ).first()


def of_enterprise(conn: Connection, credit_code: str, limit: int) -> list[Row[Any]]:
    """The enterprise's applications, the latest first."""
    return list(
        conn.execute(
            select(_A)
            .where(_A.c.credit_code == credit_code)
            .order_by(_A.c.applied_at.desc(), _A.c.id)
            .limit(limit)
        )
    )


def queue(conn: Connection, department: str, status: str, limit: int) -> list[Row[Any]]:
    """A department's applications in `status`, the oldest first (the review order)."""
    return list(
        conn.execute(
            select(_A)
            .where(_A.c.department == department, _A.c.status == status)
            .order_by(_A.c.applied_at, _A.c.id)
            .limit(limit)
        )
    )


def decide(conn: Connection, application_id: str, values: dict[str, Any]) -> bool:
    """Record the decision if the application is still pending; False if it was not."""
    done = conn.execute(
        update(_A).where(_A.c.id == application_id, _A.c.status == "pending").values(**values)
    )
    return done.rowcount == 1
