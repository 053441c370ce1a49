"""Delivering a bank's event: signed, then POSTed to the webhook it has now.

The outbox calls `WebhookSender.notify` for each due `webhook` row and retries
it with back-off when it raises, so delivery is at least once. The event is
signed at each attempt (ES256 with the gateway's `webhook` key, published in
the JWKS) as a compact JWS of type `xyd-event+jwt`: the `event_id` inside stays
the same across attempts, `iat` says when this attempt was signed. The POST is
`application/jose`, through the outbound policy (SSRF), redirects not
followed; any 2xx is delivered. Failures are reported without the URL or the
event's content, so a log line holds neither an address nor a credit code.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys import jose
from gateway.keys.ring import KeyRingHolder
from gateway.outbound import OutboundPolicy, OutboundRefused
from gateway.webhooks import repository

log = logging.getLogger("xyd.webhooks")
EVENT_TYP = "xyd-event+jwt"
MEDIA_TYPE = "application/jose"
# Short: the outbox holds its batch's rows locked while it sends.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_URL_LENGTH = 2000  # clients.webhook_url


class WebhookFailed(Exception):
    """This attempt was not delivered; the outbox tries again later."""


class WebhookSender:
    def __init__(
        self, engine: AsyncEngine, keys: KeyRingHolder, outbound: OutboundPolicy, issuer: str
    ) -> None:
        self.engine, self.keys, self.outbound, self.issuer = engine, keys, outbound, issuer

    async def sign(self, payload: dict[str, Any]) -> str:
        now = datetime.now(UTC)
        key = (await self.keys.current()).signing_key("webhook", now)
        header = {"alg": "ES256", "typ": EVENT_TYP, "kid": key.kid}
        return jose.sign(header, {**payload, "iss": self.issuer, "iat": int(now.timestamp())},
                         key.private)  # fmt: skip

    async def notify(self, kind: str, payload: dict[str, Any]) -> None:
        client_id = str(payload["client_id"])
        async with self.engine.connect() as conn:
            url = await conn.run_sync(repository.webhook_url, client_id)
        if url is None:
            # The bank removed its webhook since: there is nowhere to deliver.
            dropped = {"client_id": client_id, "event_id": payload.get("event_id")}
            log.info("webhook removed; event dropped", extra=dropped)
            return
        token = await self.sign(payload)
        where = f"{kind} to {client_id}"
        try:
            async with httpx.AsyncClient(
                transport=self.outbound.transport(), timeout=TIMEOUT, follow_redirects=False
            ) as http:
                answer = await http.post(url, content=token, headers={"Content-Type": MEDIA_TYPE})
        except OutboundRefused:
            raise WebhookFailed(
                f"{kind} to {client_id}: target refused by the outbound policy"
            ) from None
        except httpx.HTTPError as exc:
            raise WebhookFailed(
                f"{kind} to {client_id}: unreachable ({type(exc).__name__})"
            ) from None
        if not 200 <= answer.status_code < 300:
            raise WebhookFailed(f"{where}: answered HTTP {answer.status_code}")
