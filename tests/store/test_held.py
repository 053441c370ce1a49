"""The connection a batch-at-a-time worker keeps: reused while healthy, replaced after a failure."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import Held, HeldConnection


def backend_id(conn: Connection) -> object:
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return id(conn.connection.driver_connection)


def test_batches_share_one_connection_until_one_fails(engine: Engine) -> None:
    held = HeldConnection(engine, autocommit=True)
    first = held.run(backend_id)
    assert held.run(backend_id) == first
    with pytest.raises(SQLAlchemyError):
        held.run(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    # Its state after a failure is unknown: the next batch gets another one.
    assert held.run(backend_id) != first
    held.close()
    held.close()  # twice is harmless


def test_autocommit_reads_leave_no_transaction_open(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("transaction status is PostgreSQL's")
    held = HeldConnection(engine, autocommit=True)
    held.run(lambda conn: conn.execute(text("SELECT 1")).scalar_one())
    status = held.run(lambda conn: conn.connection.driver_connection.info.transaction_status.name)
    assert status == "IDLE"
    held.close()


async def test_held_store_reuses_its_connection_and_replaces_a_failed_one(engine: Engine) -> None:
    held = Held(engine, autocommit=True)

    async def pg_backend(pg: Any) -> object:
        cursor = await pg.execute("SELECT pg_backend_pid()")
        return (await cursor.fetchone())[0]

    async def pg_broken(pg: Any) -> object:
        return await pg.execute("SELECT * FROM no_such_table")

    first = await held.run(pg_backend, backend_id)
    assert await held.run(pg_backend, backend_id) == first
    # A driver error comes out as SQLAlchemy's (so it maps to an answer like any
    # other store error), and the connection is not used again.
    with pytest.raises(SQLAlchemyError):
        await held.run(pg_broken, lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    assert await held.run(pg_backend, backend_id) != first
    await held.close()
