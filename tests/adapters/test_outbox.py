"""The outbox: at least once, with back-off, and nothing lost across restarts."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from gateway.db import make_async_engine
from gateway.outbox import backoff_s, deliver_due, enqueue
from gateway.settings import Settings
from gateway.store.tables import outbox


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))


async def test_delivered_once_retried_on_failure_and_kept_across_restarts(
    settings: Settings, engine: Engine
) -> None:
    with engine.begin() as conn:
        first = enqueue(conn, "kechuangtong", "risk_alert", {"alertId": "a1"})
        enqueue(conn, "nowhere", "risk_alert", {"alertId": "a2"})
    sent: list[dict[str, Any]] = []
    failures = [RuntimeError("callback answered 503")]

    async def notify(kind: str, payload: dict[str, Any]) -> None:
        if failures:
            raise failures.pop()
        sent.append({"kind": kind, **payload})

    async_engine = make_async_engine(settings)
    assert await deliver_due(async_engine, {"kechuangtong": notify}) == 0
    await async_engine.dispose()
    failed = rows(engine)
    assert [r.attempts for r in failed] == [1, 1]
    assert all(r.delivered_at is None for r in failed)
    assert "503" in failed[0].last_error
    assert "no notifier" in failed[1].last_error
    assert all(
        (r.next_attempt_at if r.next_attempt_at.tzinfo else r.next_attempt_at.replace(tzinfo=UTC))
        > datetime.now(UTC)
        for r in failed
    )
    # Not due yet: a new process (a restart) finds them and waits.
    restarted = make_async_engine(settings)
    assert await deliver_due(restarted, {"kechuangtong": notify}) == 0
    with engine.begin() as conn:
        conn.execute(update(outbox).values(next_attempt_at=datetime.now(UTC)))
    assert await deliver_due(restarted, {"kechuangtong": notify}) == 1
    assert await deliver_due(restarted, {"kechuangtong": notify}) == 0
    await restarted.dispose()
    assert sent == [{"kind": "risk_alert", "alertId": "a1"}]
    done = rows(engine)
    assert done[0].id == first
    assert done[0].delivered_at is not None
    assert done[0].attempts == 2
    assert done[1].delivered_at is None  # no notifier: kept, never dropped


def test_backoff_doubles_with_bounded_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_s(n, rng) for n in range(1, 14)]
    for n, delay in enumerate(delays, start=1):
        base = min(3600.0, 2.0 * 2 ** (n - 1))
        assert base <= delay <= base * 1.2


def test_only_platforms_with_somewhere_to_deliver_are_notified() -> None:
    from adapters.config import PlatformConfig
    from adapters.registry import check_block, notified_platforms

    def checked(**blocks: dict[str, Any]) -> dict[str, PlatformConfig]:
        return {key.replace("_", "-"): check_block(key, block) for key, block in blocks.items()}

    kct = {"enabled": True, "secret_file": "s", "callback_url": "https://kct.example/risk"}
    config = checked(kechuangtong=kct, nongdaitong={"enabled": False})
    assert notified_platforms(config) == frozenset({"kechuangtong"})
    assert notified_platforms(checked(kechuangtong={**kct, "callback_url": None})) == set()
    assert notified_platforms(checked(kechuangtong={**kct, "enabled": False})) == set()
