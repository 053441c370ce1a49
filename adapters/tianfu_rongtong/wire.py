"""天府融通 Tianfu Rongtong's feed format (docs/platforms/tianfu-rongtong.md): pages of
JSON credit events behind a cursor; each event judged alone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime

from adapters.http import UpstreamError
from gateway import bounds
from gateway.bounds import InvalidAmount
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.loans.events import Authorization, EventType, LoanEvent, digest

PLATFORM = "tianfu-rongtong"

TYPES: dict[str, EventType] = {
    "financing.applied": "application_submitted",
    "financing.authorized": "consent_granted",
    "financing.approved": "loan_approved",
    "financing.rejected": "loan_rejected",
    "financing.disbursed": "loan_disbursed",
    "repayment.received": "repayment_received",
    "repayment.overdue": "repayment_overdue",
    "financing.defaulted": "loan_defaulted",
    "financing.settled": "loan_settled",
}
_BANK_CODE = re.compile(r"[A-Z][A-Z0-9-]{1,31}")


class EventInvalid(ValueError):
    """One feed event cannot be used; it is dead-lettered and the feed goes on."""


def _obj(value: object, name: str, *, required: bool) -> dict[str, object]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise EventInvalid(f"{name} must be an object")
    return value


def _text(value: object, name: str, limit: int = 128) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise EventInvalid(f"{name} must be a string of 1 to {limit} characters")
    return value


def _code(party: dict[str, object], name: str) -> str:
    try:
        return validate_credit_code(_text(party.get("unified_code"), f"{name}.unified_code", 18))
    except InvalidIdentifier as exc:
        raise EventInvalid(f"{name}.unified_code: {exc.message}") from None


def _fen(value: object, name: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:  # the spec's JSON integer: not text, not 1.0
        raise EventInvalid(f"{name} must be a whole number of fen")
    try:
        return bounds.fen(value, bounds.FEN)
    except InvalidAmount as exc:
        raise EventInvalid(f"{name}: {exc}") from None


def _date(value: object, name: str) -> date | None:
    if value is None:
        return None
    try:
        return bounds.day_within(date.fromisoformat(_text(value, name, 10)))
    except ValueError:  # DayOutOfRange too
        raise EventInvalid(
            f"{name} must be a YYYY-MM-DD date from 1949-10-01 to 2199-12-31"
        ) from None


def _bank(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _BANK_CODE.fullmatch(value):
        raise EventInvalid(f"{name} must be a bank code")
    return value


def _occurred(value: object) -> datetime:
    try:
        when = datetime.fromisoformat(_text(value, "occurred_at", 40))
    except ValueError:
        raise EventInvalid("occurred_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise EventInvalid("occurred_at must carry its offset (Z or +08:00)")
    if not bounds.moment_within(when):
        raise EventInvalid("occurred_at: outside the years this gateway holds")
    return when


def _authorization(value: object) -> Authorization:
    auth = _obj(value, "authorization", required=True)
    scopes = auth.get("scopes")
    if not isinstance(scopes, list) or not 0 < len(scopes) <= 20:
        raise EventInvalid("authorization.scopes must be a list of sections")
    until = _date(auth.get("valid_until"), "authorization.valid_until")
    bank = _bank(auth.get("bank_code"), "authorization.bank_code")
    if until is None or bank is None:
        raise EventInvalid("authorization needs bank_code and valid_until")
    return Authorization(bank, tuple(_text(s, "authorization.scopes", 40) for s in scopes), until)


def judge(item: object, raw: bytes) -> LoanEvent:
    """One feed event as a canonical event, or EventInvalid saying what is wrong."""
    event = _obj(item, "event", required=True)
    name = event.get("type")
    kind = TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise EventInvalid(f"type {name!r} is not a credit-event type of feed v2")
    supplier = _obj(event.get("supplier"), "supplier", required=True)
    core = _obj(event.get("core_enterprise"), "core_enterprise", required=False)
    financing = _obj(event.get("financing"), "financing", required=True)
    repayment = _obj(event.get("repayment"), "repayment", required=kind == "repayment_overdue")
    authorization = (
        _authorization(event.get("authorization")) if kind == "consent_granted" else None
    )
    days = repayment.get("days_overdue")
    if kind == "repayment_overdue" and (type(days) is not int or not 0 < days <= 36_500):
        raise EventInvalid("repayment.days_overdue must be a whole number of days")
    amount_from = repayment if kind.startswith("repayment") else financing
    return LoanEvent(
        platform=PLATFORM,
        message_id=_text(event.get("id"), "id"),
        event_type=kind,
        occurred_at=_occurred(event.get("occurred_at")),
        raw_sha256=digest(raw),
        credit_code=_code(supplier, "supplier"),
        core_enterprise_code=_code(core, "core_enterprise") if core else None,
        bank_code=_bank(financing.get("bank_code"), "financing.bank_code")
        or (authorization.bank_code if authorization else None),
        loan_no=_text(financing.get("contract_no"), "financing.contract_no"),
        amount_fen=_fen(amount_from.get("amount_fen"), "amount_fen"),
        days_overdue=days if kind == "repayment_overdue" and isinstance(days, int) else None,
        due_date=_date(repayment.get("due_date"), "repayment.due_date"),
        authorization=authorization,
        details=_details(event, supplier, core, financing),
    )


def _details(
    event: dict[str, object],
    supplier: dict[str, object],
    core: dict[str, object],
    financing: dict[str, object],
) -> dict[str, object]:
    details: dict[str, object] = {"type": event["type"]}
    for key, party in (("supplier_name", supplier), ("core_enterprise_name", core)):
        name = party.get("name")
        if isinstance(name, str):
            details[key] = name[:200]
    due = _date(financing.get("receivable_due"), "financing.receivable_due")
    if due is not None:
        details["receivable_due"] = due.isoformat()
    return details


@dataclass(frozen=True)
class Page:
    items: list[object]
    next_cursor: str | None
    has_more: bool


def parse_page(body: bytes) -> Page:
    """The feed's envelope; anything else is UpstreamError (a page cannot be half-read)."""
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise UpstreamError(f"{PLATFORM}: feed page is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise UpstreamError(f"{PLATFORM}: feed page has no data list")
    cursor, more = raw.get("next_cursor"), raw.get("has_more")
    if not (cursor is None or (isinstance(cursor, str) and 0 < len(cursor) <= 2048)):
        raise UpstreamError(f"{PLATFORM}: feed page has an unusable next_cursor")
    if not isinstance(more, bool) or (more and cursor is None):
        raise UpstreamError(f"{PLATFORM}: feed page has no has_more, or more but no cursor")
    return Page(raw["data"], cursor, more)
