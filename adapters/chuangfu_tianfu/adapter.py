"""创富天府 Chuangfu Tianfu: JWS (ES256) signed JSON envelopes, signed acknowledgements back.

`POST /v1/platforms/chuangfu-tianfu/messages`, body a compact JWS of at most
64 KiB. Until the platform's signature verifies, a refusal is a 401 problem
document and nothing is kept (no event, no dead letter, no signed answer).
Once it verifies, every answer is a compact JWS signed with the gateway's
`platform_ack` key (ES256, published in `/.well-known/jwks.json`):

    200 accepted / duplicate   stored and committed, or stored before
    400 rejected               invalid content, reason given; dead-lettered
    503 problem                store, key set or signing key unavailable: retry

The protocol: docs/platforms/chuangfu-tianfu.md; the format: `wire.py`. The
platform's key set comes from a file (re-read when it changes) and/or a URL
(fetched on first use, again on an unknown kid at most once a minute;
redirects are never followed): `config.py`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import PlatformContext, StoreUnavailable, SyncReport, receive, reject
from adapters.chuangfu_tianfu.config import ChuangfuTianfuConfig
from adapters.chuangfu_tianfu.wire import (
    KEY,
    Invalid,
    SignatureRefused,
    parse_jwks,
    parse_message,
    sign_ack,
    vet_header,
)
from adapters.config import PlatformConfig
from gateway.errors import (
    DependencyUnavailable,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    problem_docs,
    problem_response,
)
from gateway.keys import jose
from gateway.keys.store import KeyError_, LoadedKey
from gateway.outbound import OutboundPolicy, OutboundRefused

PATH = f"/v1/platforms/{KEY}/messages"
JOSE_MEDIA_TYPE = "application/jose"
MAX_BODY_BYTES = 64 * 1024
REFETCH_EVERY_S = 60.0
_RETRY_FIRST_FETCH_S = 5.0  # a URL down at first use is not asked on every message
_MAX_JWKS_BYTES = 256 * 1024
_FETCH_ATTEMPTS = 3
_MAX_RETRY_AFTER_S = 2.0  # we fetch inside a platform's request: never wait long
_ES256 = frozenset({"ES256"})

log = logging.getLogger("xyd.adapters.chuangfu_tianfu")


class KeysUnavailable(Exception):
    """Chuangfu Tianfu's key set cannot be read or fetched (yet)."""


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


# --- the endpoint ------------------------------------------------------------------


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
    token = sign_ack(key, msg_id, status, reason, now)
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
    config_model: ClassVar[type[PlatformConfig]] = ChuangfuTianfuConfig

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
            ring = await self.ctx.services.keys.current()
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
        kid = vet_header(header)
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

    @classmethod
    def build(cls, ctx: PlatformContext, config: PlatformConfig) -> Self:
        settings = ChuangfuTianfuConfig.narrow(config)
        file = ctx.path(settings.jwks_file) if settings.jwks_file else None
        url = settings.jwks_url
        if url is not None:
            ctx.outbound.check_config(f"{KEY}: jwks_url", url)
        if file is not None and not file.exists():
            log.warning(
                "JWKS file %s missing; answering 503 until it exists%s",
                file,
                " or the URL answers" if url else "",
                extra={"platform": KEY},
            )
        return cls(ctx, PlatformKeys(file, url, ctx.outbound))
