"""Pushed messages share transactions; each is still committed before it is answered,
and one that fails does not fail its neighbours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.base import PlatformContext, PlatformServices, StoreUnavailable, receive
from gateway.db import make_async_engine
from gateway.loans.events import Authorization, LoanEvent
from gateway.loans.ledger import Stored
from gateway.settings import Settings
from gateway.store.tables import loan_events, loans, platform_dead_letters
from testkit.builders import code, register_enterprises
from testkit.clients import register
from tests.loans.test_ledger import RULES
from tests.loans.test_ledger import event as loan_event


@pytest.fixture
async def async_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def ctx(async_engine: AsyncEngine, tmp_path: Path) -> PlatformContext:
    services = PlatformServices()
    services.bind(async_engine)
    return PlatformContext(services, RULES, b"pii", tmp_path)


def commits(engine: AsyncEngine) -> list[int]:
    """Counts the transactions committed on `engine` from now on."""
    seen: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda conn: seen.append(1))
    return seen


def stored(engine: Engine, table: Any = loan_events) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def history(n: int) -> list[LoanEvent]:
    kinds = ("application_submitted", "loan_approved", "loan_disbursed", "repayment_received")
    return [
        loan_event(k, kinds[k % 4], k, loan_no=f"KCT-{(k - 1) // 4}", amount_fen=1_000)
        for k in range(1, n + 1)
    ]


async def test_concurrent_messages_share_a_transaction(
    ctx: PlatformContext, async_engine: AsyncEngine, engine: Engine
) -> None:
    committed = commits(async_engine)
    events = history(40)
    answers = await asyncio.gather(*(receive(ctx, e) for e in events))
    assert [a.outcome for a in answers] == ["accepted"] * 40
    assert len(committed) < 10  # groups, not one transaction a message
    assert stored(engine) == 40 and stored(engine, loans) == 10
    again = await asyncio.gather(*(receive(ctx, e) for e in events[:5] + events[:5]))
    assert {a.outcome for a in again} == {"duplicate"}


async def test_a_message_alone_is_stored_as_before(ctx: PlatformContext, engine: Engine) -> None:
    answer = await receive(ctx, history(1)[0])
    assert answer.outcome == "accepted" and answer.event_id is not None
    assert stored(engine) == 1


async def test_a_failing_message_fails_alone(ctx: PlatformContext, engine: Engine) -> None:
    """One message the database refuses (here a NOT NULL column left empty) gets its
    error; its neighbours, a refused authorisation among them, get their own answers."""
    register(engine, "bank-a", org_code="BOCD")
    register_enterprises(engine, code(1))
    good = history(6)
    broken = loan_event(99, "loan_approved", 5, loan_no="KCT-9", raw_sha256=None)
    refused = loan_event(
        98, "consent_granted", 6, loan_no=None, credit_code=code(7),
        authorization=Authorization("BOCD", ("basic",), date(2099, 1, 1), "ab" * 32),
    )  # fmt: skip
    group = [*good[:3], broken, refused, *good[3:]]
    answers = await asyncio.gather(*(receive(ctx, e) for e in group), return_exceptions=True)
    assert isinstance(answers[3], StoreUnavailable)
    assert isinstance(answers[4], Stored) and answers[4].outcome == "rejected"
    kept = [a for n, a in enumerate(answers) if n not in (3, 4)]
    assert all(isinstance(a, Stored) and a.outcome == "accepted" for a in kept)
    assert stored(engine) == 6 and stored(engine, platform_dead_letters) == 1


async def test_a_failed_commit_answers_no_one_accepted(
    ctx: PlatformContext, async_engine: AsyncEngine, engine: Engine
) -> None:
    """The group written, then its commit refused (the server went away): every
    sender of the group hears "retry later", and nothing is kept."""

    def lost(conn: object) -> None:
        raise OperationalError("COMMIT", {}, Exception("the server went away"))

    event.listen(async_engine.sync_engine, "commit", lost)
    answers = await asyncio.gather(*(receive(ctx, e) for e in history(12)), return_exceptions=True)
    event.remove(async_engine.sync_engine, "commit", lost)
    assert all(isinstance(a, StoreUnavailable) for a in answers)
    assert stored(engine) == 0
    answers = await asyncio.gather(*(receive(ctx, e) for e in history(12)))
    assert {a.outcome for a in answers} == {"accepted"}  # the platforms' retries are stored
