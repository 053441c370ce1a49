"""`xyd ingest FILE`: a file's lines through the Ingestor, with progress and a summary."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine

from gateway.audit import pinned
from gateway.db import make_sync_engine
from gateway.errors import NotFound
from gateway.keys.pii import PersonalDataError, load_key_ring
from gateway.keys.store import FIXED_ALG, KeyError_, LoadedKey, ensure_key, load_ring
from gateway.private_files import open_private
from gateway.records.audited import WriteAudit
from gateway.records.binding import load_departments
from gateway.records.parallel import default_workers, pool_for
from gateway.records.readers import read_lines
from gateway.records.service import Ingestor, IngestSummary, LineOutcome
from gateway.settings import Settings

_PROGRESS_ABOVE_BYTES = 2_000_000
# Below ~1,500 lines a single process is done before workers would pay off.
_WORKERS_ABOVE_BYTES = 1_000_000


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt.lower()
    suffix = path.suffix.lower()
    return "csv" if suffix == ".csv" else "ndjson"


def ingest_file(
    settings: Settings,
    path: Path,
    category: str,
    fmt: str | None,
    rejects: Path | None,
    department: str,
) -> int:
    """Ingest `path` as `department`'s (its name or code in config/departments.yaml);
    return the exit code (0 done, 2 unusable input)."""
    console = Console(stderr=True)
    fmt = _format_of(path, fmt)
    if fmt not in ("csv", "ndjson"):
        console.print(f"[red]error:[/] unknown format {fmt!r}: use csv or ndjson")
        return 2
    writer = load_departments(settings.config_dir).writer(department)
    if writer is None:
        console.print(f"[red]error:[/] department {department!r} is not in departments.yaml")
        return 2
    rejects = rejects or path.with_name(path.name + ".rejects.ndjson")
    engine = make_sync_engine(settings)
    try:
        ingestor = Ingestor(
            engine,
            category,
            settings.pii_key_bytes(),
            settings.ingest_batch_size,
            keys=load_key_ring(settings),
            writer=writer,
            audit=WriteAudit(
                f"ingest:{writer.code}",
                "xyd ingest",
                _audit_signer(engine, settings),
                settings.audit_checkpoint_every,
            ),
        )
    except NotFound as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        return 2
    except (PersonalDataError, KeyError_) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    size = path.stat().st_size
    workers = default_workers() if size >= _WORKERS_ABOVE_BYTES else 0
    try:
        with (
            # Before the progress bar: its refresh thread must not exist yet
            # when the workers are forked.
            pool_for(category, ingestor.pii_key, workers, ingestor.keys, writer) as pool,
            path.open("rb") as handle,
            open_private(rejects) as reject_out,  # what departments sent: not for others
            Progress(
                TextColumn("ingesting {task.fields[name]}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=console,
                disable=size < _PROGRESS_ABOVE_BYTES,
            ) as progress,
        ):
            task = progress.add_task("ingest", total=size, name=path.name)

            def lines() -> Iterator[bytes]:
                for raw in handle:
                    progress.advance(task, len(raw))
                    yield raw

            def on_outcome(outcome: LineOutcome) -> None:
                if outcome.outcome == "rejected":
                    reject_out.write(_reject_line(outcome))

            batches = (
                pool.prepare_feed(lines(), fmt, ingestor.batch_size)
                if pool is not None
                else ingestor.prepare(read_lines(lines(), fmt))
            )
            summary = ingestor.store(batches, source=str(path), on_outcome=on_outcome)
    finally:
        engine.dispose()
    _print_summary(console, summary, rejects)
    if not summary.counts["rejected"]:
        rejects.unlink(missing_ok=True)
    return 0


def _audit_signer(engine: Engine, settings: Settings) -> LoadedKey:
    """The audit key checkpoints falling in this run are signed with, as a server's are."""
    kek = settings.kek_bytes()
    with engine.begin() as conn:
        ensure_key(conn, kek, "audit", FIXED_ALG.get("audit", settings.access_token_alg))
        ring = load_ring(conn, kek)
    signer = ring.signing_key("audit", datetime.now(UTC))
    # Pinned as a server pins it, so `xyd audit verify` trusts the checkpoints it signs.
    pinned.pin(pinned.path_of(settings), [signer])
    return signer


def _reject_line(outcome: LineOutcome) -> bytes:
    """Masked like any output: no line in clear (see `records.rejects`)."""
    entry = {
        "line": outcome.line,
        "record_id": outcome.record_id,
        "reason": outcome.reason,
        "fields": outcome.shown,
    }
    return orjson.dumps(entry) + b"\n"


def _print_summary(console: Console, summary: IngestSummary, rejects: Path) -> None:
    table = Table(title=f"{summary.category}: {summary.total} lines (run {summary.run_id})")
    for name in ("accepted", "updated", "duplicate", "rejected"):
        table.add_column(name, justify="right")
    table.add_row(
        *(str(summary.counts[n]) for n in ("accepted", "updated", "duplicate", "rejected"))
    )
    Console().print(table)
    if summary.counts["rejected"]:
        console.print(f"rejected lines and reasons: {rejects}")
