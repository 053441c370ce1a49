"""盈创动力 Yingchuang Dongli: daily CSV batches the gateway pulls (spec: yingchuang.md).

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

import contextlib
import csv
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter
from sqlalchemy import Connection

from adapters.base import PlatformContext, SyncReport, read_credentials
from adapters.events import (
    BEIJING,
    Authorization,
    EventType,
    InvalidAmount,
    LoanEvent,
    digest,
    fen_from_wan,
)
from adapters.http import DEFAULT_TIMEOUT, RetryPolicy, UpstreamError, read_limited, send
from adapters.ledger import dead_letter, get_state, set_state, store
from gateway.bounds import day_within
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.metrics import PLATFORM_DAYS_SKIPPED, PLATFORM_LAST_SYNC, PLATFORM_MESSAGES
from policies.consent import ConsentRules

PLATFORM = "yingchuang"
log = logging.getLogger("xyd.adapters.yingchuang")

HEADER = (
    "流水号", "业务类型", "统一社会信用代码", "企业名称", "合同编号",
    "贷款银行", "金额(万元)", "期限(月)", "发生日期", "逾期天数",
)  # fmt: skip
KINDS: dict[str, EventType] = {
    "申请": "application_submitted",
    "授权": "consent_granted",
    "审批通过": "loan_approved",
    "审批拒绝": "loan_rejected",
    "放款": "loan_disbursed",
    "还款": "repayment_received",
    "逾期": "repayment_overdue",
    "违约": "loan_defaulted",
    "结清": "loan_settled",
}
AUTH_SCOPES = ("basic", "penalties", "tax", "judicial")
AUTH_DAYS = 180
MAX_BACKFILL_DAYS = 31
MAX_MANIFEST_BYTES = 1 << 20
MAX_FILE_BYTES = 64 << 20  # a day is a few thousand rows; this is room for growth, not a quota
BOM = b"\xef\xbb\xbf"
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,126}\.csv")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_BANK_CODE = re.compile(r"[A-Z][A-Z0-9-]{1,31}")
_DAY = re.compile(r"\d{8}")


class FileRefused(ValueError):
    """A whole file is unusable (encoding, header): nothing of it is stored."""


class RowInvalid(ValueError):
    """One row failed validation; the rest of its file is stored."""


@dataclass(frozen=True)
class Credentials:
    base_url: str
    app_key: str
    app_secret: str = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        base, key, secret = read_credentials(PLATFORM, path, ("base_url", "app_key", "app_secret"))
        return cls(base.rstrip("/"), key, secret)


@dataclass(frozen=True)
class Rejected:
    line: int
    message_id: str | None
    reason: str
    raw: bytes


@dataclass
class YingchuangReport(SyncReport):
    """A SyncReport with one summary per day (synced, not published, incomplete)."""

    days: list[dict[str, Any]] = field(default_factory=list)
    # Days a catch-up left behind: older than the backfill limit ("first..last").
    skipped: str | None = None
    # As recorded in the store after this sync: what operators watch.
    last_day: str | None = None
    last_day_rows: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "days": self.days,
            "skipped": self.skipped,
            "last_day": self.last_day,
            "last_day_rows": self.last_day_rows,
        }


# --- the file ----------------------------------------------------------------------


class _Lines:
    """Physical lines handed to csv.reader, kept so each record has its raw bytes."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.count = 0
        self._taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        self._taken.append(line)
        return line

    def take(self) -> bytes:
        raw = "".join(self._taken).encode("utf-8")
        self._taken.clear()
        return raw


def parse_file(data: bytes) -> tuple[list[LoanEvent], list[Rejected], int]:
    """Events, rejected rows and the number of data rows. Raises FileRefused."""
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"not UTF-8 (byte {exc.start})") from None
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise FileRefused("no header row") from None
    if tuple(header) != HEADER:
        raise FileRefused(f"header {','.join(header)!r} differs from {','.join(HEADER)!r}")
    lines.take()
    events: list[LoanEvent] = []
    rejected: list[Rejected] = []
    rows = 0
    while True:
        start = lines.count + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows += 1
            rejected.append(Rejected(start, None, f"malformed CSV: {exc}", lines.take()))
            continue
        raw = lines.take()
        if not fields:  # a blank line (a trailing CRLF too many) is not a row
            continue
        rows += 1
        try:
            events.append(judge(fields, raw))
        except RowInvalid as exc:
            rejected.append(Rejected(start, fields[0].strip() or None, str(exc), raw))
    return events, rejected, rows


def judge(fields: list[str], raw: bytes) -> LoanEvent:
    """One row as a canonical event, or RowInvalid naming the column at fault."""
    if len(fields) != len(HEADER):
        raise RowInvalid(f"expected {len(HEADER)} fields, got {len(fields)}")
    serial, kind_cn, code, name, contract, bank, amount, term, day, overdue = (
        f.strip() for f in fields
    )
    if not 0 < len(serial) <= 128 or not serial.isprintable() or " " in serial:
        raise RowInvalid(f"流水号 {serial!r} is not an id")
    kind = KINDS.get(kind_cn)
    if kind is None:
        raise RowInvalid(f"业务类型 {kind_cn!r} is not one of {'/'.join(KINDS)}")
    try:
        credit_code = validate_credit_code(code)
    except InvalidIdentifier as exc:
        raise RowInvalid(f"统一社会信用代码 {code!r}: {exc.message}") from None
    if len(contract) > 128 or (not contract and kind != "consent_granted"):
        raise RowInvalid(f"合同编号 {contract!r} missing or too long")
    if bank and not _BANK_CODE.fullmatch(bank):
        raise RowInvalid(f"贷款银行 {bank!r} is not a bank code")
    if kind == "consent_granted" and not bank:
        raise RowInvalid("贷款银行 is required for 授权 (the bank the authorisation names)")
    occurred = _day(day, "发生日期")
    details: dict[str, Any] = {"business_type": kind_cn}
    if name:
        details["enterprise_name"] = name[:200]
    if term:
        details["term_months"] = _integer(term, "期限(月)", 1, 600)
    return LoanEvent(
        platform=PLATFORM,
        message_id=serial,
        event_type=kind,
        occurred_at=datetime(occurred.year, occurred.month, occurred.day, tzinfo=BEIJING),
        raw_sha256=digest(raw),
        credit_code=credit_code,
        bank_code=bank or None,
        loan_no=contract or None,
        amount_fen=_amount(amount, kind_cn),
        days_overdue=_days_overdue(overdue, kind_cn),
        authorization=Authorization(bank, AUTH_SCOPES, occurred + timedelta(days=AUTH_DAYS))
        if kind == "consent_granted"
        else None,
        details=details,
    )


def _amount(text: str, kind_cn: str) -> int | None:
    if not text:
        if kind_cn in ("放款", "还款"):
            raise RowInvalid(f"金额(万元) is required for {kind_cn}")
        return None
    try:
        return fen_from_wan(text)
    except InvalidAmount as exc:
        raise RowInvalid(f"金额(万元): {exc}") from None


def _days_overdue(text: str, kind_cn: str) -> int | None:
    if kind_cn == "逾期":
        return _integer(text, "逾期天数", 1, 36_500)
    if text not in ("", "0"):
        raise RowInvalid(f"逾期天数 {text!r} is only for 逾期")
    return None


def _integer(text: str, column: str, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise RowInvalid(f"{column} {text!r} is not a whole number from {low} to {high}")
    return int(text)


def _day(text: str, column: str) -> date:
    if _DAY.fullmatch(text):
        with contextlib.suppress(ValueError):  # DayOutOfRange too
            return day_within(datetime.strptime(text, "%Y%m%d").date())
    raise RowInvalid(f"{column} {text!r} is not a yyyyMMdd date from 19491001 to 21991231")


# --- the sync ----------------------------------------------------------------------


@dataclass
class _Counts:
    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    dead_lettered: int = 0

    def plus(self, other: _Counts) -> _Counts:
        return _Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.rows, self.accepted, self.duplicate, self.rejected, self.dead_lettered)


def _manifest(body: bytes, day: str) -> list[tuple[str, str, int]]:
    """(name, sha256, rows) per file; ValueError says what is wrong with the manifest."""
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"manifest is not JSON: {exc}") from None
    if (
        not isinstance(raw, dict)
        or raw.get("date") != day
        or not isinstance(raw.get("files"), list)
    ):
        raise ValueError(f"manifest is not the manifest of {day}")
    files: list[tuple[str, str, int]] = []
    for entry in raw["files"]:
        name, sha, rows = (
            entry.get(k) if isinstance(entry, dict) else None for k in ("name", "sha256", "rows")
        )
        if not (isinstance(name, str) and _FILE_NAME.fullmatch(name)):
            raise ValueError(f"manifest names an unusable file {name!r}")
        if not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
            raise ValueError(f"manifest gives {name} no SHA-256")
        if type(rows) is not int or rows < 0 or any(f[0] == name for f in files):
            raise ValueError(f"manifest entry for {name} has bad rows or repeats")
        files.append((name, sha.lower(), rows))
    return files


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
    counts = _Counts(rows=rows, rejected=len(rejects))
    for event in events:
        stored = store(conn, event, rules=rules)
        if stored.outcome == "rejected":  # an authorisation, dead-lettered by the ledger
            counts.rejected += 1
            log.warning("%s: %s", source, stored.reason, extra={"platform": PLATFORM})
        elif stored.outcome == "accepted":
            counts.accepted += 1
        else:
            counts.duplicate += 1
    for reject in rejects:
        reason = f"{source} line {reject.line}: {reject.reason}"
        # A re-synced day meets its bad rows again: keep one copy for operators.
        if dead_letter(conn, PLATFORM, reason, reject.raw, once=True):
            counts.dead_lettered += 1
    if day_totals is not None:
        day = source.split("/", 1)[0]
        previous = get_state(conn, PLATFORM, "last_day")
        if previous is None or day >= previous:
            total = day_totals.plus(counts)
            set_state(conn, PLATFORM, "last_day", day)
            set_state(conn, PLATFORM, "last_day_rows", json.dumps(_summary(total)))
    return counts


def _recorded(conn: Connection) -> tuple[str | None, str | None]:
    return get_state(conn, PLATFORM, "last_day"), get_state(conn, PLATFORM, "last_day_rows")


def _summary(counts: _Counts) -> dict[str, int]:
    return {
        "rows": counts.rows,
        "accepted": counts.accepted,
        "duplicate": counts.duplicate,
        "rejected": counts.rejected,
    }


class YingchuangAdapter:
    key = PLATFORM

    def __init__(self, ctx: PlatformContext) -> None:
        name = ctx.settings.get("simulator_file")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{PLATFORM}: simulator_file must name the credentials file")
        schedule = ctx.settings.get("schedule_s")
        if schedule is not None and (
            isinstance(schedule, bool) or not isinstance(schedule, int | float) or schedule <= 0
        ):
            raise ValueError(f"{PLATFORM}: schedule_s must be a positive number of seconds")
        self.ctx = ctx
        self.credentials_path = ctx.path("simulator_file")
        self.retry = RetryPolicy()

    def router(self) -> APIRouter | None:
        return None

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
            files = _manifest(body, day)
        except ValueError as exc:
            summary["status"] = "incomplete"
            _refused(report, day, "manifest.json", str(exc))
            return
        totals, complete = _Counts(), True
        for index, (name, sha256, rows) in enumerate(files):
            data = await self._get(client, f"/openapi/batches/{day}/{quote(name)}", MAX_FILE_BYTES)
            try:
                events, rejects, found = _checked(data, sha256)
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
        async with self.ctx.engine.begin() as conn:
            counts: _Counts = await conn.run_sync(
                _commit_file, source, events, rejects, rows, self.ctx.consent_rules, day_totals
            )
        metric = PLATFORM_MESSAGES
        metric.labels(PLATFORM, "received").inc(counts.rows)
        metric.labels(PLATFORM, "accepted").inc(counts.accepted)
        metric.labels(PLATFORM, "duplicate").inc(counts.duplicate)
        metric.labels(PLATFORM, "rejected").inc(counts.rejected)
        metric.labels(PLATFORM, "dead_lettered").inc(counts.dead_lettered)
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


def _checked(data: bytes | None, sha256: str) -> tuple[list[LoanEvent], list[Rejected], int]:
    if data is None:
        raise FileRefused("listed in the manifest but not found (HTTP 404)")
    actual = digest(data)
    if actual != sha256:
        raise FileRefused(f"SHA-256 {actual} differs from the manifest's {sha256}; nothing stored")
    return parse_file(data)


def _refused(report: YingchuangReport, day: str, name: str, reason: str) -> None:
    log.warning("file refused: %s", reason, extra={"platform": PLATFORM, "file": f"{day}/{name}"})
    report.rejected.append({"day": day, "file": name, "line": None, "id": None, "reason": reason})


def build(ctx: PlatformContext) -> YingchuangAdapter:
    adapter = YingchuangAdapter(ctx)
    if not adapter.credentials_path.exists():
        log.warning(
            "credentials file %s missing: syncs fail until it exists",
            adapter.credentials_path,
            extra={"platform": PLATFORM},
        )
    return adapter
