"""The audit checkpoints' export: every process signs and stores, only the
`audit-export` lease's holder gives them to the witness, each once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.sealer import Sealer
from gateway.audit.service import AuditWriter
from gateway.db import make_async_engine
from gateway.leases import Lease
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints
from tests.security.test_audit_tamper import Keys, event, ring_of

EVERY = 5


@pytest.fixture
async def aengine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(settings)
    yield engine
    await engine.dispose()


def witnessed(settings: Settings) -> list[int]:
    path = Path(settings.audit_witness_target)
    if not path.exists():
        return []
    return [json.loads(line)["seq"] for line in path.read_text().splitlines()]


def unexported(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(audit_checkpoints.c.exported_at.is_(None))
        return int(conn.execute(query).scalar_one())


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        query = select(audit_checkpoints.c.seq).order_by(audit_checkpoints.c.seq)
        return list(conn.execute(query).scalars())


async def test_only_the_export_lease_holder_exports_each_checkpoint_once(
    settings: Settings, engine: Engine, aengine: AsyncEngine
) -> None:
    settings.audit_checkpoint_every = EVERY
    keys = Keys(ring_of(engine, settings))
    hosts = []
    for name in ("host-a", "host-b"):
        sealer = Sealer.configured(settings, engine, keys)  # type: ignore[arg-type]
        sealer.lease = Lease(aengine, "audit-export", name, 1.5)
        writer = AuditWriter(engine, keys, checkpoint_every=EVERY, sealer=sealer)  # type: ignore[arg-type]
        hosts.append((sealer, writer))
    (a, a_writer), (b, b_writer) = hosts
    assert a.lease is not None and b.lease is not None
    assert await a.lease.acquire()
    try:
        for i in range(12):
            await (a_writer if i % 2 else b_writer).append(event(i))
        await b.round()  # b signs its head and stores it, but does not export
        assert witnessed(settings) == [] and unexported(engine) == len(stored(engine)) > 2
        await a.round()
        assert witnessed(settings) == stored(engine) and unexported(engine) == 0
        await a.round()  # nothing new: nothing again
        assert witnessed(settings) == stored(engine)

        await a.lease.release()
        assert await b.lease.acquire()
        for i in range(12, 20):
            await a_writer.append(event(i))
        await a.round()  # a signs its new head; b, the holder now, exports it
        await b.round()
        assert sorted(witnessed(settings)) == stored(engine)
        assert len(set(witnessed(settings))) == len(witnessed(settings))
    finally:
        await a_writer.close()
        await b_writer.close()


async def test_a_process_without_background_work_never_exports(
    settings: Settings, engine: Engine
) -> None:
    keys = Keys(ring_of(engine, settings))
    sealer = Sealer.configured(settings, engine, keys)  # type: ignore[arg-type]
    sealer.exports = False
    writer = AuditWriter(engine, keys, checkpoint_every=EVERY, sealer=sealer)  # type: ignore[arg-type]
    try:
        for i in range(7):
            await writer.append(event(i))
        await sealer.round()
    finally:
        await writer.close()
    assert witnessed(settings) == [] and unexported(engine) == len(stored(engine)) > 0
