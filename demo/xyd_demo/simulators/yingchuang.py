"""A 盈创动力 Yingchuang Dongli platform for tests and the demo (docs/platforms/yingchuang.md).

It publishes daily batches (a manifest and CSV files in UTF-8 with a BOM,
CRLF, RFC 4180 quoting) behind HTTP Basic authentication. A day's file holds
the events that occurred that day for a deterministic population of loans
(each loan's history is a function of the seed, its start day and its
number), a few invalid rows, and a few rows re-published from the day before.

Switches for tests: `corrupt(day)` (files no longer match the manifest),
`throttle(n, retry_after)` (429 for the next n requests), `fail(n, status)`
(502/503 for the next n), and a day not `publish`ed answers 404.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from random import Random

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from xyd_demo.simulators import Borrowers, pick, write_credentials

DEFAULT_BASE_URL = "http://127.0.0.1:8102"  # the demo serves it on a port picked at start
BEIJING = timezone(timedelta(hours=8))
HEADER = [
    "流水号", "业务类型", "统一社会信用代码", "企业名称", "合同编号",
    "贷款银行", "金额(万元)", "期限(月)", "发生日期", "逾期天数",
]  # fmt: skip
BANKS = ("ICBC-CD", "CCB-CD", "BOC-CD", "ABC-CD", "CDRCB", "BOCD", "CMB-CD")
_NAMES = (
    "成都{0}科技有限公司",
    "四川{0}精密制造有限公司",
    '成都"{0}"智能装备有限公司',
    "成都{0}生物医药有限公司(高新区, 第二分公司)",
    '四川{0}软件股份有限公司, "专精特新"',
    "成都高新区{0}电子有限公司",
)
_WORDS = ("星河", "蓉城", "天府", "锦江", "银杏", "芙蓉", "青城", "岷江", "熊猫", "金沙")

Row = list[str]


def _wan(fen: int) -> str:
    """Fen as 万元 text with up to six decimals, as the platform writes it."""
    whole, part = divmod(fen, 1_000_000)
    return f"{whole}.{part:06d}".rstrip("0").rstrip(".")


def _company(rng: Random) -> tuple[str, str]:
    body = "".join(rng.choice(CREDIT_ALPHABET) for _ in range(8))
    code = make_credit_code("9", "1", rng.choice(("510100", "510104", "510107", "510116")), body)
    return code, rng.choice(_NAMES).format(rng.choice(_WORDS) + rng.choice(_WORDS))


def _plan(number: int) -> list[tuple[int, str, str, str]]:
    """A loan's life as (day offset, business type, amount share, days overdue).

    Fate and gaps follow from the loan's number alone, so every day with eight
    or more loans a day carries every business type.
    """
    fate, decided = number % 8, 1 + (number // 8) % 3
    paid = decided + (number // 24) % 4
    plan = [(0, "申请", "whole", "")]
    if number % 5 != 4:
        plan.append((0, "授权", "", ""))
    if fate == 0:
        return [*plan, (decided, "审批拒绝", "", "")]
    plan += [(decided, "审批通过", "whole", ""), (paid, "放款", "whole", "")]
    plan.append((paid + 30, "还款", "third", ""))
    if fate == 1:
        return [*plan, (paid + 65, "逾期", "", "5"), (paid + 80, "违约", "", "")]
    if fate == 2:
        return [*plan, (paid + 65, "逾期", "", "5"), (paid + 66, "还款", "third", "")]
    plan.append((paid + 60, "还款", "third", ""))
    return [*plan, (paid + 75, "结清", "rest", "")] if fate > 3 else plan


@functools.lru_cache(maxsize=65_536)
def _borrower(
    seed: int, start: date, number: int, borrowers: Borrowers = ()
) -> tuple[str, str, str, int, int]:
    """(credit code, name, bank, term in months, amount in fen) of one loan."""
    rng = Random(f"{seed}:{start:%Y%m%d}:{number}")
    code, name = _company(rng)
    if borrowers:
        code, name = pick(borrowers, start.toordinal() * 12 + number)
    bank, term = rng.choice(BANKS), rng.choice((6, 12, 24, 36))
    amount = rng.randint(10, 500) * 10_000_000 + rng.choice((0, 0, 0, 1, 250_000, 4_560))
    return code, name, bank, term, amount


def _row(seed: int, start: date, number: int, step: int, borrowers: Borrowers = ()) -> Row:
    offset, kind, share, overdue = _plan(number)[step]
    code, name, bank, term, amount = _borrower(seed, start, number, borrowers)
    fen = {"whole": amount, "third": amount // 3, "rest": amount - 2 * (amount // 3)}.get(share)
    day = start + timedelta(days=offset)
    return [
        f"YC{start:%Y%m%d}{number:05d}{step:02d}", kind, code, name,
        f"YC-HT-{start:%Y%m%d}-{number:05d}", bank, "" if fen is None else _wan(fen),
        str(term), f"{day:%Y%m%d}", overdue,
    ]  # fmt: skip


def loan_history(seed: int, start: date, number: int) -> list[Row]:
    """One loan's whole life, oldest first."""
    return [_row(seed, start, number, step) for step in range(len(_plan(number)))]


def _invalid_rows(seed: int, day: date, count: int) -> list[Row]:
    """Rows the adapter must reject one by one, each wrong in one way."""
    rng = Random(f"{seed}:{day:%Y%m%d}:invalid")
    rows: list[Row] = []
    for i in range(count):
        code, name = _company(rng)
        serial = f"YCX{day:%Y%m%d}{i:04d}"
        row = [serial, "放款", code, name, f"YC-HT-X-{i}", "BOCD", "100", "12", f"{day:%Y%m%d}", ""]
        fault = i % 6
        if fault == 0:
            row[2] = code[:-1] + ("0" if code[-1] != "0" else "1")  # check character wrong
        elif fault == 1:
            row[1] = "展期"  # not a business type of the spec
        elif fault == 2:
            row[6] = "12.3456789"  # finer than the fen
        elif fault == 3:
            row[8] = f"{day:%Y-%m-%d}"
        elif fault == 4:
            row[6] = ""  # a disbursement with no amount
        else:
            row = row[:8]  # a short row
        rows.append(row)
    return rows


def day_rows(seed: int, day: date, loans_per_day: int, borrowers: Borrowers = ()) -> list[Row]:
    """The valid rows that occurred on `day`, across every loan alive then."""
    rows: list[Row] = []
    for number in range(loans_per_day):
        for step, (offset, *_) in enumerate(_plan(number)):
            rows.append(_row(seed, day - timedelta(days=offset), number, step, borrowers))
    return rows


def encode_csv(rows: list[Row], header: list[str] = HEADER) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


@dataclass
class Batch:
    day: date
    files: dict[str, bytes]
    rows: dict[str, int]
    valid: list[Row] = field(default_factory=list)  # in file order, re-published rows included

    def manifest(self) -> dict[str, object]:
        after = self.day + timedelta(days=1)
        return {
            "date": f"{self.day:%Y%m%d}",
            "generatedAt": f"{after:%Y-%m-%d}T02:05:00+08:00",
            "files": [
                {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "rows": self.rows[name]}
                for name, data in self.files.items()
            ],
        }


class YingchuangSimulator:
    def __init__(
        self,
        *,
        app_key: str | None = None,
        app_secret: str | None = None,
        seed: int = 7,
        loans_per_day: int = 12,
        file_rows: int = 2000,
        borrowers: Borrowers = (),
    ) -> None:
        self.borrowers = borrowers
        self.app_key = app_key or f"yc_{secrets.token_hex(8)}"
        self.app_secret = app_secret or secrets.token_urlsafe(24)
        self.seed, self.loans_per_day, self.file_rows = seed, loans_per_day, file_rows
        self.batches: dict[str, Batch] = {}
        self.corrupted: set[str] = set()
        self.requests: list[str] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self.app = Starlette(
            routes=[
                Route("/healthz", _healthz),
                Route("/openapi/batches/{day}/{name}", self._serve),
            ]
        )

    # --- switches ---------------------------------------------------------------

    def publish(
        self,
        day: date,
        *,
        rows: list[Row] | None = None,
        invalid: int | None = None,
        header: list[str] = HEADER,
    ) -> Batch:
        """Publish `day`: the given rows, or the generated day (with bad and re-published rows)."""
        if rows is None:
            rows = day_rows(self.seed, day, self.loans_per_day, self.borrowers)
            previous = day_rows(
                self.seed, day - timedelta(days=1), self.loans_per_day, self.borrowers
            )
            rows += Random(f"{self.seed}:{day}:again").sample(previous, len(previous) // 30)
        valid = list(rows)
        count = max(1, len(rows) // 50) if invalid is None else invalid
        bad = _invalid_rows(self.seed, day, count)
        mixed = list(rows)
        for i, row in enumerate(bad):  # spread through the file, not bunched at the end
            mixed.insert((i + 1) * len(mixed) // (count + 1), row)
        files, counts = {}, {}
        for index in range(0, max(1, len(mixed)), self.file_rows):
            name = f"loan_events_{day:%Y%m%d}_{index // self.file_rows + 1:02d}.csv"
            chunk = mixed[index : index + self.file_rows]
            files[name], counts[name] = encode_csv(chunk, header), len(chunk)
        batch = Batch(day, files, counts, valid)
        self.batches[f"{day:%Y%m%d}"] = batch
        return batch

    def withdraw(self, day: date) -> None:
        self.batches.pop(f"{day:%Y%m%d}", None)

    def corrupt(self, day: date, on: bool = True) -> None:
        """Serve `day`'s files truncated, so they no longer match the manifest."""
        (self.corrupted.add if on else self.corrupted.discard)(f"{day:%Y%m%d}")

    def throttle(self, requests: int, retry_after: int = 1) -> None:
        self._failures.extend([(429, {"Retry-After": str(retry_after)})] * requests)

    def fail(self, requests: int, status: int = 503) -> None:
        self._failures.extend([(status, {})] * requests)

    # --- the platform -------------------------------------------------------------

    def _authenticated(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        # Both compared, whatever the first says: no timing hint of which was wrong.
        key_ok = secrets.compare_digest(key.encode(), self.app_key.encode())
        secret_ok = secrets.compare_digest(secret.encode(), self.app_secret.encode())
        return key_ok and secret_ok

    async def _serve(self, request: Request) -> Response:
        day, name = request.path_params["day"], request.path_params["name"]
        self.requests.append(f"{day}/{name}")
        if self._failures:
            status, headers = self._failures.popleft()
            return PlainTextResponse(
                "slow down" if status == 429 else "unavailable", status, headers
            )
        if not self._authenticated(request):
            return JSONResponse(
                {"code": 401, "message": "invalid app key or secret"},
                401,
                {"WWW-Authenticate": 'Basic realm="openapi"'},
            )
        batch = self.batches.get(day)
        if batch is None:
            return JSONResponse({"code": 404, "message": "batch not published"}, 404)
        if name == "manifest.json":
            return JSONResponse(batch.manifest())
        data = batch.files.get(name)
        if data is None:
            return JSONResponse({"code": 404, "message": "no such file"}, 404)
        if day in self.corrupted:
            data = data[: len(data) * 2 // 3]
        return Response(data, media_type="text/csv; charset=utf-8")


async def _healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


def write_demo_credentials(directory: Path) -> None:
    """`directory/simulator.json`: where the simulator listens and the gateway's key."""
    credentials = {
        "base_url": DEFAULT_BASE_URL,
        "app_key": f"yc_{secrets.token_hex(8)}",
        "app_secret": secrets.token_urlsafe(24),
    }
    write_credentials(directory, credentials)


def demo(
    directory: Path, *, days: int = 7, today: date | None = None, borrowers: Borrowers = ()
) -> YingchuangSimulator:
    """A simulator answering the credentials in `directory`, with the `days` before
    `today` (Beijing's, as the platform dates its batches) published."""
    credentials = json.loads((directory / "simulator.json").read_text(encoding="utf-8"))
    simulator = YingchuangSimulator(
        app_key=credentials["app_key"], app_secret=credentials["app_secret"], borrowers=borrowers
    )
    last = today or datetime.now(BEIJING).date()
    for back in range(days, 0, -1):
        simulator.publish(last - timedelta(days=back))
    return simulator
