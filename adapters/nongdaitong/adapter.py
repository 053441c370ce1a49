"""农贷通 Nongdaitong: GB18030 XML messages pushed to us, RSA-SHA256 signed over `<Body>`.

The protocol and the order each message is checked in: docs/platforms/nongdaitong.md
and `wire.py`. The platform's public keys are files (`config.py`), re-read when
one appears or changes; with none usable every message is answered 9999.
"""

from __future__ import annotations

import logging
import traceback
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Final, Self

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import APIRouter, Request, Response

from adapters.base import PlatformContext, StoreUnavailable, receive, reject
from adapters.config import PlatformConfig
from adapters.nongdaitong.config import NongdaitongConfig
from adapters.nongdaitong.wire import (
    KEY,
    MAX_BODY_BYTES,
    Code,
    Refusal,
    answer,
    echo_id,
    locate,
    redact,
    to_event,
    verify,
)
from gateway.metrics import PLATFORM_MESSAGES

MIN_KEY_BITS: Final = 2048

log = logging.getLogger("xyd.adapters.nongdaitong")


class KeyRing:
    """Nongdaitong's public keys, re-read whenever a file appears or changes.

    Rotation is a file operation (add the new key's path, later drop the
    old), so a missing or unusable file is logged and skipped rather than
    fatal; with no usable key every message is answered 9999.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._seen: dict[Path, tuple[tuple[int, int] | None, RSAPublicKey | None]] = {}

    def current(self) -> list[RSAPublicKey]:
        keys = []
        for path in self.paths:
            try:
                stat = path.stat()
                stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                stamp = None
            seen = self._seen.get(path)
            if seen is None or seen[0] != stamp:
                seen = (stamp, self._load(path) if stamp else None)
                if stamp is None:
                    log.warning("nongdaitong public key file missing", extra={"path": str(path)})
                self._seen[path] = seen
            if seen[1] is not None:
                keys.append(seen[1])
        return keys

    @staticmethod
    def _load(path: Path) -> RSAPublicKey | None:
        try:
            key = load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            log.error("nongdaitong public key unreadable: %s", exc, extra={"path": str(path)})
            return None
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_KEY_BITS:
            log.error(
                "nongdaitong public key must be RSA of 2048 bits or more", extra={"path": str(path)}
            )
            return None
        return key


_ANSWER_EXAMPLE = (
    '<?xml version="1.0" encoding="GB18030"?>\n<NDTRsp><Head><MsgId>NDT20261120000000123'
    "</MsgId><RspCode>0000</RspCode><RspMsg>成功</RspMsg></Head></NDTRsp>"
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Always 200 with a GB18030 `<NDTRsp>`; the outcome is `RspCode`: 0000 accepted, "
            "0001 duplicate of an accepted message, 1001 signature invalid or SendTime more "
            "than 600 s off, 1002 not well-formed / wrong encoding / missing element / over "
            "256 KiB / DTD or entities present, 1003 invalid value (the field is named in "
            "RspMsg), 9999 busy or not configured: retry later."
        ),
        "content": {"application/xml": {"schema": {"type": "string"}, "example": _ANSWER_EXAMPLE}},
    }
}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "An `<NDTMsg>` in GB18030, at most 256 KiB, signed over `<Body>`.",
        "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` (the rest is never read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class NongdaitongAdapter:
    key = KEY
    config_model: ClassVar[type[PlatformConfig]] = NongdaitongConfig

    def __init__(self, ctx: PlatformContext, keys: KeyRing) -> None:
        self.ctx, self.keys = ctx, keys

    def router(self) -> APIRouter:
        router = APIRouter(tags=["platforms"])
        router.add_api_route(
            f"/v1/platforms/{KEY}/messages",
            self.message,
            methods=["POST"],
            summary="农贷通 Nongdaitong pushes one signed GB18030 XML message",
            response_class=Response,
            responses=_RESPONSES,
            openapi_extra=_REQUEST_BODY,
        )
        return router

    async def message(self, request: Request) -> Response:
        raw = await read_limited(request)
        if raw is None:
            return self._refused("", Refusal(Code.MALFORMED, "报文超过 256 KiB", dead_letter=False))
        keys = self.keys.current()
        if not keys:
            return answer(echo_id(raw), Code.BUSY, "网关未配置农贷通公钥, 请稍后重试")
        try:
            signed, signature = locate(raw)
            if not verify(keys, signed, signature):
                raise Refusal(Code.UNAUTHENTIC, "签名无效", dead_letter=False)
            event = to_event(raw, signed, now=self.ctx.clock(), pii_key=self.ctx.pii_key)
        except Refusal as refusal:
            if refusal.dead_letter:
                reason = f"{refusal.code} {refusal.message} (MsgId {echo_id(raw) or '-'})"
                await reject(self.ctx, KEY, reason, redact(raw))
            return self._refused(echo_id(raw), refusal)
        except Exception as exc:  # a bug must not lose the message: the platform retries
            log.error(
                "nongdaitong message failed unexpectedly",
                extra={
                    "error": type(exc).__name__,
                    "where": traceback.format_tb(exc.__traceback__),
                },
            )
            return answer(echo_id(raw), Code.BUSY, "系统繁忙, 请稍后重试")
        try:
            stored = await receive(self.ctx, event)
        except StoreUnavailable:
            return answer(event.message_id, Code.BUSY, "系统繁忙, 请稍后重试")
        if stored.outcome == "duplicate":
            return answer(event.message_id, Code.DUPLICATE, "重复报文, 已受理")
        if stored.outcome == "rejected":  # dead-lettered by the ledger
            return answer(event.message_id, Code.INVALID, f"CreditCode 无效: {stored.reason}")
        return answer(event.message_id, Code.ACCEPTED, "成功")

    def _refused(self, msg_id: str, refusal: Refusal) -> Response:
        if not refusal.dead_letter:  # `reject` counts the others
            PLATFORM_MESSAGES.labels(KEY, "received").inc()
            PLATFORM_MESSAGES.labels(KEY, "rejected").inc()
        log.warning(
            "nongdaitong message refused",
            extra={"msg_id": msg_id, "code": str(refusal.code), "reason": refusal.message},
        )
        return answer(msg_id, refusal.code, refusal.message)

    async def sync(self, *, day: date | None = None, since: datetime | None = None) -> None:
        return None

    @classmethod
    def build(cls, ctx: PlatformContext, config: PlatformConfig) -> Self:
        """The adapter; a missing key file is logged and answered 9999 until it appears."""
        paths = [ctx.path(p) for p in NongdaitongConfig.narrow(config).public_keys]
        ring = KeyRing(paths)
        ring.current()
        return cls(ctx, ring)
