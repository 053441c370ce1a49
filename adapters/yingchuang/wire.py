"""盈创动力 Yingchuang's batch format (docs/platforms/yingchuang.md): a day's manifest
and the UTF-8 CSV files it lists, each row one event. A file is refused whole
(wrong digest, encoding, header) or judged row by row."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.bounds import InvalidAmount, day_within, fen_from_wan
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.loans.events import BEIJING, Authorization, EventType, LoanEvent, digest

PLATFORM = "yingchuang"

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
class Rejected:
    line: int
    message_id: str | None
    reason: str
    raw: bytes


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
    details: dict[str, object] = {"business_type": kind_cn}
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


def manifest(body: bytes, day: str) -> list[tuple[str, str, int]]:
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


def checked(data: bytes | None, sha256: str) -> tuple[list[LoanEvent], list[Rejected], int]:
    if data is None:
        raise FileRefused("listed in the manifest but not found (HTTP 404)")
    actual = digest(data)
    if actual != sha256:
        raise FileRefused(f"SHA-256 {actual} differs from the manifest's {sha256}; nothing stored")
    return parse_file(data)
