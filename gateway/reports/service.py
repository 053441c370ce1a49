"""Serving reports: the cached full report for a data version, built on a miss."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.batching import Coalescer
from gateway.loans import service as ledger
from gateway.metrics import REPORT_BUILD
from gateway.records import disputes
from gateway.reports import signing
from gateway.reports.build import (
    CLOSING_FROM,
    OPENING_UP_TO,
    ReportBuilder,
    consent_cut,
    report_day,
    stale_at,
)
from gateway.reports.cache import ReportCache
from gateway.reports.repository import (
    Ask,
    ConsentReads,
    Found,
    StoredRecord,
    current_records,
    enterprise_row,
    latest_feeds,
)

RULE_FILES = ("publication.yaml", "report.yaml", "score_model.yaml")
FEEDS_TTL_S = 60.0
COPIES_MAX = 10_000


def rules_fingerprint(config_dir: Path) -> str:
    """Changes whenever a file that shapes reports changes: part of every cache key."""
    digest = hashlib.sha256()
    for name in RULE_FILES:
        digest.update((config_dir / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Cut:
    """A consent cut and its top-level members as canonical JSON."""

    report: dict[str, Any]
    members: signing.Members
    # The same members split for `signing.signed_json`: those a request's own
    # sort among, and the tail encoded once.
    head: signing.Members
    tail: signing.Tail
    # The whole cut as canonical JSON and its SHA-256: how an issued report
    # keeps it (gateway/audit/kept.py).
    canonical: bytes
    sha256: str
    stale_at: datetime | None  # see build.stale_at


@dataclass(frozen=True, slots=True)
class Loaded:
    enterprise: dict[str, Any] | None
    records: list[StoredRecord]
    disputes: dict[int, dict[str, Any]]
    loans: list[dict[str, Any]]
    loan_events: list[ledger.LedgerEvent]


def _load(conn: Connection, credit_code: str, with_ledger: bool) -> Loaded:
    return Loaded(
        enterprise_row(conn, credit_code),
        current_records(conn, credit_code),
        disputes.for_enterprise(conn, credit_code),
        ledger.for_enterprise(conn, credit_code) if with_ledger else [],
        # The score folds each loan again as of every quarter end it shows.
        ledger.history(conn, credit_code) if with_ledger else [],
    )


class ReportService:
    def __init__(
        self,
        builder: ReportBuilder,
        cache: ReportCache,
        fingerprint: str,
        *,
        store: Engine,
        ledger_connected: bool = False,
        copy_s: float = 0.0,
        feeds_refresh_s: float = FEEDS_TTL_S,
    ) -> None:
        self.builder = builder
        # Every section a report can hold: what each request asks its consent for.
        self.wanted = frozenset(builder.sections.sections)
        self.store = store
        # With no platform connected the loans section says so, rather than "no loans".
        self.ledger_connected = ledger_connected
        self.cache = cache
        self.fingerprint = fingerprint
        self._feeds: dict[str, datetime] = {}
        self._feeds_refresh_s = feeds_refresh_s
        self._feeds_read = -feeds_refresh_s - 1.0
        self._cuts: dict[tuple[str, int, str, frozenset[str]], Cut] = {}
        self._cut_entries = max(16, cache.local_entries)
        # Concurrent requests' consent reads share one query (each still starts
        # after its request arrived, so it sees every revocation committed before).
        self._reads: Coalescer[Ask, Found] = Coalescer(self._read)
        self._consent_reads = ConsentReads(store)
        # Copies of what the reads found, for `copy_s` seconds; only where the
        # gate can check consent change marks (with Redis). See settings.
        self.copy_s = copy_s
        self._copies: dict[Ask, tuple[float, Found]] = {}

    def cut(self, full: dict[str, Any], sections: frozenset[str]) -> Cut:
        """The consented part of a full report, kept beside it with its members
        serialised: every request under consents to the same sections shares it
        (nobody writes to it)."""
        key = (full["credit_code"], full["data_version"], full["as_of_date"], sections)
        found = self._cuts.get(key)
        if found is None:
            report = consent_cut(full, sections)
            members = signing.members(report)
            head, tail = signing.split(members, after=OPENING_UP_TO, before=CLOSING_FROM)
            canonical = signing.joined(members)
            found = self._cuts[key] = Cut(
                report, members, head, tail, canonical,
                hashlib.sha256(canonical).hexdigest(), stale_at(report),
            )  # fmt: skip
            while len(self._cuts) > self._cut_entries:
                self._cuts.pop(next(iter(self._cuts)))
        return found

    async def consent_and_version(
        self, consent_id: str | None, credit_code: str, *, copy_ok: bool = True
    ) -> tuple[Found, bool]:
        """The consent as stored and the enterprise's data version, and whether
        they came from this worker's copy (then a grant must be checked against
        the consent's change mark: `Gate.admit(cached_consent=...)`)."""
        ask = (consent_id, credit_code)
        now = time.monotonic()
        if copy_ok and self.copy_s:
            copy = self._copies.get(ask)
            if copy is not None and now - copy[0] < self.copy_s:
                return copy[1], True
        found = await self._reads.submit(ask)
        consent, version = found
        if self.copy_s and consent is not None and version is not None:
            # Aged from before the read: a copy never outlives `copy_s`.
            self._copies[ask] = (now, found)
            if len(self._copies) > COPIES_MAX:
                self._copies.pop(next(iter(self._copies)))
        return found, False

    def forget(self, consent_id: str | None, credit_code: str) -> None:
        self._copies.pop((consent_id, credit_code), None)

    async def _read(self, asks: list[Ask]) -> list[Found]:
        return await self._consent_reads.consents_and_versions(asks)

    async def close(self) -> None:
        await self._consent_reads.close()

    async def full_report(
        self, engine: AsyncEngine, credit_code: str, data_version: int, now: datetime
    ) -> dict[str, Any] | None:
        key = f"{credit_code}:{data_version}:{report_day(now).isoformat()}:{self.fingerprint}"
        cached = await self.cache.get(key)
        if cached is not None:
            return cached
        started = time.perf_counter()
        async with engine.connect() as conn:
            loaded = await conn.run_sync(_load, credit_code, self.ledger_connected)
            if loaded.enterprise is None:
                return None
            if time.monotonic() - self._feeds_read >= self._feeds_refresh_s:
                # Feed freshness moves by days; re-reading it once a minute is plenty.
                self._feeds = await conn.run_sync(latest_feeds)
                self._feeds_read = time.monotonic()
        report = self.builder.build(
            loaded.enterprise,
            loaded.records,
            self._feeds,
            now,
            loaded.disputes,
            loaded.loans if self.ledger_connected else None,
            loaded.loan_events,
        )
        REPORT_BUILD.observe(time.perf_counter() - started)
        await self.cache.put(key, report)
        return report
