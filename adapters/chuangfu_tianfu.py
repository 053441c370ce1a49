"""创富天府 Chuangfu Tianfu: JWS (ES256) signed JSON envelopes, signed acknowledgements back.

`POST /v1/platforms/chuangfu-tianfu/messages`, body a compact JWS of at most
64 KiB. Until the platform's signature verifies, a refusal is a 401 problem
document and nothing is kept (no event, no dead letter, no signed answer).
Once it verifies, every answer is a compact JWS signed with the gateway's
`platform_ack` key (ES256, published in `/.well-known/jwks.json`):

    200 accepted / duplicate   stored and committed, or stored before
    400 rejected               invalid content, reason given; dead-lettered
    503 problem                store, key set or signing key unavailable: retry

Config block: `jwks_file` (the platform's public JWKS; re-read when it
changes) and/or `jwks_url` (fetched on first use, again on an unknown kid at
most once a minute; redirects are never followed).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import Adapter, PlatformContext, StoreUnavailable, SyncReport, receive, reject
from adapters.events import (
    BEIJING,
    Authorization,
    EventType,
    InvalidAmount,
    LoanEvent,
    digest,
    fen_from_wan,
)
from adapters.http import OutboundPolicy, OutboundRefused
from gateway.bounds import day_within
from gateway.errors import (
    DependencyUnavailable,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    problem_docs,
    problem_response,
)
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.keys import jose
from gateway.keys.store import KeyError_, LoadedKey

KEY = "chuangfu-tianfu"
PATH = f"/v1/platforms/{KEY}/messages"
JOSE_MEDIA_TYPE = "application/jose"
MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_S = 600
REFETCH_EVERY_S = 60.0
_RETRY_FIRST_FETCH_S = 5.0  # a URL down at first use is not asked on every message
_MAX_JWKS_BYTES = 256 * 1024
_FETCH_ATTEMPTS = 3
_MAX_RETRY_AFTER_S = 2.0  # we fetch inside a platform's request: never wait long
_ES256 = frozenset({"ES256"})
# Headers that would let the sender name or bring its own key, or demand
# semantics we do not implement.
_REFUSED_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})
_SETTINGS = frozenset({"enabled", "jwks_file", "jwks_url"})

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


class KeysUnavailable(Exception):
    """Chuangfu Tianfu's key set cannot be read or fetched (yet)."""


class Invalid(ValueError):
    """A verified message whose content is refused; `reason` goes into the signed ack."""

    def __init__(self, reason: str, msg_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.msg_id = reason, msg_id


# --- the platform's key set ------------------------------------------------------


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


async def fetch_jwks(url: str, outbound: OutboundPolicy | None = None) -> dict[str, jose.PublicKey]:
    """GET the key set: bounded retries, redirects not followed, only where `outbound`
    allows; KeysUnavailable on failure."""
    problem = "not fetched"
    timeout = httpx.Timeout(3.0, connect=1.0)  # a platform's request is waiting
    transport = (outbound or OutboundPolicy()).transport()
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
    ) as client:
        for attempt in range(_FETCH_ATTEMPTS):
            wait: float | None = None
            try:
                async with client.stream("GET", url, headers={"Accept": "application/json"}) as r:
                    if r.status_code == 200:
                        return parse_jwks(await _read_capped(r))
                    problem = f"HTTP {r.status_code}"
                    if r.status_code in (429, 500, 502, 503, 504):
                        wait = _backoff(attempt, r.headers.get("Retry-After"))
            except httpx.HTTPError as exc:
                problem, wait = type(exc).__name__, _backoff(attempt, None)
            except (ValueError, OutboundRefused) as exc:
                problem = str(exc)
            if wait is None or attempt + 1 == _FETCH_ATTEMPTS:
                break
            await asyncio.sleep(wait)
    raise KeysUnavailable(f"key set at {url}: {problem}")


async def _read_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_JWKS_BYTES:
            raise ValueError("key set too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _backoff(attempt: int, retry_after: str | None) -> float | None:
    """Seconds before the next attempt, None to give up (the platform will resend)."""
    if retry_after is not None and retry_after.strip().isdigit():
        wait = float(retry_after)
        return wait if wait <= _MAX_RETRY_AFTER_S else None
    return 0.1 * 2.0**attempt * (0.5 + random.random())


class PlatformKeys:
    """Chuangfu Tianfu's public keys by kid, from its JWKS file, URL, or both."""

    def __init__(
        self, file: Path | None, url: str | None, outbound: OutboundPolicy | None = None
    ) -> None:
        self.file, self.url = file, url
        self.outbound = outbound or OutboundPolicy()
        self._file_keys: dict[str, jose.PublicKey] = {}
        self._file_stamp: tuple[int, int] | None = None
        self._broken_stamp: tuple[int, int] | None = None
        self._url_keys: dict[str, jose.PublicKey] | None = None
        self._first_fetch_failed_at = -math.inf
        self._refetched_at = -math.inf
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jose.PublicKey | None:
        """The key named `kid`, None if the platform has no such key; KeysUnavailable."""
        self._read_file()
        if self.url is not None and self._url_keys is None:
            await self._fetch(None)
        if self._file_stamp is None and self._url_keys is None:
            raise KeysUnavailable("the platform's key set is not available yet")
        key = self._lookup(kid)
        if key is None and self.url is not None:
            await self._fetch(kid)
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str) -> jose.PublicKey | None:
        return self._file_keys.get(kid) or (self._url_keys or {}).get(kid)

    def _read_file(self) -> None:
        # A stat per message is cheap, and lets operators rotate keys by
        # replacing the file. A file gone missing or broken keeps the keys we
        # had; a broken one is reported once, not on every message.
        if self.file is None:
            return
        try:
            stat = self.file.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read the JWKS file: %s", exc, extra={"platform": KEY})
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp in (self._file_stamp, self._broken_stamp):
            return
        try:
            self._file_keys, self._file_stamp = parse_jwks(self.file.read_bytes()), stamp
        except (OSError, ValueError) as exc:
            self._broken_stamp = stamp
            log.error("cannot read the JWKS file: %s", exc, extra={"platform": KEY})

    async def _fetch(self, kid: str | None) -> None:
        """First load (kid None), or a refetch for an unknown kid at most once a minute."""
        assert self.url is not None
        async with self._lock:
            now = time.monotonic()
            if kid is None:
                since = now - self._first_fetch_failed_at
                due = self._url_keys is None and since >= _RETRY_FIRST_FETCH_S
            else:
                since = now - self._refetched_at
                due = self._lookup(kid) is None and since >= REFETCH_EVERY_S
            if not due:
                return
            if kid is not None:
                self._refetched_at = now
            try:
                self._url_keys = await fetch_jwks(self.url, self.outbound)
            except KeysUnavailable as exc:
                log.warning("%s", exc, extra={"platform": KEY})
                if kid is None:
                    self._first_fetch_failed_at = now


# --- the envelope ------------------------------------------------------------------


def _field(obj: dict[str, Any], where: str) -> Any:
    return obj.get(where.rpartition(".")[2])


def _opt(obj: dict[str, Any], where: str, pattern: re.Pattern[str]) -> str | None:
    value = _field(obj, where)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise Invalid(f"{where}: malformed value")
    return value


def _req(obj: dict[str, Any], where: str, pattern: re.Pattern[str]) -> str:
    value = _opt(obj, where, pattern)
    if value is None:
        raise Invalid(f"{where}: missing")
    return value


def _int(obj: dict[str, Any], where: str, low: int, high: int) -> int | None:
    value = _field(obj, where)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{where}: must be a whole number from {low} to {high}")
    return value


def _date(obj: dict[str, Any], where: str, *, required: bool) -> date | None:
    text = _req(obj, where, _DATE) if required else _opt(obj, where, _DATE)
    try:
        return None if text is None else day_within(date.fromisoformat(text))
    except ValueError as exc:  # DayOutOfRange says which bounds
        raise Invalid(f"{where}: not a calendar date ({exc})") from None


def _sent_at(header: dict[str, Any], now: float) -> datetime:
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


def _amount(body: dict[str, Any], *, required: bool) -> int | None:
    value = body.get("amount_wan")
    if value is None:
        if required:
            raise Invalid("body.amount_wan: missing")
        return None
    try:
        return fen_from_wan(value)
    except InvalidAmount as exc:
        raise Invalid(f"body.amount_wan: {exc}") from None


def _credit_code(body: dict[str, Any]) -> str:
    value = body.get("unified_credit_code")
    if not isinstance(value, str):
        raise Invalid("body.unified_credit_code: missing")
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise Invalid(f"body.unified_credit_code: {exc.message}") from None


def _authorization(body: dict[str, Any]) -> Authorization:
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


def _event(header: dict[str, Any], body: dict[str, Any], raw: bytes, now: float) -> LoanEvent:
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


# --- the endpoint ------------------------------------------------------------------


def _vet_header(header: Any) -> str:
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


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = PayloadTooLarge(f"message exceeds {MAX_BODY_BYTES} bytes")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _ack(
    key: LoadedKey, msg_id: str | None, status: str, reason: str | None, now: float
) -> Response:
    claims = {
        "msg_id": msg_id,
        "status": status,
        "reason": reason,
        "acked_at": datetime.fromtimestamp(now, BEIJING).isoformat(timespec="seconds"),
    }
    token = jose.sign({"alg": "ES256", "kid": key.kid, "typ": "JOSE"}, claims, key.private)
    code = 400 if status == "rejected" else 200
    return Response(token, status_code=code, media_type=JOSE_MEDIA_TYPE)


def _unavailable(detail: str) -> Response:
    return problem_response(DependencyUnavailable(detail, headers={"Retry-After": "30"}), PATH)


_ACK_BODY = {JOSE_MEDIA_TYPE: {"schema": {"type": "string", "description": "compact JWS"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Signed acknowledgement: accepted or duplicate", "content": _ACK_BODY},
    400: {"description": "Signed acknowledgement: rejected, with the reason", "content": _ACK_BODY},
    **problem_docs(
        {
            401: "Signature not verified (alg, header, kid or signature); nothing kept",
            413: f"Body over {MAX_BODY_BYTES} bytes",
            415: f"Content-Type is not {JOSE_MEDIA_TYPE}",
            503: "Store, key set or signing key unavailable; send again later",
        }
    ),
}


class ChuangfuTianfu:
    key = KEY

    def __init__(self, ctx: PlatformContext, keys: PlatformKeys) -> None:
        self.ctx, self.keys = ctx, keys

    def router(self) -> APIRouter:
        router = APIRouter(tags=["platforms"])
        router.add_api_route(
            PATH,
            self.messages,
            methods=["POST"],
            summary="Chuangfu Tianfu: receive one signed message",
            response_class=Response,
            responses=RESPONSES,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {JOSE_MEDIA_TYPE: {"schema": {"type": "string"}}},
                }
            },
        )
        return router

    async def sync(
        self, *, day: date | None = None, since: datetime | None = None
    ) -> SyncReport | None:
        return None

    async def messages(self, request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JOSE_MEDIA_TYPE:
            return problem_response(UnsupportedMediaType(f"send {JOSE_MEDIA_TYPE}"), PATH)
        try:
            raw = await _read_body(request)
            payload_b64 = await self._verify(raw)
        except ProblemError as exc:
            log.warning("message refused: %s", exc.detail, extra={"platform": KEY})
            return problem_response(exc, PATH)
        except KeysUnavailable as exc:
            return _unavailable(str(exc))
        try:
            ring = await self.ctx.app_state.identity.keys.current()
            ack_key: LoadedKey = ring.signing_key("platform_ack", datetime.now(UTC))
        except (KeyError_, SQLAlchemyError, OSError):
            log.error("no platform_ack signing key", extra={"platform": KEY}, exc_info=True)
            return _unavailable("the gateway cannot sign acknowledgements right now")
        return await self._handle(payload_b64, raw, ack_key)

    async def _verify(self, raw: bytes) -> str:
        """The payload segment of a JWS the platform signed; SignatureRefused otherwise.

        Its payload is left to `parse_message`; the size cap is the body's.
        """
        try:
            token = raw.decode("ascii").strip()
            compact = jose.parse(token, max_bytes=MAX_BODY_BYTES, claims=False)
        except UnicodeDecodeError:
            raise SignatureRefused("body is not a compact JWS") from None
        except jose.JoseError as exc:
            raise SignatureRefused(str(exc)) from None
        header, payload_b64 = compact.header, token.split(".")[1]
        kid = _vet_header(header)
        key = await self.keys.get(kid)
        if key is None:
            raise SignatureRefused(f"kid {kid!r} is not in the platform's key set")
        try:
            jose.verify(compact, key, _ES256)
        except jose.JoseError as exc:
            raise SignatureRefused(str(exc)) from None
        return payload_b64

    async def _handle(self, payload_b64: str, raw: bytes, ack_key: LoadedKey) -> Response:
        now = self.ctx.clock()
        try:
            event = parse_message(payload_b64, raw=raw, now=now)
        except Invalid as exc:
            log.info("message rejected: %s", exc.reason, extra={"platform": KEY})
            await reject(self.ctx, KEY, exc.reason, raw)
            return _ack(ack_key, exc.msg_id, "rejected", exc.reason, now)
        try:
            stored = await receive(self.ctx, event)
        except StoreUnavailable:
            return _unavailable("the store cannot take the message; send it again later")
        return _ack(ack_key, event.message_id, stored.outcome, stored.reason, now)


def build(ctx: PlatformContext) -> Adapter:
    unknown = set(ctx.settings) - _SETTINGS
    if unknown:
        raise ValueError(f"{KEY}: unknown settings {', '.join(sorted(unknown))}")
    file = ctx.path("jwks_file") if ctx.settings.get("jwks_file") else None
    url = ctx.settings.get("jwks_url") or None
    if file is None and url is None:
        raise ValueError(f"{KEY}: set jwks_file or jwks_url")
    if url is not None:
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{KEY}: jwks_url must be an http(s) URL")
        ctx.outbound.check_config(f"{KEY}: jwks_url", str(url))
    if file is not None and not file.exists():
        log.warning(
            "JWKS file %s missing; answering 503 until it exists%s",
            file,
            " or the URL answers" if url else "",
            extra={"platform": KEY},
        )
    keys = PlatformKeys(file, None if url is None else str(url), ctx.outbound)
    return ChuangfuTianfu(ctx, keys)
