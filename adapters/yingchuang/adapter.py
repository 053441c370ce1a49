"""盈创动力 Yingchuang Dongli: daily CSV batches the gateway pulls (docs/platforms/yingchuang.md).

A day is a manifest and the files it lists. A file whose SHA-256 differs from
the manifest is refused whole and tried again at the next sync. Otherwise
every row is judged alone: valid rows are stored (once, by 流水号), invalid
ones dead-lettered with their line number, and a file's events, rejects and
the day's position commit in one transaction.

Config block: `simulator_file` (JSON: `base_url`, `app_key`, `app_secret`,
relative to the state directory) and `schedule_s` (read by the app's
background loop).

Errors from `sync`: CredentialsMissing (no credentials file yet),
`adapters.http.UpstreamError` (401: the key or secret was refused; a manifest
that cannot be read) and its `RetriesExhausted` (the platform kept answering
429/5xx). Days committed before the error stay committed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from sqlalchemy import Connection

from adapters.base import SyncReport
from adapters.config import PlatformConfig
from adapters.http import DEFAULT_TIMEOUT, UpstreamError, read_limited, send
from adapters.pull import Batch, PullAdapter, count, read_credentials, store_batch
from adapters.yingchuang.config import YingchuangConfig
from adapters.yingchuang.wire import PLATFORM, FileRefused, Rejected, checked, manifest
from gateway.loans.events import BEIJING, LoanEvent
from gateway.metrics import PLATFORM_DAYS_SKIPPED, PLATFORM_LAST_SYNC
from gateway.positions import read_position, save_position
from policies.consent import ConsentRules

log = logging.getLogger("xyd.adapters.yingchuang")

MAX_BACKFILL_DAYS = 31
MAX_MANIFEST_BYTES = 1 << 20
MAX_FILE_BYTES = 64 << 20  # a day is a few thousand rows; this is room for growth, not a quota


@dataclass(frozen=True)
class Credentials:
    base_url: str
    app_key: str
    app_secret: str = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        base, key, secret = read_credentials(PLATFORM, path, ("base_url", "app_key", "app_secret"))
        return cls(base.rstrip("/"), key, secret)


@dataclass
class YingchuangReport(SyncReport):
    """A SyncReport with one summary per day (synced, not published, incomplete)."""

    days: list[dict[str, Any]] = field(default_factory=list)
    # Days a catch-up left behind: older than the backfill limit ("first..last").
    skipped: str | None = None
    # As recorded in the store after this sync: what operators watch.
    last_day: str | None = None
    last_day_rows: dict[str, int] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            **super().as_dict(),
            "days": self.days,
            "skipped": self.skipped,
            "last_day": self.last_day,
            "last_day_rows": self.last_day_rows,
        }


@dataclass
class _Counts:
    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    dead_lettered: int = 0

    def plus(self, other: _Counts) -> _Counts:
        return _Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_batch(self) -> Batch:
        return Batch(self.accepted, self.duplicate, self.dead_lettered)

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.rows, self.accepted, self.duplicate, self.rejected, self.dead_lettered)


def _commit_file(
    conn: Connection,
    source: str,
    events: list[LoanEvent],
    rejects: list[Rejected],
    rows: int,
    rules: ConsentRules,
    day_totals: _Counts | None,
) -> _Counts:
    """One file in one transaction; with `day_totals`, the day's position too."""
    # A re-synced day meets its bad rows again: each is kept once for operators.
    bad = [(f"{source} line {r.line}: {r.reason}", r.raw) for r in rejects]
    batch = store_batch(conn, PLATFORM, events, bad, rules)
    for _, reason in batch.refused:  # an authorisation, dead-lettered by the ledger
        log.warning("%s: %s", source, reason, extra={"platform": PLATFORM})
    counts = _Counts(
        rows, batch.accepted, batch.duplicate, len(rejects) + len(batch.refused),
        batch.dead_lettered,
    )  # fmt: skip
    if day_totals is not None:
        day = source.split("/", 1)[0]
        previous = read_position(conn, PLATFORM, "last_day")
        if previous is None or day >= previous:
            total = day_totals.plus(counts)
            save_position(conn, PLATFORM, "last_day", day)
            save_position(conn, PLATFORM, "last_day_rows", json.dumps(_summary(total)))
    return counts


def _recorded(conn: Connection) -> tuple[str | None, str | None]:
    return read_position(conn, PLATFORM, "last_day"), read_position(conn, PLATFORM, "last_day_rows")


def _summary(counts: _Counts) -> dict[str, int]:
    return {
        "rows": counts.rows,
        "accepted": counts.accepted,
        "duplicate": counts.duplicate,
        "rejected": counts.rejected,
    }


class YingchuangAdapter(PullAdapter):
    key = PLATFORM
    config_model: ClassVar[type[PlatformConfig]] = YingchuangConfig

    async def sync(
        self, *, day: date | None = None, since: datetime | None = None
    ) -> YingchuangReport:
        """`day`: that Beijing day; `since`: every day from its date to today (at most
        31); neither (the schedule): a catch-up from the last synced day to today."""
        skipped: tuple[date, date] | None = None
        if day is None and since is None:
            async with self.ctx.engine.connect() as conn:
                position, _ = await conn.run_sync(_recorded)
            days, skipped = catch_up(self.today(), position)
        else:
            days = self.days(day, since)
        credentials = Credentials.load(self.credentials_path)
        report = YingchuangReport(PLATFORM, window=f"{days[0]:%Y%m%d}..{days[-1]:%Y%m%d}")
        if skipped is not None:
            report.skipped = f"{skipped[0]:%Y%m%d}..{skipped[1]:%Y%m%d}"
            missed = (skipped[1] - skipped[0]).days + 1
            PLATFORM_DAYS_SKIPPED.labels(PLATFORM).inc(missed)
            log.warning(
                "last synced day is past the %d-day backfill limit: %d days (%s) are not "
                "fetched; the catch-up starts at %s",
                MAX_BACKFILL_DAYS,
                missed,
                report.skipped,
                f"{days[0]:%Y%m%d}",
                extra={"platform": PLATFORM},
            )
        async with httpx.AsyncClient(
            base_url=credentials.base_url,
            auth=(credentials.app_key, credentials.app_secret),
            timeout=DEFAULT_TIMEOUT,
            transport=self.ctx.outbound.transport(),
        ) as client:
            for one in days:
                await self._sync_day(client, f"{one:%Y%m%d}", report)
        async with self.ctx.engine.connect() as conn:
            report.last_day, rows = await conn.run_sync(_recorded)
        report.last_day_rows = json.loads(rows) if rows else None
        PLATFORM_LAST_SYNC.labels(PLATFORM).set(time.time())
        return report

    def today(self) -> date:
        return datetime.fromtimestamp(self.ctx.clock(), BEIJING).date()

    def days(self, day: date | None, since: datetime | None) -> list[date]:
        """The days a manual sync covers: `day`, or from `since` to today."""
        today = self.today()
        if day is not None and since is not None:
            raise ValueError("sync one day or since a time, not both")
        if day is not None:
            return [day]
        if since is None:
            raise ValueError("sync a day or since a time (the schedule's catch-up takes neither)")
        if since.tzinfo is None:
            raise ValueError("since must carry its offset")
        first = since.astimezone(BEIJING).date()
        count = (today - first).days + 1
        if not 1 <= count <= MAX_BACKFILL_DAYS:
            raise ValueError(
                f"a backfill covers 1 to {MAX_BACKFILL_DAYS} days to today; {first} gives {count}"
            )
        return [first + timedelta(days=i) for i in range(count)]

    async def _sync_day(
        self, client: httpx.AsyncClient, day: str, report: YingchuangReport
    ) -> None:
        summary: dict[str, Any] = {"day": day, "status": "not_published", "files": 0}
        report.days.append(summary)
        body = await self._get(client, f"/openapi/batches/{day}/manifest.json", MAX_MANIFEST_BYTES)
        if body is None:
            return
        try:
            files = manifest(body, day)
        except ValueError as exc:
            summary["status"] = "incomplete"
            _refused(report, day, "manifest.json", str(exc))
            return
        totals, complete = _Counts(), True
        for index, (name, sha256, rows) in enumerate(files):
            data = await self._get(client, f"/openapi/batches/{day}/{quote(name)}", MAX_FILE_BYTES)
            try:
                events, rejects, found = checked(data, sha256)
            except FileRefused as exc:
                complete = False
                _refused(report, day, name, str(exc))
                continue
            if found != rows:
                log.warning(
                    "file has %d rows, manifest says %d",
                    found,
                    rows,
                    extra={"platform": PLATFORM, "file": name},
                )
            last = complete and index == len(files) - 1
            counts = await self._commit(
                f"{day}/{name}", events, rejects, found, totals if last else None
            )
            totals = totals.plus(counts)
            summary["files"] += 1
            report.fetched += found
            report.accepted += counts.accepted
            report.duplicate += counts.duplicate
            report.rejected += [
                {"day": day, "file": name, "line": r.line, "id": r.message_id, "reason": r.reason}
                for r in rejects
            ]
        if complete and not files:
            await self._commit(f"{day}/", [], [], 0, totals)
        summary.update(_summary(totals), status="synced" if complete else "incomplete")
        if complete:
            report.position = day

    async def _commit(
        self,
        source: str,
        events: list[LoanEvent],
        rejects: list[Rejected],
        rows: int,
        day_totals: _Counts | None,
    ) -> _Counts:
        rules = self.ctx.consent_rules
        counts = await self.run(
            lambda conn: _commit_file(conn, source, events, rejects, rows, rules, day_totals)
        )
        count(PLATFORM, counts.rows, counts.rejected, counts.as_batch())
        return counts

    async def _get(self, client: httpx.AsyncClient, path: str, limit: int) -> bytes | None:
        """The body, or None for 404 (a day not published yet, a listed file missing)."""
        response = await send(client, "GET", path, policy=self.retry, stream=True)
        if response.status_code == 200:
            return await read_limited(response, limit)
        await response.aclose()
        if response.status_code == 404:
            return None
        if response.status_code == 401:
            raise UpstreamError(
                f"{PLATFORM} refused the app key/secret (HTTP 401): check {self.credentials_path}"
            )
        raise UpstreamError(f"{PLATFORM}: GET {path} answered HTTP {response.status_code}")


def catch_up(today: date, position: str | None) -> tuple[list[date], tuple[date, date] | None]:
    """The schedule's days, whatever the clock did since the last run: from the last
    synced day (again, for its late files; at latest yesterday) to today, or the whole
    backfill limit on a first run. A position older than the limit leaves the days
    before it behind (returned, for the log and the metric): the platform keeps no
    batch forever, and a run must stay bounded."""
    first = today - timedelta(days=MAX_BACKFILL_DAYS - 1)
    skipped = None
    if position is not None:
        last = datetime.strptime(position, "%Y%m%d").date()
        start = min(last, today - timedelta(days=1))
        if start >= first:
            first = start
        elif last + timedelta(days=1) < first:
            skipped = (last + timedelta(days=1), first - timedelta(days=1))
    return [first + timedelta(days=i) for i in range((today - first).days + 1)], skipped


def _refused(report: YingchuangReport, day: str, name: str, reason: str) -> None:
    log.warning("file refused: %s", reason, extra={"platform": PLATFORM, "file": f"{day}/{name}"})
    report.rejected.append({"day": day, "file": name, "line": None, "id": None, "reason": reason})
