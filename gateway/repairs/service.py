"""Credit repair: apply, read, review. Plain functions on a sync `Connection`, the
caller owning the transaction (the API's routes, the dashboard's review page,
the enterprise portal's pages).

For the portal's repair pages:

- `penalties(conn, config_dir, credit_code, on)`: the enterprise's penalties,
  each eligible or not with the reason and earliest date in zh and en, and its
  pending application if any (`reports.build.report_day(now)` gives `on`, Chengdu's day);
- `commitment_text(config_dir)`: the commitment to show in full, and the
  `sha256` an acceptance names;
- evidence uploads: `evidence.read_bounded` (a body stopped at its limit),
  then `evidence.check_all(named, max_bytes, max_files, max_total)` (413, 415, 422);
- `http.apply_audited(request, state, Applicant(actor, "portal"), NewApplication(...))`:
  files it with its commitment record and audit entry in one transaction, on the
  sync engine in a thread (404 not this enterprise's penalty, 422 not repairable
  now or a stale commitment, 409 one is pending already); `apply` is the same on
  a sync Connection the caller owns;
- `of_enterprise(conn, credit_code)` and `get(conn, id, Viewer.enterprise(code))`:
  follow the review and read the decision and its reason (another
  enterprise's application is 404).

Who writes what: the commitment record is the credit office's (it keeps
credit commitments for every department: config/departments.yaml, and the
score model's commitment indicators are its), written when the application
is filed; the `credit_repair` record is the reviewing department's own,
bound by `records.binding.repair_reviewer`, written when it approves. Both go
through `Ingestor.store_in`, the records path: versions, data_version, audit.

Errors: `UnknownPenalty`/`UnknownApplication` (404; another department's
application is unknown to a reviewer), `NotRepairable` and `StaleCommitment`
(422), `Conflict` (409: pending already, decided already).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Row
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.errors import Conflict, InvalidValue, NotFound
from gateway.keys.pii import KeyRing
from gateway.records.audited import WriteAudit
from gateway.records.binding import repair_reviewer
from gateway.records.service import Ingestor
from gateway.reports.build import report_day
from gateway.reports.repository import current_records
from gateway.reports.sections import repairs as repair_decisions
from policies.departments import Departments, Writer

from . import repository
from .commitment import Commitment, load_commitment
from .eligibility import PenaltyEligibility, judge, publication_rules
from .evidence import Evidence

LIST_MAX = 100


class UnknownPenalty(NotFound):
    type_slug, title = "unknown-penalty", "No such penalty of this enterprise"


class UnknownApplication(NotFound):
    type_slug, title = "unknown-repair-application", "No such repair application"


class NotRepairable(InvalidValue):
    type_slug, title = "not-repairable", "The penalty cannot be repaired now"


class StaleCommitment(InvalidValue):
    type_slug, title = "commitment-not-current", "The commitment accepted is not the current text"


@dataclass(frozen=True, slots=True)
class Applicant:
    """Who files: a platform client (`actor` its client id) or the enterprise's person
    in the portal (`actor` e.g. `portal:<keyed hash of the subject>`)."""

    actor: str
    channel: Literal["platform", "portal"]


@dataclass(frozen=True, slots=True)
class NewApplication:
    credit_code: str
    record_id: int
    statement: str | None
    commitment_sha256: str
    evidence: list[Evidence]


@dataclass(frozen=True, slots=True)
class Limits:
    config_dir: Path
    review_days: int


@dataclass(frozen=True, slots=True)
class RecordsPath:
    """What writing a record through the records path takes: the same as ingestion."""

    engine: Engine
    pii_key: bytes
    keys: KeyRing | None
    departments: Departments
    audit: WriteAudit


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who reads an application: the reviewing department, or the enterprise."""

    department: str | None = None
    credit_code: str | None = None

    @classmethod
    def reviewer(cls, department: str) -> Viewer:
        return cls(department=department)

    @classmethod
    def enterprise(cls, credit_code: str) -> Viewer:
        return cls(credit_code=credit_code)

    def sees(self, row: Row[Any]) -> bool:
        if self.department is not None:
            return bool(row.department == self.department)
        return self.credit_code is not None and row.credit_code == self.credit_code


def commitment_text(config_dir: Path) -> Commitment:
    return load_commitment(config_dir)


def penalties(
    conn: Connection, config_dir: Path, credit_code: str, on: date
) -> list[tuple[PenaltyEligibility, str | None]]:
    """The enterprise's penalties: each judged for repair on `on`, with its pending
    application's id if one is pending."""
    stored = current_records(conn, credit_code)
    rules, decisions = publication_rules(config_dir), repair_decisions(stored)
    pending = repository.pending_by_record(conn, credit_code)
    return [
        (judge(record, rules, decisions, on), pending.get(record.id))
        for record in stored
        if record.category == "penalty"
    ]


def penalty_of(conn: Connection, credit_code: str, record_id: int) -> dict[str, Any] | None:
    """The penalty an application is about, as its current version says (for review pages)."""
    found = next((r for r in current_records(conn, credit_code) if r.id == record_id), None)
    return None if found is None else dict(found.data)


def find_repairable(
    conn: Connection, config_dir: Path, on: date, department: str | None = None, scan: int = 2000
) -> tuple[str, PenaltyEligibility] | None:
    """An enterprise and one of its penalties eligible for repair on `on` with none
    pending (of `department`, if given), among the first `scan` penalties: the
    demo's sample."""
    for code in repository.penalised(conn, department, scan):
        for judged, pending in penalties(conn, config_dir, code, on):
            wanted = department is None or judged.department == department
            if judged.eligibility.eligible and pending is None and wanted:
                return code, judged
    return None


def _judged(
    conn: Connection, config_dir: Path, new: NewApplication, on: date
) -> PenaltyEligibility:
    stored = current_records(conn, new.credit_code)
    record = next((r for r in stored if r.id == new.record_id and r.category == "penalty"), None)
    if record is None:
        raise UnknownPenalty(f"no penalty {new.record_id} of {new.credit_code}")
    return judge(record, publication_rules(config_dir), repair_decisions(stored), on)


def apply(
    conn: Connection,
    path: RecordsPath,
    applicant: Applicant,
    new: NewApplication,
    limits: Limits,
    now: datetime,
) -> dict[str, Any]:
    """File an application; its commitment record is written with it."""
    judged = _judged(conn, limits.config_dir, new, report_day(now))
    result = judged.eligibility
    if not result.eligible:
        earliest = result.earliest.isoformat() if result.earliest else None
        raise NotRepairable(judged.en, reason=result.reason, zh=judged.zh, earliest=earliest)
    commitment = load_commitment(limits.config_dir)
    if new.commitment_sha256 != commitment.sha256:
        raise StaleCommitment(
            f"the commitment accepted is not version {commitment.version}'s text; show it "
            "again (GET /v1/repairs/commitment) and send its text_sha256"
        )
    already = repository.pending_on(conn, new.record_id)
    if already is not None:
        raise Conflict(f"penalty {new.record_id} has a pending application", application_id=already)
    application_id = f"rpr_{secrets.token_urlsafe(12)}"
    commitment_record = f"RC-{application_id}"
    _write_commitment(conn, path, new.credit_code, commitment, commitment_record, report_day(now))
    values = {
        "id": application_id, "credit_code": new.credit_code, "record_id": new.record_id,
        "department": judged.department, "status": "pending", "channel": applicant.channel,
        "applied_by": applicant.actor[:80], "applied_at": now,
        "review_due_at": now + timedelta(days=limits.review_days),
        "statement": new.statement, "commitment_version": commitment.version,
        "commitment_sha256": commitment.sha256, "commitment_accepted_at": now,
        "commitment_record_id": commitment_record,
    }  # fmt: skip
    files = [
        {"position": n, "file_name": f.file_name, "media_type": f.media_type, "size": f.size,
         "sha256": f.sha256, "content": f.content}
        for n, f in enumerate(new.evidence, start=1)
    ]  # fmt: skip
    try:
        repository.add(conn, values, files)
    except IntegrityError:
        # Another application for the same penalty was filed at the same moment.
        raise Conflict(f"penalty {new.record_id} has a pending application") from None
    return get(conn, application_id, Viewer.enterprise(new.credit_code))


def _write_commitment(
    conn: Connection,
    path: RecordsPath,
    credit_code: str,
    commitment: Commitment,
    record_id: str,
    on: date,
) -> None:
    office = path.departments.writer(path.departments.credit_office, frozenset({"commitment"}))
    assert office is not None  # departments.yaml is checked to name its credit office
    ingestor = _ingestor(path, "commitment", office)
    fields = {
        "record_id": record_id, "credit_code": credit_code,
        "commitment_type": commitment.commitment_type, "content": commitment.text.zh,
        "made_on": on.isoformat(), "status": "in_force", "authority": office.name,
    }  # fmt: skip
    outcome = ingestor.store_in(conn, fields, source=f"repair commitment {record_id}")
    if outcome.outcome == "rejected":
        raise InvalidValue(f"the commitment record was refused: {outcome.reason}")


def _ingestor(path: RecordsPath, category: str, writer: Writer) -> Ingestor:
    return Ingestor(
        path.engine, category, path.pii_key, 1, path.keys, writer=writer, audit=path.audit
    )


def decide(
    conn: Connection,
    path: RecordsPath,
    department: str,
    actor: str,
    application_id: str,
    decision: Literal["approve", "reject"],
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The department's decision; an approval publishes its `credit_repair` record."""
    row = repository.application(conn, application_id)
    if row is None or row.department != department:
        raise UnknownApplication(f"no repair application {application_id} for {department}")
    if row.status != "pending":
        raise Conflict(f"application {application_id} is already {row.status}")
    if decision == "reject" and not reason:
        raise InvalidValue("reason: required to reject an application")
    repair_record = None
    if decision == "approve":
        repair_record = f"CR-{application_id}"
        _publish_repair(conn, path, row, repair_record, report_day(now))
    decided = repository.decide(
        conn,
        application_id,
        {
            "status": "approved" if decision == "approve" else "rejected",
            "decided_by": actor[:80], "decided_at": now, "decision_reason": reason,
            "repair_record_id": repair_record,
        },
    )  # fmt: skip
    if not decided:
        raise Conflict(f"application {application_id} was decided meanwhile")
    return get(conn, application_id, Viewer.reviewer(department))


def _publish_repair(
    conn: Connection, path: RecordsPath, row: Row[Any], record_id: str, on: date
) -> None:
    writer = repair_reviewer(path.departments, row.department)
    if writer is None:
        raise InvalidValue(f"{row.department} is not in departments.yaml")
    penalty = next(
        (r for r in current_records(conn, row.credit_code) if r.id == row.record_id), None
    )
    if penalty is None:
        raise UnknownPenalty(f"penalty {row.record_id} is no longer stored")
    number = penalty.data.get("decision_number")
    fields = {
        "record_id": record_id, "credit_code": row.credit_code, "repaired_category": "penalty",
        "repaired_record_id": penalty.source_record_id,
        "repaired_source_department": penalty.source_department,
        "decision_number": number if isinstance(number, str) else None,
        "repair_authority": writer.name, "effective_on": on.isoformat(), "status": "approved",
    }  # fmt: skip
    outcome = _ingestor(path, "credit_repair", writer).store_in(
        conn, fields, source=f"repair decision {row.id}"
    )
    if outcome.outcome == "rejected":
        raise InvalidValue(f"the credit_repair record was refused: {outcome.reason}")


def get(conn: Connection, application_id: str, viewer: Viewer) -> dict[str, Any]:
    """One application as `viewer` may see it (404 for anyone else's)."""
    row = repository.application(conn, application_id)
    if row is None or not viewer.sees(row):
        raise UnknownApplication(f"no repair application {application_id[:60]}")
    files = repository.evidence_of(conn, [row.id])
    return render(row, files[row.id])


def queue(
    conn: Connection, department: str, status: str, limit: int = LIST_MAX
) -> list[dict[str, Any]]:
    """A department's applications in `status`, the oldest first."""
    rows = repository.queue(conn, department, status, min(limit, LIST_MAX))
    files = repository.evidence_of(conn, [r.id for r in rows])
    return [render(row, files[row.id]) for row in rows]


def of_enterprise(
    conn: Connection, credit_code: str, limit: int = LIST_MAX
) -> list[dict[str, Any]]:
    """The enterprise's applications, the latest first (the portal's list)."""
    rows = repository.of_enterprise(conn, credit_code, min(limit, LIST_MAX))
    files = repository.evidence_of(conn, [r.id for r in rows])
    return [render(row, files[row.id]) for row in rows]


def evidence_file(
    conn: Connection, application_id: str, evidence_id: int, viewer: Viewer
) -> repository.File:
    """One file with its bytes (`content`) and facts, for a viewer who sees its application."""
    row = repository.application(conn, application_id)
    found = repository.evidence_file(conn, application_id, evidence_id) if row else None
    if row is None or found is None or not viewer.sees(row):
        raise UnknownApplication(f"no evidence {evidence_id} of application {application_id[:60]}")
    return found


def render(row: Row[Any], files: list[repository.Facts]) -> dict[str, Any]:
    decision = None
    if row.status != "pending":
        decision = {
            "decision": row.status, "reason": row.decision_reason, "decided_by": row.decided_by,
            "decided_at": row.decided_at.isoformat(), "repair_record_id": row.repair_record_id,
        }  # fmt: skip
    return {
        "id": row.id, "credit_code": row.credit_code, "record_id": row.record_id,
        "department": row.department, "status": row.status, "channel": row.channel,
        "applied_by": row.applied_by, "applied_at": row.applied_at.isoformat(),
        "review_due_at": row.review_due_at.isoformat(), "statement": row.statement,
        "commitment": {
            "version": row.commitment_version, "text_sha256": row.commitment_sha256,
            "accepted_at": row.commitment_accepted_at.isoformat(),
            "record_id": row.commitment_record_id,
        },
        "evidence": [
            {"id": f.id, "file_name": f.file_name, "media_type": f.media_type, "size": f.size,
             "sha256": f.sha256}
            for f in files
        ],
        "decision": decision,
    }  # fmt: skip
