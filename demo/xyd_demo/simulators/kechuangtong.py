"""A 科创通 Kechuangtong stand-in: signs and POSTs webhooks, and receives callbacks.

It speaks the spec (`specs/platforms/kechuangtong.md`) on its own, without the
adapter's code, so a misreading in one shows up against the other:

- `stream(count, seed=...)` a deterministic, realistic run of events (loans from
  application to settlement or default, with duplicates and malformed ones);
- `Sender` signs and POSTs them to a gateway;
- `CallbackReceiver` is a tiny ASGI app that records the risk alerts the gateway
  sends back and checks their signatures, optionally failing on purpose;
- `write_demo_credentials(dir)` writes `dir/secret`, the shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from gateway.private_files import private_dir, write_private
from xyd_demo.simulators import Borrowers, pick

PATH = "/v1/platforms/kechuangtong/events"
log = logging.getLogger("xyd.simulators.kechuangtong")
BEIJING = timezone(timedelta(hours=8))
BANKS = ("BOCD", "ICBC-CD", "CCB-CD", "BOC-CD", "ABC-CD", "CDRCB", "CMB-CD")
PRODUCTS = ("科创贷", "知识产权质押贷", "研发贷", "人才贷")
SCOPES = ("basic", "penalties", "tax", "judicial")
Kind = Literal["valid", "duplicate", "malformed"]


def sign(secret: bytes, timestamp: str, raw: bytes) -> str:
    return "v1=" + hmac.new(secret, f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def write_demo_credentials(directory: Path) -> None:
    """`directory/secret`: a fresh random shared secret (hex), one line."""
    write_private(private_dir(directory) / "secret", secrets.token_hex(32) + "\n")


# --- events ----------------------------------------------------------------------------


def event(
    event_type: str,
    *,
    event_id: str,
    credit_code: str,
    application_no: str,
    occurred_at: datetime,
    bank_code: str = "BOCD",
    amount: str | None = None,
    product: str = "科创贷",
    term_months: int = 12,
    name: str = "成都某某科技有限公司",
    repayment: dict[str, Any] | None = None,
    authorization: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event body as the platform writes it."""
    body: dict[str, Any] = {
        "eventId": event_id,
        "eventType": event_type,
        "occurredAt": occurred_at.astimezone(BEIJING).isoformat(timespec="seconds"),
        "enterprise": {"creditCode": credit_code, "name": name},
        "loan": {
            "applicationNo": application_no,
            "bankCode": bank_code,
            "product": product,
            "currency": "CNY",
            "termMonths": term_months,
        },
        "repayment": repayment,
    }
    if amount is not None:
        body["loan"]["amount"] = amount
    if authorization is not None:
        body["authorization"] = authorization
    return body


def authorization(
    bank_code: str, valid_until: date, scopes: Iterable[str] = SCOPES
) -> dict[str, Any]:
    document = hashlib.sha256(f"kct-authorisation:{bank_code}:{valid_until}".encode()).hexdigest()
    return {
        "bankCode": bank_code,
        "scopes": list(scopes),
        "validUntil": valid_until.isoformat(),
        "documentSha256": document,
    }


@dataclass(frozen=True)
class Message:
    """One request the platform sends: `header_event_id` is what X-KCT-Event-Id says."""

    raw: bytes
    header_event_id: str
    kind: Kind
    event_type: str

    @classmethod
    def of(cls, body: dict[str, Any], kind: Kind = "valid") -> Message:
        return cls(orjson.dumps(body), str(body.get("eventId")), kind, str(body.get("eventType")))


def enterprise_codes(rng: random.Random, count: int) -> list[str]:
    """Valid-looking codes of Chengdu companies (9 = market regulator, 1 = company)."""
    letters = CREDIT_ALPHABET
    return [
        make_credit_code("9", "1", "510100", "MA" + "".join(rng.choice(letters) for _ in range(6)))
        for _ in range(count)
    ]


class _Loans:
    """Writes each loan's lifecycle; keeps the running event number."""

    def __init__(self, rng: random.Random, start: datetime, borrowers: Borrowers = ()) -> None:
        self.rng, self.start, self.n = rng, start, 0
        self.codes = enterprise_codes(rng, 40)
        self.borrowers = borrowers

    def _id(self, at: datetime) -> str:
        self.n += 1
        return f"kct-{at:%Y%m%d}-{self.n:06d}"

    def lifecycle(self, number: int) -> list[dict[str, Any]]:
        rng = self.rng
        at = self.start + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
        named: dict[str, Any] = {"credit_code": rng.choice(self.codes)}
        if self.borrowers:
            named["credit_code"], named["name"] = pick(self.borrowers, number - 1)
        common: dict[str, Any] = {
            **named,
            "application_no": f"KCT{at:%Y%m%d}{number:05d}",
            "bank_code": rng.choice(BANKS),
            "product": rng.choice(PRODUCTS),
            "term_months": rng.choice((6, 12, 24, 36)),
        }
        principal = Decimal(rng.randrange(20, 500) * 10_000)
        out: list[dict[str, Any]] = []

        def add(kind: str, hours: float, **extra: Any) -> None:
            nonlocal at
            at += timedelta(hours=hours)
            out.append(event(kind, event_id=self._id(at), occurred_at=at, **common, **extra))

        add("APPLICATION_SUBMITTED", 0, amount=f"{principal:.2f}")
        until = (at + timedelta(days=180)).date()
        add("AUTHORIZATION_SIGNED", 0.5, authorization=authorization(common["bank_code"], until))
        if rng.random() < 0.15:
            add("LOAN_REJECTED", 48)
            return out
        add("LOAN_APPROVED", 72, amount=f"{principal:.2f}")
        add("LOAN_DISBURSED", 24, amount=f"{principal:.2f}")
        instalment = (principal / 4).quantize(Decimal("0.01"))
        for _ in range(3):
            due = (at + timedelta(days=30)).date()
            repayment = {"dueDate": due.isoformat(), "amount": f"{instalment:.2f}"}
            if rng.random() < 0.15:
                days = rng.randrange(3, 90)
                add(
                    "REPAYMENT_OVERDUE",
                    24 * (30 + days),
                    repayment={**repayment, "daysOverdue": days},
                )
                if days > 60:
                    add("LOAN_DEFAULTED", 24)
                    return out
            add("REPAYMENT_RECEIVED", 24 * 30, repayment={**repayment, "daysOverdue": 0})
        add("LOAN_SETTLED", 24 * 30, amount=f"{principal:.2f}")
        return out


MUTATIONS: tuple[Callable[[dict[str, Any]], None], ...] = (
    # a check character that does not match
    lambda b: b["enterprise"].update(
        creditCode=b["enterprise"]["creditCode"][:-1]
        + ("0" if b["enterprise"]["creditCode"][-1] != "0" else "1")
    ),
    lambda b: b["loan"].update(amount="1500000.005"),
    lambda b: b.update(eventType="LOAN_RESTRUCTURED"),
    lambda b: b.pop("occurredAt"),
    lambda b: b.update(enterprise=None),
)


def stream(
    count: int,
    *,
    seed: int = 7,
    start: datetime | None = None,
    until: datetime | None = None,
    borrowers: Borrowers = (),
) -> list[Message]:
    """`count` requests: loans interleaved in time, ~4% resent, ~3% malformed; with
    `until`, only what has happened by then (a live platform sends no future)."""
    rng = random.Random(seed)
    loans = _Loans(rng, start or datetime(2026, 11, 1, 9, 0, tzinfo=BEIJING), borrowers)
    bodies: list[dict[str, Any]] = []
    number = 0
    while len(bodies) < count:
        number += 1
        lifecycle = loans.lifecycle(number)
        if until is not None:
            lifecycle = [b for b in lifecycle if datetime.fromisoformat(b["occurredAt"]) <= until]
            if not lifecycle:
                break  # a loan that has not begun by `until`: the stream would never fill
        bodies.extend(lifecycle)
    bodies.sort(key=lambda b: (b["occurredAt"], b["eventId"]))
    out: list[Message] = []
    for body in bodies:
        if len(out) >= count:
            break
        roll = rng.random()
        if roll < 0.03:
            broken = orjson.loads(orjson.dumps(body))
            rng.choice(MUTATIONS)(broken)
            broken["eventId"] = f"{body['eventId']}-x"  # never collides with a valid one
            out.append(
                Message(orjson.dumps(broken), broken["eventId"], "malformed", body["eventType"])
            )
            continue
        out.append(Message.of(body))
        if roll > 0.96 and len(out) < count:
            out.append(Message.of(body, "duplicate"))
    return out


# --- sending -----------------------------------------------------------------------------


class Sender:
    """Signs and POSTs events to a gateway the way Kechuangtong does."""

    def __init__(
        self,
        base_url: str,
        secret: bytes | Iterable[bytes],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.secrets = [secret] if isinstance(secret, bytes) else list(secret)
        self.clock = clock
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def headers(
        self,
        raw: bytes,
        event_id: str | None,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> dict[str, str]:
        stamp = str(int(self.clock()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-KCT-Timestamp": stamp,
            "X-KCT-Signature": signature
            if signature is not None
            else ",".join(sign(s, stamp, raw) for s in self.secrets),
        }
        if event_id is not None:
            headers["X-KCT-Event-Id"] = event_id
        return headers

    def send(self, message: Message | dict[str, Any], **overrides: Any) -> httpx.Response:
        """POST one event; `overrides` go to `headers` (timestamp=, signature=, event_id=)."""
        if isinstance(message, dict):
            message = Message.of(message)
        event_id = overrides.pop("event_id", message.header_event_id)
        return self.post_raw(message.raw, self.headers(message.raw, event_id, **overrides))

    def post_raw(self, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post(PATH, content=raw, headers=headers)

    def send_all(self, messages: Iterable[Message]) -> dict[int, int]:
        """Every message in order; how many got each status."""
        statuses: dict[int, int] = {}
        for message in messages:
            status = self.send(message).status_code
            statuses[status] = statuses.get(status, 0) + 1
        return statuses


# --- receiving callbacks -----------------------------------------------------------------


@dataclass
class Received:
    body: Any
    event_id: str | None
    verified: bool
    status: int


@dataclass
class CallbackReceiver:
    """The platform's callback endpoint (`path`): checks signature, window and event id.

    Set `fail_with` to an HTTP status to answer every callback with it. A GET on
    `path` lists what was received; each callback is logged (the demo's
    platforms.log shows them).
    """

    secrets: list[bytes]
    path: str = "/kct/callback"
    fail_with: int | None = None
    received: list[Received] = field(default_factory=list)
    app: Starlette = field(init=False)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route(self.path, self._callback, methods=["POST"]),
                Route(self.path, self._listing, methods=["GET"]),
                Route("/healthz", self._health, methods=["GET"]),
            ]
        )

    def verified(self) -> list[Any]:
        return [r.body for r in self.received if r.verified]

    async def _listing(self, _: Request) -> Response:
        return JSONResponse(
            {
                "received": [
                    {"alertId": r.event_id, "verified": r.verified, "status": r.status,
                     "body": r.body}
                    for r in self.received
                ]
            }
        )  # fmt: skip

    async def _health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _callback(self, request: Request) -> Response:
        raw = await request.body()
        stamp = request.headers.get("x-kct-timestamp", "")
        event_id = request.headers.get("x-kct-event-id")
        offered = [
            value.strip().encode("latin-1")
            for value in request.headers.get("x-kct-signature", "").split(",")
        ]
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        good = (
            stamp.isascii()
            and stamp.isdigit()
            and abs(time.time() - int(stamp)) <= 300
            and any(
                hmac.compare_digest(sign(s, stamp, raw).encode(), o)
                for s in self.secrets
                for o in offered
            )
            and isinstance(body, dict)
            and body.get("alertId") == event_id
        )
        status = 401 if not good else (self.fail_with or 200)
        self.received.append(Received(body, event_id, bool(good), status))
        alert = body if isinstance(body, dict) else {}
        log.info(
            "kechuangtong callback %s: %s %s for %s (signature %s, answered %d)",
            event_id,
            alert.get("rule"),
            alert.get("severity"),
            alert.get("creditCode"),
            "verified" if good else "refused",
            status,
        )
        if status == 200:
            return JSONResponse({"code": 0, "message": "ok"})
        return JSONResponse({"code": status * 100, "message": "refused"}, status_code=status)
