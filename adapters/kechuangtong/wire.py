"""科创通 Kechuangtong's wire format (docs/platforms/kechuangtong.md): JSON events
signed with HMAC-SHA256 over `{timestamp}.{body}`, and the same signature on the
risk alerts sent back."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime

import orjson

from gateway.bounds import InvalidAmount, day_within, fen_from_yuan, moment_within
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.loans.events import BEIJING, Authorization, EventType, LoanEvent, digest

KEY = "kechuangtong"
REPLAY_WINDOW_S = 300
ALERT_FIELDS = ("alertId", "creditCode", "applicationNo", "rule", "severity", "raisedAt")

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


class Invalid(ValueError):
    """An authenticated message that is not a valid event; the text names the field."""


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


def _text(obj: Mapping[str, object], key: str, field: str, *, limit: int = 200) -> str:
    value = obj.get(key)
    if value is None:
        raise Invalid(f"{field}: missing")
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{field}: expected a non-empty string of at most {limit} characters")
    return value


def _object(
    obj: Mapping[str, object], key: str, field: str, *, required: bool = True
) -> dict[str, object]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{field}: {'missing' if value is None else 'expected an object'}")
    return value


def _amount(obj: Mapping[str, object], field: str, *, required: bool) -> int | None:
    value = obj.get(field.rsplit(".", 1)[1])
    if value is None:
        if required:
            raise Invalid(f"{field}: missing")
        return None
    try:
        return fen_from_yuan(value)
    except InvalidAmount as exc:
        raise Invalid(f"{field}: {exc}") from None


def _moment(value: object) -> datetime:
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


def _date(obj: Mapping[str, object], key: str, field: str) -> date:
    value = obj.get(key)
    if isinstance(value, str) and _DAY.fullmatch(value):
        with contextlib.suppress(ValueError):  # DayOutOfRange too
            return day_within(date.fromisoformat(value))
    raise Invalid(f"{field}: expected a date YYYY-MM-DD from 1949-10-01 to 2199-12-31")


def _bank(obj: Mapping[str, object], field: str) -> str | None:
    if obj.get("bankCode") is None:
        return None
    return _text(obj, "bankCode", field, limit=32)


def _days(repayment: Mapping[str, object], *, required: bool) -> int | None:
    value = repayment.get("daysOverdue")
    if value is None and not required:
        return None
    if type(value) is not int or value < 0:
        raise Invalid("repayment.daysOverdue: expected a whole number of days, 0 or more")
    return value


def _authorization(body: Mapping[str, object]) -> Authorization:
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


def _details(enterprise: Mapping[str, object], loan: Mapping[str, object]) -> dict[str, object]:
    details: dict[str, object] = {}
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
