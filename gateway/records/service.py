"""Ingestion: validate each line on its own, store good ones in batches.

Each batch commits on its own, so accepted lines are kept even when others in
the file fail, and a crash loses at most the batch in flight, which a re-run
then stores (re-running a file changes nothing that was already stored).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from gateway.errors import NotFound
from gateway.identifiers import division_of
from gateway.metrics import INGEST_LINES
from gateway.records.readers import Line
from gateway.records.repository import Incoming, apply_batch
from gateway.records.schemas import SCHEMAS, License, Penalty, RecordBase, Registration
from gateway.store.tables import ingest_runs

log = logging.getLogger("xyd.ingest")

OutcomeName = Literal["accepted", "duplicate", "updated", "rejected"]
_DETAIL_EXCLUDE = {"record_id", "source_department", "credit_code", "subject_name"}
_ATTEMPTS = 3


class UnknownCategory(NotFound):
    type_slug = "unknown-category"
    title = "Unknown record category"


@dataclass(frozen=True, slots=True)
class LineOutcome:
    line: int
    outcome: OutcomeName
    record_id: str | None = None
    version: int | None = None
    reason: str | None = None
    raw: bytes = b""


@dataclass
class IngestSummary:
    run_id: str
    category: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def schema_for(category: str) -> type[RecordBase]:
    try:
        return SCHEMAS[category]
    except KeyError:
        raise UnknownCategory(
            f"unknown category {category!r}; expected one of {', '.join(SCHEMAS)}"
        ) from None


def describe_errors(exc: ValidationError) -> str:
    """One line naming each bad field and why, for the rejects file and the API."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc and not message.startswith(f"{loc}:") else message)
    return "; ".join(parts)


def prepare(schema: type[RecordBase], line: Line, pii_key: bytes) -> Incoming | LineOutcome:
    """Validate one line into what the repository stores, or reject it with a reason."""
    if line.fields is None:
        return LineOutcome(line.number, "rejected", reason=line.error, raw=line.raw)
    try:
        record = schema.model_validate(line.fields)
    except ValidationError as exc:
        record_id = line.fields.get("record_id")
        return LineOutcome(
            line.number,
            "rejected",
            record_id=record_id if isinstance(record_id, str) else None,
            reason=describe_errors(exc),
            raw=line.raw,
        )
    data = record.normalise(pii_key)
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Incoming(
        line=line.number,
        source_department=record.source_department,
        source_record_id=record.record_id,
        credit_code=record.credit_code,
        subject_kind=record.subject_kind,
        effective_date=record.effective_date(),
        sha256=digest,
        data=data,
        details=_details(record, data),
        enterprise=_enterprise(record, data),
    )


def _details(record: RecordBase, data: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(record, Penalty):
        columns = Penalty.model_fields.keys() - _DETAIL_EXCLUDE - set(Penalty.personal_fields)
        row = {name: getattr(record, name) for name in columns}
        row.pop("fine_wan"), row.pop("confiscation_wan")
        row["fine_fen"] = record.fine_fen or 0
        row["confiscation_fen"] = record.confiscation_fen or 0
        return row
    if isinstance(record, License):
        columns = License.model_fields.keys() - _DETAIL_EXCLUDE - set(License.personal_fields)
        return {name: getattr(record, name) for name in columns}
    return None


def _enterprise(record: RecordBase, data: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(record, Registration):
        return None
    assert record.credit_code is not None
    return {
        "credit_code": record.credit_code,
        "name": record.subject_name,
        "entity_type": record.entity_type,
        "division_code": division_of(record.credit_code),
        "legal_rep_hash": data.get("legal_rep_hash"),
        "legal_rep_masked": data.get("legal_rep_masked"),
        "registered_on": record.registered_on,
        "status": record.status,
        "registered_capital_fen": record.registered_capital_fen,
        "industry_code": record.industry_code,
    }


class Ingestor:
    """Feeds lines of one category into the store, batch by batch."""

    def __init__(self, engine: Engine, category: str, pii_key: bytes, batch_size: int) -> None:
        self.engine = engine
        self.category = category
        self.schema = schema_for(category)
        self.pii_key = pii_key
        self.batch_size = batch_size

    def run(
        self,
        lines: Iterable[Line],
        source: str,
        on_outcome: Callable[[LineOutcome], None] | None = None,
    ) -> IngestSummary:
        summary = IngestSummary(uuid.uuid4().hex, self.category)
        with self.engine.begin() as conn:
            conn.execute(
                insert(ingest_runs).values(
                    id=summary.run_id,
                    category=self.category,
                    source=source[:500],
                    started_at=datetime.now(UTC),
                )
            )
        iterator = iter(lines)
        while chunk := list(islice(iterator, self.batch_size)):
            for outcome in self._store_chunk(chunk, summary):
                summary.counts[outcome.outcome] += 1
                INGEST_LINES.labels(self.category, outcome.outcome).inc()
                if on_outcome is not None:
                    on_outcome(outcome)
        with self.engine.begin() as conn:
            conn.execute(
                update(ingest_runs)
                .where(ingest_runs.c.id == summary.run_id)
                .values(
                    finished_at=datetime.now(UTC),
                    rejected=summary.counts["rejected"],
                    complete=True,
                )
            )
        log.info("ingest finished", extra={"run_id": summary.run_id, **summary.counts})
        return summary

    def _store_chunk(self, chunk: list[Line], summary: IngestSummary) -> Iterator[LineOutcome]:
        prepared = [prepare(self.schema, line, self.pii_key) for line in chunk]
        valid = [p for p in prepared if isinstance(p, Incoming)]
        stored = self._commit(valid, summary) if valid else {}
        for item in prepared:
            if isinstance(item, LineOutcome):
                yield item
            else:
                outcome, version = stored[item.line]
                yield LineOutcome(item.line, outcome, item.source_record_id, version)  # type: ignore[arg-type]

    def _commit(self, valid: list[Incoming], summary: IngestSummary) -> dict[int, tuple[str, int]]:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    results = apply_batch(
                        conn, self.category, valid, datetime.now(UTC), summary.run_id
                    )
                    counts = Counter(outcome for _, outcome, _ in results)
                    conn.execute(
                        update(ingest_runs)
                        .where(ingest_runs.c.id == summary.run_id)
                        .values(
                            accepted=ingest_runs.c.accepted + counts["accepted"],
                            duplicate=ingest_runs.c.duplicate + counts["duplicate"],
                            updated=ingest_runs.c.updated + counts["updated"],
                        )
                    )
                return {item.line: (outcome, version) for item, outcome, version in results}
            except IntegrityError:
                # Another writer stored one of these records first; classify again.
                if attempt == _ATTEMPTS:
                    raise
                log.warning("batch conflicted with a concurrent writer; retrying")
        raise AssertionError("unreachable")
