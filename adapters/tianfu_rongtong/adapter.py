"""天府融通 Tianfu Rongtong: a credit-event feed the gateway polls.

The protocol: docs/platforms/tianfu-rongtong.md.

Supply-chain finance: the borrower is the supplier, and the core enterprise
whose receivable backs the financing is kept beside it. Each page's events
and the cursor after them commit in one transaction, so a crash between the
two neither loses nor doubles an event; delivery is at least once and
duplicates fold away by event id. An event that cannot be used is
dead-lettered and skipped: it never holds up the feed.

Config block: `adapters.tianfu_rongtong.config.TianfuRongtongConfig`.

Errors from `sync`: CredentialsMissing (no credentials file yet),
`adapters.http.UpstreamError` (the token was refused, a page was not the
feed's JSON, the cursor expired again right after a restart) and its
`RetriesExhausted` (429/5xx past the retry budget). Pages committed before
the error stay committed, with their cursor.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
from sqlalchemy import Connection

from adapters.base import PlatformContext, SyncReport
from adapters.config import PlatformConfig
from adapters.http import DEFAULT_TIMEOUT, UpstreamError, read_limited, send
from adapters.pull import Batch, PullAdapter, PullConfig, count, read_credentials, store_batch
from adapters.tianfu_rongtong.config import TianfuRongtongConfig
from adapters.tianfu_rongtong.wire import PLATFORM, EventInvalid, Page, judge, parse_page
from gateway.loans.events import BEIJING, LoanEvent
from gateway.loans.ledger import last_occurred
from gateway.metrics import PLATFORM_LAST_SYNC
from gateway.positions import read_position, save_position
from policies.consent import ConsentRules

log = logging.getLogger("xyd.adapters.tianfu_rongtong")

PAGE_LIMIT = 500
MAX_PAGES = 50  # per sync; the next scheduled sync continues from the saved cursor
MAX_PAGE_BYTES = 16 << 20
RESTART_OVERLAP = timedelta(hours=1)


@dataclass(frozen=True)
class Credentials:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        base, key, secret = read_credentials(
            PLATFORM, path, ("base_url", "client_id", "client_secret")
        )
        return cls(base.rstrip("/"), key, secret)


def _commit_page(
    conn: Connection,
    events: list[LoanEvent],
    rejects: list[tuple[str, bytes]],
    cursor: str | None,
    rules: ConsentRules,
) -> Batch:
    """A page's events, its rejects and the cursor after it, in the caller's one transaction."""
    batch = store_batch(conn, PLATFORM, events, rejects, rules)
    if cursor is not None:
        save_position(conn, PLATFORM, "cursor", cursor)
    return batch


def _restart_point(conn: Connection) -> datetime | None:
    """The last stored event's time minus the overlap, or None: from the feed's start."""
    last = last_occurred(conn, PLATFORM)
    return None if last is None else last - RESTART_OVERLAP


def _zulu(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Token:
    value: str = field(repr=False)
    renew_at: float  # time.monotonic()
    credentials: Credentials


class TianfuRongtongAdapter(PullAdapter):
    key = PLATFORM
    config_model: ClassVar[type[PlatformConfig]] = TianfuRongtongConfig

    def __init__(self, ctx: PlatformContext, config: PullConfig) -> None:
        super().__init__(ctx, config)
        self.timeout = DEFAULT_TIMEOUT
        self.page_limit = PAGE_LIMIT
        self._token: _Token | None = None

    async def sync(self, *, day: date | None = None, since: datetime | None = None) -> SyncReport:
        """From the saved cursor; or, with `since` (or a Beijing `day`), from that time on
        (the cursors saved from then on replace the old one). At most MAX_PAGES pages."""
        start = self._start(day, since)
        credentials = Credentials.load(self.credentials_path)
        report = SyncReport(PLATFORM, window="cursor" if start is None else f"since {_zulu(start)}")
        async with httpx.AsyncClient(
            base_url=credentials.base_url,
            timeout=self.timeout,
            transport=self.ctx.outbound.transport(),
        ) as client:
            cursor = None if start else await self._saved_cursor()
            restarted = False
            for _ in range(MAX_PAGES):
                params = {"limit": str(self.page_limit)}
                if cursor is not None:
                    params["cursor"] = cursor
                elif start is not None:
                    params["since"] = _zulu(start)
                response = await self._fetch(client, credentials, params)
                if response.status_code == 410:
                    await response.aclose()
                    if restarted:
                        raise UpstreamError(f"{PLATFORM}: cursor expired again after a restart")
                    restarted, cursor = True, None
                    start = await self.run(_restart_point)
                    log.warning("cursor expired; restarting", extra={"platform": PLATFORM})
                    continue
                page = parse_page(await read_limited(response, MAX_PAGE_BYTES))
                await self._store(page, report)
                cursor = page.next_cursor or cursor
                if not page.has_more:
                    break
            else:
                log.info("page budget spent; the next sync continues", extra={"platform": PLATFORM})
        report.position = cursor
        PLATFORM_LAST_SYNC.labels(PLATFORM).set(time.time())
        return report

    def _start(self, day: date | None, since: datetime | None) -> datetime | None:
        if day is not None and since is not None:
            raise ValueError("sync from a day or since a time, not both")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must carry its offset")
        if day is not None:
            return datetime(day.year, day.month, day.day, tzinfo=BEIJING)
        return since

    async def _saved_cursor(self) -> str | None:
        return await self.run(lambda conn: read_position(conn, PLATFORM, "cursor"))

    async def _store(self, page: Page, report: SyncReport) -> None:
        events: list[LoanEvent] = []
        rejects: list[tuple[str, bytes]] = []
        for item in page.items:
            raw = json.dumps(item, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            try:
                events.append(judge(item, raw.encode()))
            except EventInvalid as exc:
                ident = item.get("id") if isinstance(item, dict) else None
                rejects.append((f"event {ident!r}: {exc}", raw.encode()))
                report.rejected.append({"id": ident, "reason": str(exc)})
        rules, cursor = self.ctx.consent_rules, page.next_cursor
        batch = await self.run(lambda conn: _commit_page(conn, events, rejects, cursor, rules))
        refused: list[dict[str, object]] = [
            {"id": ident, "reason": reason} for ident, reason in batch.refused
        ]
        report.fetched += len(page.items)
        report.accepted += batch.accepted
        report.duplicate += batch.duplicate
        report.rejected += refused
        count(PLATFORM, len(page.items), len(rejects) + len(refused), batch)

    async def _fetch(
        self, client: httpx.AsyncClient, credentials: Credentials, params: dict[str, str]
    ) -> httpx.Response:
        """A feed page's response (200 or 410, body unread); a 401 renews the token once."""
        for _ in range(2):
            token = await self._access_token(client, credentials)
            response = await send(
                client,
                "GET",
                "/api/v2/credit-events",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                policy=self.retry,
                stream=True,
            )
            if response.status_code in (200, 410):
                return response
            await response.aclose()
            if response.status_code != 401:
                raise UpstreamError(f"{PLATFORM}: feed answered HTTP {response.status_code}")
            self._token = None
        raise UpstreamError(f"{PLATFORM}: the feed refused a freshly issued token (HTTP 401)")

    async def _access_token(self, client: httpx.AsyncClient, credentials: Credentials) -> str:
        token, now = self._token, time.monotonic()
        if token is not None and token.credentials == credentials and now < token.renew_at:
            return token.value
        response = await send(
            client,
            "POST",
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
            policy=self.retry,
        )
        if response.status_code != 200:
            raise UpstreamError(
                f"{PLATFORM} refused the client credentials (HTTP {response.status_code}: "
                f"{response.text[:200]}): check {self.credentials_path}"
            )
        try:
            body = response.json()
            value, lifetime = body["access_token"], body["expires_in"]
        except (ValueError, KeyError, TypeError):
            raise UpstreamError(f"{PLATFORM}: token answer is not a token") from None
        if not isinstance(value, str) or not value or type(lifetime) is not int or lifetime <= 0:
            raise UpstreamError(f"{PLATFORM}: token answer is not a token")
        # Renew a little early, so a token never expires between check and use.
        self._token = _Token(value, now + lifetime - min(60.0, lifetime / 10), credentials)
        return value
