"""农贷通 Nongdaitong's wire format: GB18030 XML, RSA-SHA256 signed over `<Body>`.

One message, in this order (docs/platforms/nongdaitong.md):

1. at most 256 KiB is read; more is refused (1002) without reading further;
2. the signed bytes (`<Body>` … `</Body>`) and `<Sign>` are found in the raw
   bytes, and the signature is verified with any configured public key
   (1001). Nothing else is trusted before this; a message failing it is
   never stored, not even as a dead letter;
3. the bytes are decoded as GB18030 and parsed by defusedxml with DTDs,
   entities and external references forbidden (1002); Body fields come from
   the signed bytes only;
4. `SendTime` more than 600 s from our clock (1001), then field by field
   (1002 missing, 1003 invalid, naming the field);
5. the canonical event is committed before 0000/0001 is answered; a store
   that cannot take it answers 9999 (the platform retries for 24 hours).

Steps 3-4 dead-letter what they refuse (except a stale message), after
masking a natural person's ID number and name: these are never stored,
logged or answered in clear.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Final, TypedDict
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeXml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from defusedxml import DefusedXmlException
from fastapi import Response

from gateway import bounds
from gateway.bounds import InvalidAmount
from gateway.identifiers import InvalidIdentifier, validate_credit_code, validate_resident_id
from gateway.loans.events import BEIJING, Authorization, EventType, LoanEvent, digest
from gateway.pii import keyed_hash

KEY: Final = "nongdaitong"
MAX_BODY_BYTES: Final = 256 * 1024
MAX_SKEW_S: Final = 600
MEDIA_TYPE: Final = "application/xml; charset=GB18030"
VERSION: Final = "1.2"

TXN_EVENTS: Final[dict[str, EventType]] = {
    "NDT101": "application_submitted",
    "NDT102": "consent_granted",
    "NDT201": "loan_approved",
    "NDT202": "loan_rejected",
    "NDT203": "loan_disbursed",
    "NDT301": "repayment_received",
    "NDT302": "repayment_overdue",
    "NDT303": "loan_defaulted",
    "NDT304": "loan_settled",
}


class Code(StrEnum):
    ACCEPTED = "0000"
    DUPLICATE = "0001"
    UNAUTHENTIC = "1001"  # signature invalid, or stale SendTime
    MALFORMED = "1002"  # not well-formed, wrong encoding, missing element
    INVALID = "1003"  # a field's value is invalid (named in RspMsg)
    BUSY = "9999"


class Refusal(Exception):
    """A message answered with an error code; `dead_letter` once it has authenticated."""

    def __init__(self, code: Code, message: str, *, dead_letter: bool = True) -> None:
        super().__init__(message)
        self.code, self.message, self.dead_letter = code, message, dead_letter


def _missing(label: str) -> Refusal:
    return Refusal(Code.MALFORMED, f"缺少元素 {label}")


def _invalid(label: str, rule: str) -> Refusal:
    # Never the value itself: it may be a person's ID number in the wrong field.
    return Refusal(Code.INVALID, f"{label} 无效: {rule}")


# --- locating and verifying the signed bytes --------------------------------------

# '<', '/' and '>' are never part of a GB18030 multi-byte character, so these
# byte patterns find real tags (and only them) in the undecoded message.
_BODY_TAGS = re.compile(rb"<Body[\s/>]")
_BODY_END_TAGS = re.compile(rb"</Body\s*>")
_BODY = re.compile(rb"<Body\s*>.*?</Body\s*>", re.S)
_SIGN_TAGS = re.compile(rb"<Sign[\s/>]")
_SIGN = re.compile(rb"<Sign>([A-Za-z0-9+/=\s]*)</Sign>")
_MSG_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_MSG_ID_BYTES = re.compile(rb"<MsgId>\s*([A-Za-z0-9_.-]{1,128})\s*</MsgId>")


def locate(raw: bytes) -> tuple[bytes, bytes]:
    """The exact signed bytes and the decoded signature, found without parsing."""
    if len(_BODY_TAGS.findall(raw)) != 1 or len(_BODY_END_TAGS.findall(raw)) != 1:
        raise Refusal(Code.MALFORMED, "需要恰好一个 <Body> 元素", dead_letter=False)
    if len(_SIGN_TAGS.findall(raw)) != 1:
        raise Refusal(Code.MALFORMED, "需要恰好一个 <Sign> 元素", dead_letter=False)
    body, sign = _BODY.search(raw), _SIGN.search(raw)
    if body is None:
        raise Refusal(Code.MALFORMED, "找不到 <Body> … </Body>", dead_letter=False)
    if sign is None:
        raise Refusal(Code.UNAUTHENTIC, "签名不是 Base64", dead_letter=False)
    try:
        signature = codecs.decode(b"".join(sign[1].split()), "base64")
    except ValueError:
        raise Refusal(Code.UNAUTHENTIC, "签名不是 Base64", dead_letter=False) from None
    return body[0], signature


def verify(keys: list[RSAPublicKey], signed: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


# --- decoding and parsing -------------------------------------------------------------

_DECLARED = re.compile(rb"\A<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# GBK and GB 2312 bytes are GB18030 bytes (it is their superset).
_GB_FAMILY: Final = frozenset({"gb18030", "gbk", "gb2312"})


def decode(raw: bytes) -> str:
    """The message's text. The spec fixes GB18030, so a UTF-8 (or UTF-16) declaration
    or byte-order mark, or bytes GB18030 cannot decode, are a wrong encoding."""
    if raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise Refusal(Code.MALFORMED, "编码错误: 报文必须是 GB18030, 不能带 BOM")
    declared = _DECLARED.match(raw)
    if declared and declared[1].decode("ascii").lower() not in _GB_FAMILY:
        raise Refusal(Code.MALFORMED, "编码错误: 报文必须声明并使用 GB18030")
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise Refusal(Code.MALFORMED, "编码错误: 不是有效的 GB18030 字节") from None


def parse_xml(text: str) -> Element:
    """A safe parse: any DTD (so any entity, external or not) is refused before use."""
    try:
        root: Element = SafeXml.fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise Refusal(Code.MALFORMED, "不允许 DTD、实体声明或外部引用") from None
    except ParseError as exc:
        line, column = exc.position
        raise Refusal(Code.MALFORMED, f"XML 格式错误 (第 {line} 行第 {column} 列)") from None
    return root


class Fields:
    """Reads one element's children; each missing or invalid one is refused by its path."""

    def __init__(self, node: Element, path: str) -> None:
        self.node, self.path = node, path

    def _one(self, name: str) -> Element | None:
        found = self.node.findall(name)
        if len(found) > 1:
            raise Refusal(Code.MALFORMED, f"元素重复 {self.path}/{name}")
        return found[0] if found else None

    def maybe_child(self, name: str) -> Fields | None:
        node = self._one(name)
        return None if node is None else Fields(node, f"{self.path}/{name}")

    def child(self, name: str) -> Fields:
        found = self.maybe_child(name)
        if found is None:
            raise _missing(f"{self.path}/{name}")
        return found

    def maybe(self, name: str) -> str | None:
        node = self._one(name)
        if node is None:
            return None
        return (node.text or "").strip() or None

    def text(self, name: str) -> str:
        value = self.maybe(name)
        if value is None:
            raise _missing(f"{self.path}/{name}")
        return value

    def _check(self, name: str, value: str, pattern: str, rule: str) -> str:
        if not re.fullmatch(pattern, value):
            raise _invalid(f"{self.path}/{name}", rule)
        return value

    def match(self, name: str, pattern: str, rule: str) -> str:
        return self._check(name, self.text(name), pattern, rule)

    def maybe_match(self, name: str, pattern: str, rule: str) -> str | None:
        value = self.maybe(name)
        return None if value is None else self._check(name, value, pattern, rule)

    def integer(self, name: str, digits: int = 15) -> int:
        return int(self.match(name, rf"[0-9]{{1,{digits}}}", "必须是非负整数"))

    def maybe_integer(self, name: str, digits: int = 15) -> int | None:
        value = self.maybe_match(name, rf"[0-9]{{1,{digits}}}", "必须是非负整数")
        return None if value is None else int(value)

    def maybe_fen(self, name: str) -> int | None:
        """`AmtFen`: digits only, at most `gateway.bounds.MAX_FEN`."""
        value = self.maybe(name)
        try:
            return None if value is None else bounds.fen(value, bounds.FEN)
        except InvalidAmount:
            raise _invalid(f"{self.path}/{name}", _FEN_RULE) from None

    def fen(self, name: str) -> int:
        value = self.maybe_fen(name)
        if value is None:
            raise _missing(f"{self.path}/{name}")
        return value

    def day(self, name: str) -> date:
        try:
            text = self.match(name, r"[0-9]{8}", _DAY_RULE)
            return bounds.day_within(datetime.strptime(text, "%Y%m%d").date())
        except ValueError:
            raise _invalid(f"{self.path}/{name}", _DAY_RULE) from None


_DAY_RULE = "必须是 19491001 至 21991231 的 yyyyMMdd 日期"
_FEN_RULE = "必须是不超过 10^15 的非负整数 (分)"
_BANK = r"[A-Z0-9][A-Z0-9-]{1,31}"
_BANK_RULE = "银行代码格式错误"
_LOAN_NO = r"[\x21-\x7e]{1,128}"
_SCOPE = r"[a-z][a-z_]{0,39}"


# --- the message as a canonical event ---------------------------------------------------


def read_head(root: Element, now: float) -> tuple[str, str, datetime]:
    """TxnCode, MsgId and SendTime; a stale SendTime is refused like a bad signature."""
    if root.tag != "NDTMsg":
        raise Refusal(Code.MALFORMED, "根元素必须是 NDTMsg")
    msg = Fields(root, "NDTMsg")
    msg.child("Body")
    msg.text("Sign")
    head = msg.child("Head")
    if head.text("Version") != VERSION:
        raise _invalid("Head/Version", f"只支持 {VERSION}")
    txn = head.text("TxnCode")
    if txn not in TXN_EVENTS:
        raise _invalid("Head/TxnCode", "未知交易码")
    msg_id = head.match("MsgId", _MSG_ID.pattern, "1-128 位字母、数字、._-")
    sent = head.match("SendTime", r"[0-9]{14}", _TIME_RULE)
    try:
        sent_at = datetime.strptime(sent, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise _invalid("Head/SendTime", _TIME_RULE) from None
    if abs(sent_at.timestamp() - now) > MAX_SKEW_S:
        raise Refusal(Code.UNAUTHENTIC, "SendTime 与网关时间相差超过 600 秒", dead_letter=False)
    return txn, msg_id, sent_at


_TIME_RULE = "必须是 yyyyMMddHHmmss"


def read_borrower(body: Fields, pii_key: bytes) -> tuple[str | None, str | None, dict[str, object]]:
    """(credit code, person hash, details). A person's name and number stop here."""
    borrower = body.child("Borrower")
    kind = borrower.text("Type")
    if kind == "ORG":
        try:
            code = validate_credit_code(borrower.text("CreditCode"))
        except InvalidIdentifier as exc:
            raise _invalid("Body/Borrower/CreditCode", exc.message) from None
        name = borrower.maybe("Name")
        return code, None, {"borrower_type": "ORG", "borrower_name": name}
    if kind == "PERSON":
        id_no = borrower.text("IdNo")
        borrower.text("Name")  # required by the spec, never kept
        try:
            id_no = validate_resident_id(id_no)
        except InvalidIdentifier as exc:
            # The machine reason only: the message may quote digits of the number.
            raise _invalid("Body/Borrower/IdNo", f"身份证号码校验失败 ({exc.reason})") from None
        return None, keyed_hash(pii_key, "person-id", id_no), {"borrower_type": "PERSON"}
    raise _invalid("Body/Borrower/Type", "必须是 ORG 或 PERSON")


def read_authorization(body: Fields) -> tuple[Authorization, dict[str, object]]:
    auth = body.child("Auth")
    bank = auth.match("BankCode", _BANK, _BANK_RULE)
    scopes = tuple(s.strip() for s in auth.text("Scopes").split(","))
    if not all(re.fullmatch(_SCOPE, s) for s in scopes):
        raise _invalid("Body/Auth/Scopes", "逗号分隔的授权范围")
    until = auth.day("ValidUntil")
    doc = auth.maybe_match("DocSha256", r"[0-9A-Fa-f]{64}", "必须是 64 位十六进制")
    grant = Authorization(bank, scopes, until, doc.lower() if doc else None)
    return grant, {"auth_scopes": list(scopes), "auth_valid_until": until.isoformat()}


class LoanFields(TypedDict, total=False):
    """The event's loan and repayment fields, as read from the message."""

    loan_no: str
    bank_code: str | None
    amount_fen: int | None
    due_date: date
    days_overdue: int


def read_repayment(body: Fields, txn: str) -> LoanFields:
    repay = body.child("Repay")
    days = repay.integer("OverdueDays", digits=5)
    if txn == "NDT302" and days == 0:
        raise _invalid("Body/Repay/OverdueDays", "逾期报文必须大于 0")
    return {
        "due_date": repay.day("DueDate"),
        "amount_fen": repay.fen("AmtFen"),
        "days_overdue": days,
    }


def to_event(raw: bytes, signed: bytes, *, now: float, pii_key: bytes) -> LoanEvent:
    """The canonical event of an authenticated message, or a Refusal."""
    txn, msg_id, sent_at = read_head(parse_xml(decode(raw)), now)
    body = Fields(parse_xml(signed.decode("gb18030")), "Body")
    credit_code, person, details = read_borrower(body, pii_key)
    details["txn_code"] = txn
    fields: LoanFields = {}
    # An authorisation may come before there is any loan; every other event has one.
    loan = body.maybe_child("Loan") if txn == "NDT102" else body.child("Loan")
    if loan is not None:
        fields["loan_no"] = loan.match("LoanNo", _LOAN_NO, "可打印 ASCII, 至多 128 位")
        fields["bank_code"] = loan.maybe_match("BankCode", _BANK, _BANK_RULE)
        fields["amount_fen"] = loan.maybe_fen("AmtFen")
        details["product"] = loan.maybe("Product")
        details["term_months"] = loan.maybe_integer("TermMonths", digits=3)
    authorization = None
    if txn == "NDT102":
        authorization, extra = read_authorization(body)
        fields["bank_code"] = authorization.bank_code
        details.update(extra)
    if txn in ("NDT301", "NDT302"):
        # The event's amount is the instalment; the loan's own amount is kept aside.
        details["loan_amount_fen"] = fields.get("amount_fen")
        fields.update(read_repayment(body, txn))
    return LoanEvent(
        platform=KEY,
        message_id=msg_id,
        event_type=TXN_EVENTS[txn],
        occurred_at=sent_at,
        raw_sha256=digest(raw),
        credit_code=credit_code,
        borrower_hash=person,
        authorization=authorization,
        details={k: v for k, v in details.items() if v is not None},
        **fields,
    )


# --- dead letters without personal data -------------------------------------------------

# Every scan is bounded by the next '<' or 64 bytes: an unbounded `.*?` or
# `[^>]*` rescans the rest of the message from each of thousands of crafted
# `<IdNo>` starts (quadratic: 78 s for 256 KiB). An unclosed or long CDATA
# section is masked up to the next tag rather than left in clear.
_CONTENT = rb"((?:<!\[CDATA\[.{0,64}?\]\]>|<!\[CDATA\[|[^<])*)"
_ID_ELEMENT = re.compile(rb"(<IdNo(?:\s[^<>]*)?>)" + _CONTENT, re.S)
_NAME_ELEMENT = re.compile(rb"(<Name(?:\s[^<>]*)?>)" + _CONTENT, re.S)
# A resident ID number anywhere else (a misplaced or unclosed element): 15 to
# 18 characters standing alone. A long number masked by mistake costs little.
_ID_LIKE = re.compile(rb"(?<![0-9A-Za-z])[0-9]{14,17}[0-9Xx](?![0-9A-Za-z])")


def _mask_number(value: bytes) -> bytes:
    keep = value[:4] if value[:4].isdigit() else b""
    return keep + b"*" * (len(value) - len(keep))


def redact(raw: bytes) -> bytes:
    """A refused message as the dead-letter table may keep it: ID numbers keep their
    first four characters (the region), a person's name is replaced entirely."""
    # Names are masked unless the message is plainly an enterprise's.
    enterprise = b"<Type>ORG</Type>" in raw and b"<IdNo" not in raw
    out = _ID_ELEMENT.sub(lambda m: m[1] + _mask_number(m[2]), raw)
    if not enterprise:
        out = _NAME_ELEMENT.sub(lambda m: m[1] + b"***", out)
    return _ID_LIKE.sub(lambda m: _mask_number(m[0]), out)


def answer(msg_id: str, code: Code, text: str) -> Response:
    xml = (
        f'<?xml version="1.0" encoding="GB18030"?>\n<NDTRsp><Head><MsgId>{escape(msg_id)}'
        f"</MsgId><RspCode>{code}</RspCode><RspMsg>{escape(text)}</RspMsg></Head></NDTRsp>"
    )
    return Response(xml.encode("gb18030"), status_code=200, media_type=MEDIA_TYPE)


def echo_id(raw: bytes) -> str:
    found = _MSG_ID_BYTES.search(raw)
    return found[1].decode("ascii") if found else ""
