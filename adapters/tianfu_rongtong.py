"""天府融通 Tianfu Rongtong: a credit-event feed the gateway polls (spec: tianfu-rongtong.md).

Supply-chain finance: the borrower is the supplier, and the core enterprise
whose receivable backs the financing is kept beside it. Each page's events
and the cursor after them commit in one transaction, so a crash between the
two neither loses nor doubles an event; delivery is at least once and
duplicates fold away by event id. An event that cannot be used is
dead-lettered and skipped: it never holds up the feed.

Config block: `simulator_file` (JSON: `base_url`, `client_id`,
`client_secret`, relative to the state directory) and `schedule_s` (read by
the app's background loop).

Errors from `sync`: CredentialsMissing (no credentials file yet),
`adapters.http.UpstreamError` (the token was refused, a page was not the
feed's JSON, the cursor expired again right after a restart) and its
`RetriesExhausted` (429/5xx past the retry budget). Pages committed before
the error stay committed, with their cursor.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import APIRouter
from sqlalchemy import Connection, select

from adapters import ledger
from adapters.base import PlatformContext, SyncReport, read_credentials
from adapters.events import BEIJING, Authorization, EventType, InvalidAmount, LoanEvent, digest
from adapters.http import (
    DEFAULT_TIMEOUT,
    RetryPolicy,
    UpstreamError,
    read_limited,
    send,
)
from gateway import bounds
from gateway.identifiers import InvalidIdentifier, validate_credit_code
from gateway.metrics import PLATFORM_LAST_SYNC, PLATFORM_MESSAGES
from gateway.store.tables import loan_events
from gateway.timeutil import aware
from policies.consent import ConsentRules

PLATFORM = "tianfu-rongtong"
_T = TypeVar("_T")
log = logging.getLogger("xyd.adapters.tianfu_rongtong")

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
PAGE_LIMIT = 500
MAX_PAGES = 50  # per sync; the next scheduled sync continues from the saved cursor
MAX_PAGE_BYTES = 16 << 20
RESTART_OVERLAP = timedelta(hours=1)
_BANK_CODE = re.compile(r"[A-Z][A-Z0-9-]{1,31}")


class EventInvalid(ValueError):
    """One feed event cannot be used; it is dead-lettered and the feed goes on."""


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


# --- one event -------------------------------------------------------------------


def _obj(value: Any, name: str, *, required: bool) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise EventInvalid(f"{name} must be an object")
    return value


def _text(value: Any, name: str, limit: int = 128) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise EventInvalid(f"{name} must be a string of 1 to {limit} characters")
    return value


def _code(party: dict[str, Any], name: str) -> str:
    try:
        return validate_credit_code(_text(party.get("unified_code"), f"{name}.unified_code", 18))
    except InvalidIdentifier as exc:
        raise EventInvalid(f"{name}.unified_code: {exc.message}") from None


def _fen(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:  # the spec's JSON integer: not text, not 1.0
        raise EventInvalid(f"{name} must be a whole number of fen")
    try:
        return bounds.fen(value, bounds.FEN)
    except InvalidAmount as exc:
        raise EventInvalid(f"{name}: {exc}") from None


def _date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    try:
        return bounds.day_within(date.fromisoformat(_text(value, name, 10)))
    except ValueError:  # DayOutOfRange too
        raise EventInvalid(
            f"{name} must be a YYYY-MM-DD date from 1949-10-01 to 2199-12-31"
        ) from None


def _bank(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _BANK_CODE.fullmatch(value):
        raise EventInvalid(f"{name} must be a bank code")
    return value


def _occurred(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(_text(value, "occurred_at", 40))
    except ValueError:
        raise EventInvalid("occurred_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise EventInvalid("occurred_at must carry its offset (Z or +08:00)")
    if not bounds.moment_within(when):
        raise EventInvalid("occurred_at: outside the years this gateway holds")
    return when


def _authorization(value: Any) -> Authorization:
    auth = _obj(value, "authorization", required=True)
    scopes = auth.get("scopes")
    if not isinstance(scopes, list) or not 0 < len(scopes) <= 20:
        raise EventInvalid("authorization.scopes must be a list of sections")
    until = _date(auth.get("valid_until"), "authorization.valid_until")
    bank = _bank(auth.get("bank_code"), "authorization.bank_code")
    if until is None or bank is None:
        raise EventInvalid("authorization needs bank_code and valid_until")
    return Authorization(bank, tuple(_text(s, "authorization.scopes", 40) for s in scopes), until)


def judge(item: Any, raw: bytes) -> LoanEvent:
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
        days_overdue=days if kind == "repayment_overdue" else None,
        due_date=_date(repayment.get("due_date"), "repayment.due_date"),
        authorization=authorization,
        details=_details(event, supplier, core, financing),
    )


def _details(
    event: dict[str, Any], supplier: dict[str, Any], core: dict[str, Any], financing: dict[str, Any]
) -> dict[str, Any]:
    details: dict[str, Any] = {"type": event["type"]}
    for key, party in (("supplier_name", supplier), ("core_enterprise_name", core)):
        if isinstance(party.get("name"), str):
            details[key] = party["name"][:200]
    due = _date(financing.get("receivable_due"), "financing.receivable_due")
    if due is not None:
        details["receivable_due"] = due.isoformat()
    return details


# --- the feed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Any]
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


@dataclass
class _Counts:
    accepted: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)  # by the ledger


def _commit_page(
    conn: Connection,
    events: list[LoanEvent],
    rejects: list[tuple[str, bytes]],
    cursor: str | None,
    rules: ConsentRules,
) -> _Counts:
    """A page's events, its rejects and the cursor after it, in the caller's one transaction."""
    counts = _Counts()
    for event in events:
        stored = ledger.store(conn, event, rules=rules)
        if stored.outcome == "rejected":  # dead-lettered by the ledger (once)
            counts.refused.append({"id": event.message_id, "reason": stored.reason})
        elif stored.outcome == "accepted":
            counts.accepted += 1
        else:
            counts.duplicate += 1
    for reason, raw in rejects:
        # At-least-once delivery brings bad events back too: keep one copy.
        if ledger.dead_letter(conn, PLATFORM, reason, raw, once=True):
            counts.dead_lettered += 1
    if cursor is not None:
        ledger.set_state(conn, PLATFORM, "cursor", cursor)
    return counts


def _restart_point(conn: Connection) -> datetime | None:
    """The last stored event's time minus the overlap, or None: from the feed's start."""
    last: datetime | None = conn.execute(
        select(loan_events.c.occurred_at)
        .where(loan_events.c.platform == PLATFORM)
        .order_by(loan_events.c.id.desc())
        .limit(1)
    ).scalar()
    if last is None:
        return None
    return aware(last) - RESTART_OVERLAP  # SQLite: stored UTC


def _zulu(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Token:
    value: str = field(repr=False)
    renew_at: float  # time.monotonic()
    credentials: Credentials


class TianfuRongtongAdapter:
    key = PLATFORM

    def __init__(self, ctx: PlatformContext) -> None:
        name = ctx.settings.get("simulator_file")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{PLATFORM}: simulator_file must name the credentials file")
        schedule = ctx.settings.get("schedule_s")
        if schedule is not None and (
            isinstance(schedule, bool) or not isinstance(schedule, int | float) or schedule <= 0
        ):
            raise ValueError(f"{PLATFORM}: schedule_s must be a positive number of seconds")
        self.ctx = ctx
        self.credentials_path = ctx.path("simulator_file")
        self.retry = RetryPolicy()
        self.timeout = DEFAULT_TIMEOUT
        self.page_limit = PAGE_LIMIT
        self._token: _Token | None = None

    def router(self) -> APIRouter | None:
        return None

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
                    start = await self._run(_restart_point)
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

    async def _run(self, work: Callable[[Connection], _T]) -> _T:
        async with self.ctx.engine.begin() as conn:
            return await conn.run_sync(work)

    async def _saved_cursor(self) -> str | None:
        return await self._run(lambda conn: ledger.get_state(conn, PLATFORM, "cursor"))

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
        async with self.ctx.engine.begin() as conn:
            counts: _Counts = await conn.run_sync(
                _commit_page, events, rejects, page.next_cursor, self.ctx.consent_rules
            )
        report.fetched += len(page.items)
        report.accepted += counts.accepted
        report.duplicate += counts.duplicate
        report.rejected += counts.refused
        metric = PLATFORM_MESSAGES
        metric.labels(PLATFORM, "received").inc(len(page.items))
        metric.labels(PLATFORM, "accepted").inc(counts.accepted)
        metric.labels(PLATFORM, "duplicate").inc(counts.duplicate)
        metric.labels(PLATFORM, "rejected").inc(len(rejects) + len(counts.refused))
        metric.labels(PLATFORM, "dead_lettered").inc(counts.dead_lettered)

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


def build(ctx: PlatformContext) -> TianfuRongtongAdapter:
    adapter = TianfuRongtongAdapter(ctx)
    if not adapter.credentials_path.exists():
        log.warning(
            "credentials file %s missing: syncs fail until it exists",
            adapter.credentials_path,
            extra={"platform": PLATFORM},
        )
    return adapter
