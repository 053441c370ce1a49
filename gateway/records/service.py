"""Ingestion: validate each line on its own, store good ones in batches.

Each batch commits on its own, so accepted lines are kept even when others in
the file fail, and a crash loses at most the batch in flight, which a re-run
then stores (re-running a file changes nothing that was already stored).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Literal, ParamSpec, TypeVar

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import SingletonThreadPool

from gateway.errors import NotFound
from gateway.identifiers import division_of
from gateway.keys.pii import KeyRing, aad_for
from gateway.logs import redact
from gateway.metrics import INGEST_LINES
from gateway.records import binding, rejects
from gateway.records.audited import WriteAudit, Written
from gateway.records.readers import Line
from gateway.records.repository import DETAIL_TABLES, Incoming, apply_batch, detail_columns
from gateway.records.schemas import SCHEMAS, RecordBase, Registration
from gateway.store.tables import ingest_runs
from policies.departments import Writer

log = logging.getLogger("xyd.ingest")

T = TypeVar("T")
P = ParamSpec("P")
OutcomeName = Literal["accepted", "duplicate", "updated", "rejected"]
_ATTEMPTS = 3
_DETAIL_COLUMNS = {category: detail_columns(category) for category in DETAIL_TABLES}
# Penalties keep their amounts in fen only, zero when none was given.
_ZERO_WHEN_NONE = frozenset({"fine_fen", "confiscation_fen"})


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
    # A rejected line's fields as `rejects.masked` shows them; None if unreadable.
    shown: dict[str, Any] | None = None
    # The enterprise the line is about, when it names one validly: its audit entry's.
    credit_code: str | None = None


Prepared = list[Incoming | LineOutcome]
# A batch's valid lines' outcomes once written, by line number.
Stored = dict[int, LineOutcome]


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


def prepare(
    schema: type[RecordBase],
    line: Line,
    pii_key: bytes,
    keys: KeyRing | None = None,
    writer: Writer | None = None,
) -> Incoming | LineOutcome:
    """Validate one line into what the repository stores, or reject it with a reason.

    With `keys`, the personal values the stored data leaves out are sealed
    beside it (one AES-GCM call, only for a record that has them). With a
    `writer`, the line is that department's own (`binding`) or refused;
    without one, lines name their departments (the demo's and tests' loads).
    """
    if line.fields is None:
        return LineOutcome(line.number, "rejected", reason=line.error)
    fields = line.fields
    if writer is not None:
        bound = binding.bind(writer, schema, fields)
        if isinstance(bound, str):
            return _refused(schema, line.number, fields, bound)
        fields = bound
    try:
        record = schema.model_validate(fields)
    except ValidationError as exc:
        return _refused(schema, line.number, fields, redact(describe_errors(exc)))
    if writer is not None and (refusal := binding.refuses(writer, record)):
        return _refused(schema, line.number, fields, refusal)
    data = record.normalise(pii_key)
    document = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(document)
    personal = None
    if keys is not None and (clear := record.personal_clear()):
        plain = orjson.dumps(clear, option=orjson.OPT_SORT_KEYS)
        personal = keys.seal(
            plain, aad_for(schema.category, record.source_department, record.record_id)
        )
        # The content's identity covers the sealed values too (a corrected
        # name under the same mask is a new version), through a keyed digest:
        # a plain one of an ID number could be reversed by trying them all.
        digest.update(b"\x00personal:" + hmac.digest(pii_key, plain, "sha256"))
    return Incoming(
        line=line.number,
        source_department=record.source_department,
        source_record_id=record.record_id,
        credit_code=record.credit_code,
        subject_kind=record.subject_kind,
        effective_date=record.effective_date(),
        sha256=digest.hexdigest(),
        document=document,
        details=_details(record),
        enterprise=_enterprise(record, data),
        personal=personal,
        repairs=binding.repair_target(record) if writer is not None else None,
    )


def _refused(
    schema: type[RecordBase], number: int, fields: dict[str, Any], reason: str
) -> LineOutcome:
    return LineOutcome(
        number,
        "rejected",
        record_id=rejects.record_id(schema, fields),
        reason=reason,
        shown=rejects.masked(schema, fields),
        credit_code=binding.named_enterprise(schema, fields),
    )


def _details(record: RecordBase) -> tuple[Any, ...] | None:
    """The detail table's row (see `detail_columns`): the record's own fields."""
    columns = _DETAIL_COLUMNS.get(record.category)
    if columns is None:
        return None
    fields = record.__dict__
    return tuple(
        [(fields[name] or 0) if name in _ZERO_WHEN_NONE else fields[name] for name in columns]
    )


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


class _InThisThread(Executor):
    """For an engine whose threads each see their own database (in-memory SQLite)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # raised again where the result is taken, as a thread's would be
            future.set_exception(exc)
        return future


def _writer(engine: Engine) -> Executor:
    if isinstance(engine.pool, SingletonThreadPool):
        return _InThisThread()
    return ThreadPoolExecutor(1, thread_name_prefix="ingest-writer")


class Ingestor:
    """Feeds lines of one category into the store, batch by batch."""

    def __init__(
        self,
        engine: Engine,
        category: str,
        pii_key: bytes,
        batch_size: int,
        keys: KeyRing | None = None,
        *,
        writer: Writer | None = None,
        audit: WriteAudit | None = None,
    ) -> None:
        """Without `keys`, personal values are not kept at all (hashes and masks only).

        `writer` binds every line to a department (`prepare`); with `audit`,
        every line naming an enterprise is audited in its batch's transaction.
        """
        self.engine = engine
        self.category = category
        self.schema = schema_for(category)
        self.pii_key = pii_key
        self.batch_size = batch_size
        self.keys = keys
        self.writer = writer
        self.audit = audit

    def run(
        self,
        lines: Iterable[Line],
        source: str,
        on_outcome: Callable[[LineOutcome], None] | None = None,
    ) -> IngestSummary:
        """Validate and store `lines` in this process."""
        return self.store(self.prepare(lines), source, on_outcome)

    def prepare(self, lines: Iterable[Line]) -> Iterator[Prepared]:
        """Batches of `lines` validated in this process, as they are needed."""
        iterator = iter(lines)
        while chunk := list(islice(iterator, self.batch_size)):
            yield [
                prepare(self.schema, line, self.pii_key, self.keys, self.writer) for line in chunk
            ]

    def store(
        self,
        batches: Iterable[Prepared],
        source: str,
        on_outcome: Callable[[LineOutcome], None] | None = None,
    ) -> IngestSummary:
        """Store prepared batches in order, each committed before its outcomes are reported."""
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
        # One writer thread stores a batch while this thread prepares the next
        # (or waits for it from the workers): validation and the database's
        # work overlap instead of taking turns. Batches still commit one after
        # the other, in order, and a batch's outcomes are reported only once
        # it has committed.
        with _writer(self.engine) as writer:
            in_flight: tuple[Prepared, Future[Stored]] | None = None
            for prepared in batches:
                committing = writer.submit(self._commit, prepared, summary.run_id)
                if in_flight is not None:
                    self._report(*in_flight, summary, on_outcome)
                in_flight = (prepared, committing)
            if in_flight is not None:
                self._report(*in_flight, summary, on_outcome)
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

    def store_in(self, conn: Connection, fields: dict[str, Any], source: str) -> LineOutcome:
        """One line validated, bound, stored and audited in the caller's transaction,
        not committed: a decision that publishes a record commits with it, or neither.
        The same checks and writes as a batch's line (versions, the enterprise's
        data_version, its audit entry)."""
        run_id, now = uuid.uuid4().hex, datetime.now(UTC)
        conn.execute(
            insert(ingest_runs).values(
                id=run_id, category=self.category, source=source[:500], started_at=now,
                finished_at=now, complete=True,
            )
        )  # fmt: skip
        item = prepare(self.schema, Line(1, fields), self.pii_key, self.keys, self.writer)
        outcome = item if isinstance(item, LineOutcome) else self._write(conn, [item], run_id)[1]
        if self.audit is not None and outcome.credit_code is not None:
            self.audit.append(conn, self.category, _written([outcome]))
        INGEST_LINES.labels(self.category, outcome.outcome).inc()
        return outcome

    def _report(
        self,
        prepared: Prepared,
        committing: Future[Stored],
        summary: IngestSummary,
        on_outcome: Callable[[LineOutcome], None] | None,
    ) -> None:
        stored = committing.result()
        counts: Counter[str] = Counter()
        for item in prepared:
            result = stored[item.line] if isinstance(item, Incoming) else item
            counts[result.outcome] += 1
            if on_outcome is not None:
                on_outcome(result)
        summary.counts.update(counts)
        for name, count in counts.items():
            INGEST_LINES.labels(self.category, name).inc(count)

    def _commit(self, prepared: Prepared, run_id: str) -> Stored:
        """Store a batch's valid lines, audit every line of it, commit; their outcomes."""
        valid = [item for item in prepared if isinstance(item, Incoming)]
        refused = [item for item in prepared if isinstance(item, LineOutcome) and item.credit_code]
        if not valid and not (self.audit and refused):
            return {}
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    stored = self._write(conn, valid, run_id)
                    if self.audit is not None:
                        lines = sorted([*refused, *stored.values()], key=lambda o: o.line)
                        self.audit.append(conn, self.category, _written(lines))
                return stored
            except IntegrityError:
                # Another writer stored one of these records first; classify again.
                if attempt == _ATTEMPTS:
                    raise
                log.warning("batch conflicted with a concurrent writer; retrying")
        raise AssertionError("unreachable")

    def _write(self, conn: Connection, valid: list[Incoming], run_id: str) -> Stored:
        """The batch's records stored in `conn`'s transaction, but for repairs the
        writer may not make; every valid line's outcome."""
        refusals = binding.repair_refusals(conn, valid) if self.writer is not None else {}
        stored: Stored = {
            line: LineOutcome(line, "rejected", item.source_record_id, reason=reason,
                              credit_code=item.credit_code)
            for item in valid
            if (reason := refusals.get(line := item.line)) is not None
        }  # fmt: skip
        kept = [item for item in valid if item.line not in refusals]
        results = apply_batch(conn, self.category, kept, datetime.now(UTC), run_id) if kept else []
        counts = Counter(outcome for _, outcome, _ in results)
        conn.execute(
            update(ingest_runs)
            .where(ingest_runs.c.id == run_id)
            .values(
                accepted=ingest_runs.c.accepted + counts["accepted"],
                duplicate=ingest_runs.c.duplicate + counts["duplicate"],
                updated=ingest_runs.c.updated + counts["updated"],
            )
        )
        for item, outcome, version in results:
            stored[item.line] = LineOutcome(
                item.line, outcome, item.source_record_id, version,  # type: ignore[arg-type]
                credit_code=item.credit_code,
            )  # fmt: skip
        return stored


def _written(lines: list[LineOutcome]) -> list[Written]:
    return [
        Written(o.credit_code, o.outcome, o.record_id, o.version, o.reason)
        for o in lines
        if o.credit_code is not None
    ]
