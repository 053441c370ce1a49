"""科创通 Kechuangtong: HMAC-signed JSON webhooks in, signed risk-alert callbacks out.

The protocol: docs/platforms/kechuangtong.md; its format lives in `wire.py`,
its config block in `config.py`. A secret that is not there yet answers 503
"retry later" (the platform retries for 24 hours) instead of stopping start-up.
"""

from __future__ import annotations

import logging
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from adapters.base import PlatformContext, StoreUnavailable, SyncReport, receive, reject
from adapters.config import PlatformConfig
from adapters.http import RetriesExhausted, RetryPolicy, send
from adapters.kechuangtong.config import KechuangtongConfig
from adapters.kechuangtong.wire import (
    ALERT_FIELDS,
    KEY,
    Invalid,
    authenticate,
    parse,
    signed_headers,
)

PATH = f"/v1/platforms/{KEY}/events"
MAX_BODY_BYTES = 64 * 1024

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
    config_model: ClassVar[type[PlatformConfig]] = KechuangtongConfig

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

    async def notify(self, kind: str, payload: dict[str, object]) -> None:
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

    @classmethod
    def build(cls, ctx: PlatformContext, config: PlatformConfig) -> Self:
        """The adapter for this block; a callback URL outside the allowed hosts stops
        start-up, a missing secret does not."""
        settings = KechuangtongConfig.narrow(config)
        if settings.callback_url is not None:
            ctx.outbound.check_config(f"{KEY}: callback_url", settings.callback_url)
        file, env = settings.secret_file, settings.secret_env
        secrets = Secrets(ctx.path(file) if file is not None else None, env)
        if not secrets.current():
            log.warning(
                "kechuangtong shared secret missing (%s); webhooks answer 503 until it exists",
                secrets.path or f"${env}",
            )
        where = ctx.path(settings.callback_file) if settings.callback_file is not None else None
        return cls(ctx, secrets, settings.callback_url, where)
