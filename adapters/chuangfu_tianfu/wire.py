"""创富天府 Chuangfu Tianfu's wire format (docs/platforms/chuangfu-tianfu.md): a JSON
envelope (header + body) in a compact JWS signed ES256 by a key of the platform's
JWKS; acknowledgements signed back with the gateway's `platform_ack` key."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime

import orjson

from gateway.bounds import InvalidAmount, day_within, fen_from_wan
from gateway.errors import ProblemError
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.identity import jose
from gateway.identity.keys import LoadedKey
from gateway.loans.events import BEIJING, Authorization, EventType, LoanEvent, digest

KEY = "chuangfu-tianfu"
MAX_SKEW_S = 600
# Headers that would let the sender name or bring its own key, or demand
# semantics we do not implement.
_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})

EVENTS: dict[str, EventType] = {
    "loan.applied": "application_submitted",
    "loan.authorized": "consent_granted",
    "loan.approved": "loan_approved",
    "loan.rejected": "loan_rejected",
    "loan.disbursed": "loan_disbursed",
    "repayment.received": "repayment_received",
    "repayment.overdue": "repayment_overdue",
    "loan.defaulted": "loan_defaulted",
    "loan.settled": "loan_settled",
}
_AMOUNT_REQUIRED = frozenset({"loan.disbursed", "repayment.received", "repayment.overdue"})

_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII: safe to log and echo
_BANK = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
_TYPE = re.compile(r"[a-z.]{1,32}")
_VERSION = re.compile(r"3(\.\d{1,3}){0,2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?")
_SCOPE = re.compile(r"[a-z_]{1,32}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

log = logging.getLogger("xyd.adapters.chuangfu_tianfu")


class SignatureRefused(ProblemError):
    status, type_slug, title = 401, "invalid-signature", "Message signature not accepted"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": f'JWS realm="{KEY}"'})


class Invalid(ValueError):
    """A verified message whose content is refused; `reason` goes into the signed ack."""

    def __init__(self, reason: str, msg_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.msg_id = reason, msg_id


def parse_jwks(raw: bytes) -> dict[str, jose.PublicKey]:
    """The usable ES256 keys of a JWKS by kid; other key types are skipped."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("key set is not JSON") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise ValueError("key set has no 'keys' list")
    keys: dict[str, jose.PublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "ES256") != "ES256":
            continue
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            try:
                keys[jwk["kid"]] = jose.public_key_from_jwk(jwk)
            except jose.JoseError:
                log.warning("skipping an invalid key in the key set", extra={"platform": KEY})
    return keys


# --- the envelope ------------------------------------------------------------------


def _field(obj: dict[str, object], where: str) -> object:
    return obj.get(where.rpartition(".")[2])


def _opt(obj: dict[str, object], where: str, pattern: re.Pattern[str]) -> str | None:
    value = _field(obj, where)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise Invalid(f"{where}: malformed value")
    return value


def _req(obj: dict[str, object], where: str, pattern: re.Pattern[str]) -> str:
    value = _opt(obj, where, pattern)
    if value is None:
        raise Invalid(f"{where}: missing")
    return value


def _int(obj: dict[str, object], where: str, low: int, high: int) -> int | None:
    value = _field(obj, where)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{where}: must be a whole number from {low} to {high}")
    return value


def _date(obj: dict[str, object], where: str, *, required: bool) -> date | None:
    text = _req(obj, where, _DATE) if required else _opt(obj, where, _DATE)
    try:
        return None if text is None else day_within(date.fromisoformat(text))
    except ValueError as exc:  # DayOutOfRange says which bounds
        raise Invalid(f"{where}: not a calendar date ({exc})") from None


def _sent_at(header: dict[str, object], now: float) -> datetime:
    try:
        sent = datetime.fromisoformat(_req(header, "header.sent_at", _STAMP))
    except ValueError:
        raise Invalid("header.sent_at: not an ISO 8601 date-time") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=BEIJING)  # the platform speaks Beijing time
    skew = sent.timestamp() - now
    if abs(skew) > MAX_SKEW_S:
        raise Invalid(f"header.sent_at: {skew:+.0f} s from the gateway clock (limit {MAX_SKEW_S})")
    return sent


def _amount(body: dict[str, object], *, required: bool) -> int | None:
    value = body.get("amount_wan")
    if value is None:
        if required:
            raise Invalid("body.amount_wan: missing")
        return None
    try:
        return fen_from_wan(value)
    except InvalidAmount as exc:
        raise Invalid(f"body.amount_wan: {exc}") from None


def _credit_code(body: dict[str, object]) -> str:
    value = body.get("unified_credit_code")
    if not isinstance(value, str):
        raise Invalid("body.unified_credit_code: missing")
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise Invalid(f"body.unified_credit_code: {exc.message}") from None


def _authorization(body: dict[str, object]) -> Authorization:
    auth = body.get("authorization")
    if not isinstance(auth, dict):
        raise Invalid("body.authorization: missing")
    scopes = auth.get("scopes")
    if (
        not isinstance(scopes, list)
        or not 0 < len(scopes) <= 16
        or not all(isinstance(s, str) and _SCOPE.fullmatch(s) for s in scopes)
    ):
        raise Invalid("body.authorization.scopes: must be a non-empty list of scope names")
    until = _date(auth, "body.authorization.valid_until", required=True)
    assert until is not None
    return Authorization(_req(auth, "body.authorization.bank_code", _BANK), tuple(scopes), until)


def parse_message(payload_b64: str, *, raw: bytes, now: float) -> LoanEvent:
    """The canonical event of a verified envelope, or Invalid (carrying msg_id if readable)."""
    try:
        doc = orjson.loads(jose.b64decode(payload_b64))
    except (jose.JoseError, orjson.JSONDecodeError):
        raise Invalid("payload is not base64url-encoded JSON") from None
    header = doc.get("header") if isinstance(doc, dict) else None
    body = doc.get("body") if isinstance(doc, dict) else None
    msg_id = header.get("msg_id") if isinstance(header, dict) else None
    try:
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise Invalid("payload must hold a 'header' object and a 'body' object")
        return _event(header, body, raw, now)
    except Invalid as exc:
        exc.msg_id = msg_id if isinstance(msg_id, str) and _ID.fullmatch(msg_id) else None
        raise


def _event(header: dict[str, object], body: dict[str, object], raw: bytes, now: float) -> LoanEvent:
    msg_id = _req(header, "header.msg_id", _ID)
    msg_type = _req(header, "header.msg_type", _TYPE)
    if msg_type not in EVENTS:
        raise Invalid(f"header.msg_type: unknown message type {msg_type!r}")
    _req(header, "header.version", _VERSION)
    sent = _sent_at(header, now)
    credit_code = _credit_code(body)
    authorization = _authorization(body) if msg_type == "loan.authorized" else None
    if authorization is None:  # an authorisation may precede any loan
        _req(body, "body.loan_no", _ID)
        _req(body, "body.bank_code", _BANK)
    bank_code = _opt(body, "body.bank_code", _BANK)
    overdue = msg_type == "repayment.overdue"
    days = _int(body, "body.days_overdue", 1, 36_500)
    if overdue and days is None:
        raise Invalid("body.days_overdue: missing")
    extras = {
        "company_name": _opt(body, "body.company_name", _NAME),
        "term_months": _int(body, "body.term_months", 1, 600),
    }
    return LoanEvent(
        platform=KEY,
        message_id=msg_id,
        event_type=EVENTS[msg_type],
        occurred_at=sent,
        raw_sha256=digest(raw),
        credit_code=credit_code,
        bank_code=bank_code or (authorization.bank_code if authorization else None),
        loan_no=_opt(body, "body.loan_no", _ID),
        amount_fen=_amount(body, required=msg_type in _AMOUNT_REQUIRED),
        days_overdue=days,
        due_date=_date(body, "body.due_date", required=overdue),
        authorization=authorization,
        details={name: value for name, value in extras.items() if value is not None},
    )


def vet_header(header: object) -> str:
    """The kid of an acceptable protected header; SignatureRefused otherwise."""
    if not isinstance(header, dict):
        raise SignatureRefused("protected header must be a JSON object")
    named = sorted(_REFUSED_HEADERS.intersection(header))
    if named:
        raise SignatureRefused(f"header parameter {named[0]!r} is not accepted")
    if header.get("alg") != "ES256":
        raise SignatureRefused("only alg ES256 is accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _ID.fullmatch(kid):
        raise SignatureRefused("header must name the platform key's kid")
    return kid


def sign_ack(
    key: LoadedKey, msg_id: str | None, status: str, reason: str | None, now: float
) -> str:
    """The signed acknowledgement: msg_id, status, reason and when, in a compact JWS."""
    claims = {
        "msg_id": msg_id,
        "status": status,
        "reason": reason,
        "acked_at": datetime.fromtimestamp(now, BEIJING).isoformat(timespec="seconds"),
    }
    return jose.sign({"alg": "ES256", "kid": key.kid, "typ": "JOSE"}, claims, key.private)
