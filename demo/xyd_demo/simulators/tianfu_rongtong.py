"""A 天府融通 Tianfu Rongtong platform for tests and the demo (docs/platforms/tianfu-rongtong.md).

An OAuth2 token endpoint (client credentials, `client_secret_post`) and a
cursor-paginated feed of supply-chain financing events. The feed is a log:
events are appended in time order as loans move through their lives, a few
are malformed, and some are delivered again later (at least once). A cursor
is base64 of `{"p": offset}` in the log.

Switches for tests: `throttle(n, retry_after)` (429 for the next n feed
requests), `fail(n, status)` (5xx), `expire_tokens(after=n)` (every token
issued so far stops working after n more feed requests: a 401 mid-feed),
`expire_cursors(n)` (410 for the next n requests that carry a cursor).
"""

from __future__ import annotations

import base64
import bisect
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from xyd_demo.simulators import Borrowers, pick, write_credentials

DEFAULT_BASE_URL = "http://127.0.0.1:8103"  # the demo serves it on a port picked at start
BANKS = ("ICBC-CD", "CCB-CD", "BOC-CD", "ABC-CD", "CDRCB", "BOCD", "CMB-CD")
SCOPES = ["basic", "penalties", "tax", "judicial", "loans"]
_CORE_NAMES = ("汽车制造", "电子信息", "轨道交通", "航空装备", "食品饮料", "医药集团")
_SUPPLIER_NAMES = ("机械配件", "精密模具", "包装材料", "电子元件", "物流服务", "化工原料")
_PLACES = ("成都", "四川", "天府", "蓉城", "锦城", "西部")


def _code(rng: Random) -> str:
    body = "".join(rng.choice(CREDIT_ALPHABET) for _ in range(8))
    return make_credit_code("9", "1", rng.choice(("510100", "510107", "510112", "510116")), body)


def _zulu(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Loan:
    contract: str
    supplier: dict[str, str]
    core: dict[str, str]
    bank: str
    amount: int
    stage: str = "new"
    repaid: int = 0


@dataclass
class FeedLog:
    """The platform's event log: loans advancing one step at a time, in time order."""

    seed: int
    clock: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)  # when each entry joined the log
    invalid_ids: set[str] = field(default_factory=set)
    borrowers: Borrowers = ()  # the suppliers, when given

    def __post_init__(self) -> None:
        self.rng = Random(self.seed)
        self.active: list[_Loan] = []
        self.loans = 0
        self.serial = 0
        self.cores = [
            {"unified_code": _code(self.rng), "name": f"{_PLACES[i]}{n}有限公司"}
            for i, n in enumerate(_CORE_NAMES)
        ]

    def append(self, count: int) -> None:
        """`count` new events (about 2% malformed), plus some earlier ones delivered again."""
        for _ in range(count):
            self.clock += timedelta(seconds=self.rng.randint(5, 90))
            if self.rng.random() < 0.02:
                self._add(self._malformed())
            else:
                self._add(self._step())
            if self.rng.random() < 0.03 and len(self.entries) > 10:
                self.entries.append(self.rng.choice(self.entries[-200:]))
                self.times.append(self.clock)

    def unique(self) -> dict[str, dict[str, Any]]:
        return {e["id"]: e for e in self.entries}

    def _add(self, event: dict[str, Any]) -> None:
        self.entries.append(event)
        self.times.append(self.clock)

    def _event(self, loan: _Loan, kind: str, **extra: Any) -> dict[str, Any]:
        self.serial += 1
        return {
            "id": f"tfrt_evt_{self.seed:02d}{self.serial:08X}",
            "type": kind,
            "occurred_at": _zulu(self.clock),
            "supplier": dict(loan.supplier),
            "core_enterprise": dict(loan.core),
            "financing": {
                "contract_no": loan.contract,
                "bank_code": loan.bank,
                "amount_fen": loan.amount,
                "receivable_due": (self.clock + timedelta(days=90)).date().isoformat(),
            },
            "repayment": None,
            "authorization": None,
            **extra,
        }

    def _new_loan(self) -> _Loan:
        self.loans += 1
        rng = self.rng
        supplier = {
            "unified_code": _code(rng),
            "name": f"{rng.choice(_PLACES)}{rng.choice(_SUPPLIER_NAMES)}有限公司",
        }
        if self.borrowers:
            code, name = pick(self.borrowers, self.loans - 1)
            supplier = {"unified_code": code, "name": name}
        loan = _Loan(
            contract=f"TFRT-SCF-{self.clock.year}-{self.seed:02d}{self.loans:05d}",
            supplier=supplier,
            core=rng.choice(self.cores),
            bank=rng.choice(BANKS),
            amount=rng.randint(20, 2000) * 1_000_000 + rng.choice((0, 0, 50, 12_345)),
        )
        self.active.append(loan)
        return loan

    def _step(self) -> dict[str, Any]:
        rng = self.rng
        if len(self.active) < 8 or rng.random() < 0.25:
            loan = self._new_loan()
        else:
            loan = rng.choice(self.active)
        kind, extra = self._next(loan)
        loan.stage = kind
        if kind in ("financing.rejected", "financing.settled", "financing.defaulted"):
            self.active.remove(loan)
        return self._event(loan, kind, **extra)

    def _next(self, loan: _Loan) -> tuple[str, dict[str, Any]]:
        rng, today = self.rng, self.clock.date()
        due = (today - timedelta(days=rng.randint(0, 10))).isoformat()
        part = loan.amount // 3
        stage = loan.stage
        if stage == "new":
            return "financing.applied", {}
        if stage == "financing.applied" and rng.random() < 0.8:
            valid = (today + timedelta(days=180)).isoformat()
            auth = {"bank_code": loan.bank, "scopes": SCOPES, "valid_until": valid}
            return "financing.authorized", {"authorization": auth}
        if stage in ("financing.applied", "financing.authorized"):
            return ("financing.rejected" if rng.random() < 0.15 else "financing.approved"), {}
        if stage == "financing.approved":
            return "financing.disbursed", {}
        if stage == "repayment.overdue" and rng.random() < 0.5:
            return "financing.defaulted", {}
        if loan.repaid >= 2 and stage == "repayment.received":
            return "financing.settled", {}
        if rng.random() < 0.3 and stage != "repayment.overdue":
            late = {"due_date": due, "amount_fen": part, "days_overdue": rng.randint(1, 60)}
            return "repayment.overdue", {"repayment": late}
        loan.repaid += 1
        paid = {"due_date": due, "amount_fen": part, "days_overdue": 0}
        return "repayment.received", {"repayment": paid}

    def _malformed(self) -> dict[str, Any]:
        loan = _Loan(
            contract=f"TFRT-SCF-BAD-{self.serial}",
            supplier={"unified_code": _code(self.rng), "name": "某某坏数据有限公司"},
            core=self.cores[0],
            bank="BOCD",
            amount=1_000_000,
        )
        event = self._event(loan, "financing.disbursed")
        fault = self.serial % 4
        if fault == 0:
            code = event["supplier"]["unified_code"]
            event["supplier"]["unified_code"] = code[:-1] + ("0" if code[-1] != "0" else "1")
        elif fault == 1:
            event["type"] = "financing.extended"
        elif fault == 2:
            event["financing"]["amount_fen"] = "4280000.00"
        else:
            event["core_enterprise"] = {"unified_code": "91510100MAACXN3F0", "name": "短代码"}
        self.invalid_ids.add(event["id"])
        return event


class TianfuRongtongSimulator:
    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        seed: int = 11,
        events: int = 300,
        start: datetime | None = None,
        token_ttl: int = 7200,
        borrowers: Borrowers = (),
    ) -> None:
        self.client_id = client_id or f"tfrt_{secrets.token_hex(6)}"
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_ttl = token_ttl
        self.log = FeedLog(
            seed, start or datetime.now(UTC) - timedelta(days=5), borrowers=borrowers
        )
        self.log.append(events)
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.feed_requests: list[dict[str, str]] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self._revoke_after: int | None = None
        self._gone = 0
        self.app = Starlette(
            routes=[
                Route("/healthz", _healthz),
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route("/api/v2/credit-events", self._feed),
            ]
        )

    # --- switches ---------------------------------------------------------------

    def throttle(self, requests: int, retry_after: int = 1) -> None:
        self._failures.extend([(429, {"Retry-After": str(retry_after)})] * requests)

    def fail(self, requests: int, status: int = 503) -> None:
        self._failures.extend([(status, {})] * requests)

    def expire_tokens(self, after: int = 0) -> None:
        """Every token issued so far stops working after `after` more feed requests."""
        if after == 0:
            self.tokens.clear()
        else:
            self._revoke_after = after

    def expire_cursors(self, requests: int = 1) -> None:
        self._gone += requests

    # --- the platform -------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        given_id = form.get("client_id", "").encode()
        given_secret = form.get("client_secret", "").encode()
        id_ok = secrets.compare_digest(given_id, self.client_id.encode())
        secret_ok = secrets.compare_digest(given_secret, self.client_secret.encode())
        if not (id_ok and secret_ok):
            return JSONResponse({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + self.token_ttl
        self.tokens_issued += 1
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl},
            headers={"Cache-Control": "no-store"},
        )

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
        return expiry is not None and expiry > time.time()

    async def _feed(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.feed_requests.append(params)
        if self._failures:
            status, headers = self._failures.popleft()
            return JSONResponse(
                {"error": "slow_down" if status == 429 else "unavailable"}, status, headers
            )
        if self._revoke_after is not None:
            self._revoke_after -= 1
            if self._revoke_after < 0:
                self._revoke_after = None
                self.tokens.clear()
        if not self._bearer_ok(request):
            return JSONResponse(
                {"error": "invalid_token"},
                401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        try:
            limit = int(params.get("limit", "100"))
            offset = self._offset(params)
        except ValueError as exc:
            return JSONResponse({"error": "invalid_request", "message": str(exc)}, 400)
        if not 1 <= limit <= 500:
            return JSONResponse({"error": "invalid_request", "message": "limit is 1..500"}, 400)
        if "cursor" in params and self._gone:
            self._gone -= 1
            return JSONResponse({"error": "cursor_expired"}, 410)
        page = self.log.entries[offset : offset + limit]
        after = offset + len(page)
        return JSONResponse(
            {
                "data": page,
                "next_cursor": _cursor(after),
                "has_more": after < len(self.log.entries),
            }
        )

    def _offset(self, params: dict[str, str]) -> int:
        if "cursor" in params:
            try:
                position = json.loads(base64.urlsafe_b64decode(params["cursor"]))["p"]
            except (ValueError, KeyError, TypeError):
                raise ValueError("cursor is not one of ours") from None
            if type(position) is not int or not 0 <= position <= len(self.log.entries):
                raise ValueError("cursor is not one of ours")
            return position
        if "since" in params:
            since = datetime.fromisoformat(params["since"])
            if since.tzinfo is None:
                raise ValueError("since needs an offset")
            return bisect.bisect_left(self.log.times, since)
        return 0


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"p": offset}, separators=(",", ":")).encode()
    ).decode()


async def _healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


def write_demo_credentials(directory: Path) -> None:
    """`directory/simulator.json`: where the simulator listens and the gateway's client."""
    credentials = {
        "base_url": DEFAULT_BASE_URL,
        "client_id": f"tfrt_{secrets.token_hex(6)}",
        "client_secret": secrets.token_urlsafe(24),
    }
    write_credentials(directory, credentials)


def demo(
    directory: Path, *, events: int = 2000, borrowers: Borrowers = ()
) -> TianfuRongtongSimulator:
    """A simulator answering the credentials in `directory`, with a feed of `events`."""
    credentials = json.loads((directory / "simulator.json").read_text(encoding="utf-8"))
    return TianfuRongtongSimulator(
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        events=events,
        borrowers=borrowers,
    )
