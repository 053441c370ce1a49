"""What the two pull platforms (盈创动力, 天府融通) share: their config block, their
credentials file, and storing a batch of events with its rejects and position
in one transaction, so a crash in between loses and doubles nothing.

A subclass fetches (`sync`) in its platform's terms and hands each batch to
`store_batch` inside `run`, setting its own position in the same transaction.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Self, TypeVar

from fastapi import APIRouter
from pydantic import Field, PositiveFloat, PositiveInt, model_validator
from sqlalchemy import Connection

from adapters.base import PlatformContext, SyncReport
from adapters.config import PlatformConfig, Schedule
from adapters.http import RetryPolicy
from gateway.leases import Fence
from gateway.loans.events import LoanEvent
from gateway.loans.ledger import dead_letter, store_many
from gateway.metrics import PLATFORM_MESSAGES
from policies.consent import ConsentRules

_T = TypeVar("_T")
log = logging.getLogger("xyd.adapters")


class PullConfig(PlatformConfig):
    simulator_file: str | None = Field(
        None, min_length=1, description="JSON credentials file, relative to the state directory"
    )
    schedule_s: PositiveFloat | None = Field(
        None, description="Seconds between scheduled syncs; none: only `xyd adapters sync`"
    )
    breaker_failures: PositiveInt = Field(3, description="Failed syncs in a row that open it")
    breaker_open_s: PositiveFloat = Field(60.0, description="Seconds scheduled syncs then skip")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and self.simulator_file is None:
            raise ValueError("simulator_file must name the credentials file")
        return self

    def schedule(self) -> Schedule | None:
        if not self.schedule_s:
            return None
        return Schedule(self.schedule_s, self.breaker_failures, self.breaker_open_s)


class CredentialsMissing(RuntimeError):
    """A pull platform's credentials file does not exist (yet)."""


def read_credentials(platform: str, path: Path, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The named non-empty strings from a pull platform's JSON credentials file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsMissing(f"{platform}: credentials file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{platform}: credentials file {path}: {exc}") from exc
    values = [raw.get(k) if isinstance(raw, dict) else None for k in fields]
    if not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{platform}: {path} needs {', '.join(fields)}")
    return tuple(str(v) for v in values)


@dataclass
class Batch:
    """What storing one batch did."""

    accepted: int = 0
    duplicate: int = 0
    dead_lettered: int = 0
    # Authorisations the ledger refused (dead-lettered by it): (message id, reason).
    refused: list[tuple[str, str]] = field(default_factory=list)


def store_batch(
    conn: Connection,
    platform: str,
    events: list[LoanEvent],
    rejects: list[tuple[str, bytes]],
    rules: ConsentRules,
) -> Batch:
    """Events stored once, each (reason, raw) reject dead-lettered once (a feed
    delivers at least once, bad rows too), in the caller's transaction."""
    batch = Batch()
    for event, stored in zip(events, store_many(conn, events, rules=rules), strict=True):
        if stored.outcome == "rejected":
            batch.refused.append((event.message_id, stored.reason or "rejected"))
        elif stored.outcome == "accepted":
            batch.accepted += 1
        else:
            batch.duplicate += 1
    for reason, raw in rejects:
        if dead_letter(conn, platform, reason, raw, once=True):
            batch.dead_lettered += 1
    return batch


def count(platform: str, received: int, rejected: int, batch: Batch) -> None:
    metric = PLATFORM_MESSAGES
    metric.labels(platform, "received").inc(received)
    metric.labels(platform, "accepted").inc(batch.accepted)
    metric.labels(platform, "duplicate").inc(batch.duplicate)
    metric.labels(platform, "rejected").inc(rejected)
    metric.labels(platform, "dead_lettered").inc(batch.dead_lettered)


class PullAdapter(ABC):
    """The base of a pull platform's adapter: no routes, a credentials file, a retry
    policy, and `run` for work done in one transaction."""

    key: str

    def __init__(self, ctx: PlatformContext, config: PullConfig) -> None:
        if config.simulator_file is None:
            raise ValueError(f"{self.key}: simulator_file must name the credentials file")
        self.ctx, self.config = ctx, config
        self.credentials_path = ctx.path(config.simulator_file)
        self.retry = RetryPolicy()
        # Set by the schedule's lease holder: run in each transaction of `run`, so a
        # page stored after the lease was lost is rolled back with its position.
        self.fence: Fence | None = None

    @classmethod
    def build(cls, ctx: PlatformContext, config: PlatformConfig) -> Self:
        adapter = cls(ctx, PullConfig.narrow(config))
        if not adapter.credentials_path.exists():
            log.warning(
                "credentials file %s missing: syncs fail until it exists",
                adapter.credentials_path,
                extra={"platform": cls.key},
            )
        return adapter

    def router(self) -> APIRouter | None:
        return None

    async def run(self, work: Callable[[Connection], _T]) -> _T:
        async with self.ctx.engine.begin() as conn:
            return await conn.run_sync(self._fenced, work)

    def _fenced(self, conn: Connection, work: Callable[[Connection], _T]) -> _T:
        if self.fence is not None:
            self.fence(conn)
        return work(conn)

    @abstractmethod
    async def sync(
        self, *, day: date | None = None, since: datetime | None = None
    ) -> SyncReport | None:
        """One pull run: a day, since a time, or (neither) from the saved position."""
