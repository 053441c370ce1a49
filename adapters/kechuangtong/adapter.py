"""科创通 Kechuangtong: HMAC-signed JSON webhooks in, signed risk-alert callbacks out.

The platform's format lives here and nowhere else (spec:
`specs/platforms/kechuangtong.md`). Config block (`config/platforms.yaml`):

- `secret_file`: file holding the shared secret, one per line (two during a
  rotation, either accepted; the file is re-read when it changes), or
- `secret_env`: name of an environment variable holding it (same format);
- `callback_url`: where risk alerts are POSTed, or null; or
- `callback_file`: a file holding that URL, read at each delivery (the demo
  writes its simulator's address there, on a port picked when it starts).

A secret that is not there yet answers 503 "retry later" (the platform retries
for 24 hours) instead of stopping start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from adapters.base import PlatformContext, StoreUnavailable, SyncReport, receive, reject
from gateway.loans.events import (
    BEIJING,
    Authorization,
    EventType,
    InvalidAmount,
    LoanEvent,
    digest,
    fen_from_yuan,
)
from adapters.http import RetriesExhausted, RetryPolicy, send
from gateway.bounds import day_within, moment_within
from gateway.identifiers import InvalidIdentifier, validate_credit_code

KEY = "kechuangtong"
PATH = f"/v1/platforms/{KEY}/events"
MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_S = 300
ALERT_FIELDS = ("alertId", "creditCode", "applicationNo", "rule", "severity", "raisedAt")
SETTING_KEYS = frozenset({"enabled", "secret_file", "secret_env", "callback_url", "callback_file"})

EVENT_TYPES: dict[str, EventType] = {
    "APPLICATION_SUBMITTED": "application_submitted",
    "AUTHORIZATION_SIGNED": "consent_granted",
    "LOAN_APPROVED": "loan_approved",
    "LOAN_REJECTED": "loan_rejected",
    "LOAN_DISBURSED": "loan_disbursed",
    "REPAYMENT_RECEIVED": "repayment_received",
    "REPAYMENT_OVERDUE": "repayment_overdue",
    "LOAN_DEFAULTED": "loan_defaulted",
    "LOAN_SETTLED": "loan_settled",
}
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger("xyd.adapters.kechuangtong")


class Answer(BaseModel):
    """Every answer the endpoint gives: code 0 is success, otherwise HTTP status x 100."""

    code: int
    message: str


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Answer, "description": 'Stored, or a duplicate of a stored event: code 0, "ok"'},
    400: {
        "model": Answer,
        "description": "Code 40000: not JSON, a missing or invalid field (named), an unknown "
        "eventType, X-KCT-Event-Id not matching eventId, or a body over 64 KiB",
    },
    401: {
        "model": Answer,
        "description": "Code 40100: bad or missing X-KCT-Signature, or X-KCT-Timestamp "
        "missing or more than 300 s from the gateway's clock",
    },
    503: {
        "model": Answer,
        "description": 'Code 50300, "retry later": the store or the shared secret is unavailable',
    },
}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "One Kechuangtong event (webhook interface v2), at most 64 KiB, signed "
        "in X-KCT-Signature as v1=hex(HMAC-SHA256(secret, '{X-KCT-Timestamp}.{body}'))",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class Invalid(ValueError):
    """An authenticated message that is not a valid event; the text names the field."""


def _answer(status: int, code: int, message: str) -> Response:
    return Response(
        orjson.dumps({"code": code, "message": message}),
        status_code=status,
        media_type="application/json",
    )


# --- the shared secret -------------------------------------------------------------


class Secrets:
    """The shared secret(s); the file is re-read when it changes, so a rotation needs
    no restart. An empty tuple means not configured (yet)."""

    def __init__(self, path: Path | None, env: str | None) -> None:
        self.path, self.env = path, env
        self._seen: tuple[int, int, int] | None = None
        self._cached: tuple[bytes, ...] = ()

    def current(self) -> tuple[bytes, ...]:
        if self.env is not None:
            return _lines(os.environ.get(self.env, ""))
        assert self.path is not None
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if seen != self._seen:
                self._cached = _lines(self.path.read_text(encoding="utf-8"))
                self._seen = seen
        except (OSError, UnicodeDecodeError):
            self._seen, self._cached = None, ()
        return self._cached


def _lines(text: str) -> tuple[bytes, ...]:
    return tuple(line.strip().encode() for line in text.splitlines() if line.strip())


def signature(secret: bytes, timestamp: str, raw: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of `{timestamp}.{raw body}` (without the `v1=`)."""
    return hmac.new(secret, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def signed_headers(
    secrets: tuple[bytes, ...], event_id: str, stamp: str, raw: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-KCT-Event-Id": event_id,
        "X-KCT-Timestamp": stamp,
        "X-KCT-Signature": ",".join(f"v1={signature(s, stamp, raw)}" for s in secrets),
    }


def authenticate(
    headers: Mapping[str, str], raw: bytes, secrets: tuple[bytes, ...], now: float
) -> str | None:
    """None if the request is signed by one of `secrets` in time, else why not."""
    stamp = headers.get("x-kct-timestamp", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "X-KCT-Timestamp: missing or not Unix seconds"
    if abs(now - int(stamp)) > REPLAY_WINDOW_S:
        return f"X-KCT-Timestamp: more than {REPLAY_WINDOW_S} s from the gateway's clock"
    offered = [
        value.strip()[3:].lower().encode("latin-1")
        for value in headers.get("x-kct-signature", "").split(",")
        if value.strip().startswith("v1=")
    ]
    if not offered:
        return "X-KCT-Signature: missing"
    expected = [signature(secret, stamp, raw).encode() for secret in secrets]
    # Compare every pair: which secret matched must not show in the timing.
    matched = False
    for mac in expected:
        for candidate in offered:
            matched |= hmac.compare_digest(mac, candidate)
    return None if matched else "X-KCT-Signature: no v1 value matches"


# --- the body ------------------------------------------------------------------------


def parse(raw: bytes, header_event_id: str | None) -> LoanEvent:
    """The canonical event for one webhook body; raises Invalid naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("body: not JSON") from None
    if not isinstance(body, dict):
        raise Invalid("body: expected a JSON object")
    event_id = _text(body, "eventId", "eventId", limit=64)
    if not _EVENT_ID.fullmatch(event_id):
        raise Invalid("eventId: 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    if header_event_id != event_id:
        raise Invalid("X-KCT-Event-Id: missing or not equal to eventId")
    kind = body.get("eventType")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise Invalid(f"eventType: unknown {str(kind)[:40]!r}")
    enterprise = _object(body, "enterprise", "enterprise")
    try:
        credit_code = validate_credit_code(_text(enterprise, "creditCode", "enterprise.creditCode"))
    except InvalidIdentifier as exc:
        raise Invalid(f"enterprise.creditCode: {exc.message}") from None
    loan = _object(body, "loan", "loan", required=kind != "AUTHORIZATION_SIGNED")
    # Only repayment events carry a repayment; elsewhere it is null or ignored.
    repaid = kind.startswith("REPAYMENT_")
    repayment = _object(body, "repayment", "repayment") if repaid else {}
    authorization = _authorization(body) if kind == "AUTHORIZATION_SIGNED" else None
    amount = _amount(loan, "loan.amount", required=kind == "LOAN_DISBURSED")
    if repaid:  # the event's money is the instalment, not the loan
        amount = _amount(repayment, "repayment.amount", required=True)
    if loan.get("currency") not in (None, "CNY"):
        raise Invalid("loan.currency: only CNY is supported")
    return LoanEvent(
        platform=KEY,
        message_id=event_id,
        event_type=EVENT_TYPES[kind],
        occurred_at=_moment(body.get("occurredAt")),
        raw_sha256=digest(raw),
        credit_code=credit_code,
        bank_code=authorization.bank_code if authorization else _bank(loan, "loan.bankCode"),
        loan_no=_text(loan, "applicationNo", "loan.applicationNo", limit=128) if loan else None,
        amount_fen=amount,
        days_overdue=_days(repayment, required=kind == "REPAYMENT_OVERDUE"),
        due_date=_date(repayment, "dueDate", "repayment.dueDate") if repayment else None,
        authorization=authorization,
        details=_details(enterprise, loan),
    )


def _text(obj: Mapping[str, Any], key: str, field: str, *, limit: int = 200) -> str:
    value = obj.get(key)
    if value is None:
        raise Invalid(f"{field}: missing")
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{field}: expected a non-empty string of at most {limit} characters")
    return value


def _object(
    obj: Mapping[str, Any], key: str, field: str, *, required: bool = True
) -> dict[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{field}: {'missing' if value is None else 'expected an object'}")
    return value


def _amount(obj: Mapping[str, Any], field: str, *, required: bool) -> int | None:
    value = obj.get(field.rsplit(".", 1)[1])
    if value is None:
        if required:
            raise Invalid(f"{field}: missing")
        return None
    try:
        return fen_from_yuan(value)
    except InvalidAmount as exc:
        raise Invalid(f"{field}: {exc}") from None


def _moment(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid("occurredAt: missing or not an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("occurredAt: not an ISO 8601 time") from None
    # The platform speaks Beijing time; a time without an offset is one. Stored
    # as UTC: SQLite keeps no offset, and the store reads offset-less times as UTC.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)
    if not moment_within(aware):  # 0001-01-01 would overflow on the way to UTC, and after
        raise Invalid("occurredAt: outside the years this gateway holds")
    return aware.astimezone(UTC)


def _date(obj: Mapping[str, Any], key: str, field: str) -> date:
    value = obj.get(key)
    if isinstance(value, str) and _DAY.fullmatch(value):
        with contextlib.suppress(ValueError):  # DayOutOfRange too
            return day_within(date.fromisoformat(value))
    raise Invalid(f"{field}: expected a date YYYY-MM-DD from 1949-10-01 to 2199-12-31")


def _bank(obj: Mapping[str, Any], field: str) -> str | None:
    if obj.get("bankCode") is None:
        return None
    return _text(obj, "bankCode", field, limit=32)


def _days(repayment: Mapping[str, Any], *, required: bool) -> int | None:
    value = repayment.get("daysOverdue")
    if value is None and not required:
        return None
    if type(value) is not int or value < 0:
        raise Invalid("repayment.daysOverdue: expected a whole number of days, 0 or more")
    return value


def _authorization(body: Mapping[str, Any]) -> Authorization:
    auth = _object(body, "authorization", "authorization")
    scopes = auth.get("scopes")
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and 0 < len(s) <= 40 for s in scopes)
    ):
        raise Invalid("authorization.scopes: expected a non-empty list of scope names")
    document = auth.get("documentSha256")
    if document is not None and not (
        isinstance(document, str) and _SHA256.fullmatch(document.lower())
    ):
        raise Invalid("authorization.documentSha256: expected 64 hex digits")
    return Authorization(
        bank_code=_text(auth, "bankCode", "authorization.bankCode", limit=32),
        scopes=tuple(scopes),
        valid_until=_date(auth, "validUntil", "authorization.validUntil"),
        document_sha256=document.lower() if document else None,
    )


def _details(enterprise: Mapping[str, Any], loan: Mapping[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if enterprise.get("name") is not None:
        details["enterprise_name"] = _text(enterprise, "name", "enterprise.name")
    if loan.get("product") is not None:
        details["product"] = _text(loan, "product", "loan.product")
    term = loan.get("termMonths")
    if term is not None:
        if type(term) is not int or not 0 < term <= 600:
            raise Invalid("loan.termMonths: expected a whole number of months, 1-600")
        details["term_months"] = term
    return details


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it is over the limit (without reading further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


# --- the adapter ------------------------------------------------------------------


class UnknownNotification(ValueError):
    """A notification kind Kechuangtong's spec does not have."""


class NotificationFailed(Exception):
    """The callback did not answer 2xx; the outbox retries later."""


class KechuangtongAdapter:
    key = KEY

    def __init__(
        self,
        ctx: PlatformContext,
        secrets: Secrets,
        callback_url: str | None,
        callback_file: Path | None = None,
    ) -> None:
        self.ctx = ctx
        self.secrets = secrets
        self.callback_url = callback_url
        self.callback_file = callback_file
        self._warned = False
        # Retries inside one delivery; the outbox's own back-off covers longer outages.
        self.policy = RetryPolicy(attempts=3, base_s=0.5, cap_s=10.0, max_retry_after_s=60.0)
        self.timeout = httpx.Timeout(10.0, connect=3.0)

    def router(self) -> APIRouter:
        api = APIRouter(tags=["platforms"])
        api.add_api_route(
            PATH,
            self.events,
            methods=["POST"],
            summary="Kechuangtong pushes one loan event (HMAC-SHA256 signed webhook)",
            responses=RESPONSES,
            openapi_extra=_BODY_DOC,
        )
        return api

    async def events(self, request: Request) -> Response:
        secrets = self.secrets.current()
        if not secrets:
            if not self._warned:  # once per outage, not once per retried request
                log.warning("kechuangtong shared secret not configured; answering retry later")
            self._warned = True
            return _answer(503, 50300, "retry later")
        self._warned = False
        raw = await _read_limited(request)
        if raw is None:
            return _answer(400, 40000, f"body: larger than {MAX_BODY_BYTES} bytes")
        why = authenticate(request.headers, raw, secrets, self.ctx.clock())
        if why is not None:
            return _answer(401, 40100, why)
        try:
            event = parse(raw, request.headers.get("x-kct-event-id"))
        except Invalid as exc:
            await reject(self.ctx, KEY, str(exc), raw)
            return _answer(400, 40000, str(exc))
        try:
            stored = await receive(self.ctx, event)
        except StoreUnavailable:
            return _answer(503, 50300, "retry later")
        if stored.outcome == "rejected":
            return _answer(400, 40000, stored.reason or "rejected")
        return _answer(200, 0, "ok")

    async def sync(
        self, *, day: date | None = None, since: datetime | None = None
    ) -> SyncReport | None:
        return None

    async def notify(self, kind: str, payload: dict[str, Any]) -> None:
        """POST a risk alert to the callback URL, signed like the platform's webhooks."""
        if kind != "risk_alert":
            raise UnknownNotification(f"{KEY} takes no {kind!r} notifications")
        url = self._callback()
        secrets = self.secrets.current()
        if not secrets:
            raise NotificationFailed(f"{KEY}: shared secret not configured")
        missing = [name for name in ALERT_FIELDS if name not in payload]
        if missing:
            raise ValueError(f"risk_alert payload lacks {', '.join(missing)}")
        raw = orjson.dumps({name: payload[name] for name in ALERT_FIELDS})
        await self._post(url, raw, str(payload["alertId"]), secrets)

    def _callback(self) -> str:
        """The callback URL: configured, or read from its file (which may not exist yet)."""
        if self.callback_file is None:
            if not self.callback_url:
                raise NotificationFailed(f"{KEY}: callback_url is not configured")
            return self.callback_url
        try:
            url = self.callback_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NotificationFailed(f"{KEY}: callback_file {self.callback_file}: {exc}") from None
        try:
            self.ctx.outbound.check_config(f"{KEY}: callback_file", url)
        except ValueError as exc:
            raise NotificationFailed(str(exc)) from None
        return url

    async def _post(self, url: str, raw: bytes, alert_id: str, secrets: tuple[bytes, ...]) -> None:
        # Signed once: the policy's attempts and waits stay well inside the 300 s window.
        headers = signed_headers(secrets, alert_id, str(int(self.ctx.clock())), raw)
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self.ctx.outbound.transport()
        ) as client:
            try:
                answer = await send(
                    client,
                    "POST",
                    url,
                    policy=self.policy,
                    content=raw,
                    headers=headers,
                )
            except RetriesExhausted as exc:
                raise NotificationFailed(f"callback: {exc}") from exc
        if not answer.is_success:
            raise NotificationFailed(f"callback answered HTTP {answer.status_code}")


def notifies(settings: dict[str, Any]) -> bool:
    """Risk alerts go to 科创通 only where its callback URL (or its file) is configured."""
    return bool(settings.get("callback_url") or settings.get("callback_file"))


def build(ctx: PlatformContext) -> KechuangtongAdapter:
    """The adapter for this block; a malformed block stops start-up, a missing secret does not."""
    unknown = sorted(set(ctx.settings) - SETTING_KEYS)
    if unknown:
        raise ValueError(f"{KEY}: unknown settings {', '.join(unknown)}")
    file, env = ctx.settings.get("secret_file"), ctx.settings.get("secret_env")
    if (file is None) == (env is None):
        raise ValueError(f"{KEY}: set exactly one of secret_file and secret_env")
    callback = ctx.settings.get("callback_url")
    callback_file = ctx.settings.get("callback_file")
    for name, value in (
        ("secret_file", file),
        ("secret_env", env),
        ("callback_url", callback),
        ("callback_file", callback_file),
    ):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{KEY}: {name} must be a non-empty string or null")
    if callback is not None and callback_file is not None:
        raise ValueError(f"{KEY}: set at most one of callback_url and callback_file")
    if callback is not None:
        ctx.outbound.check_config(f"{KEY}: callback_url", callback)
    secrets = Secrets(ctx.path("secret_file") if file is not None else None, env)
    if not secrets.current():
        log.warning(
            "kechuangtong shared secret missing (%s); webhooks answer 503 until it exists",
            secrets.path or f"${env}",
        )
    where = ctx.path("callback_file") if callback_file is not None else None
    return KechuangtongAdapter(ctx, secrets, callback, where)
