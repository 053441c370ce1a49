"""Database engines, and the connection a batch-at-a-time worker holds (`Held`).

One URL in settings; the sync engine serves the CLI, migrations and bulk
ingestion, the async engine serves the HTTP app. Both are created by their
owner (the CLI command, the app's lifespan), never at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.private_files import private_dir, private_sqlite
from gateway.settings import Settings

T = TypeVar("T")


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _async_url(url: str) -> str:
    parsed = make_url(_sync_url(url))
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the demo's readers run beside an ingest; synchronous=FULL keeps
    # "committed means on disk", which the gateway promises before it answers.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A pull platform's page (hundreds of events) holds the write lock for a
    # few seconds in one transaction; other writers wait rather than fail.
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _private_store(settings: Settings, url: str) -> None:
    private_dir(settings.state_dir)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_sqlite(Path(database))


def make_sync_engine(settings: Settings) -> Engine:
    url = _sync_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        _private_store(settings, url)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No server-side prepared statements for bulk work: after five runs psycopg
    # prepares, and PostgreSQL's generic plan for "= ANY(batch of ids)" scans
    # the whole department (40x slower than the custom plan, measured).
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        connect_args={"prepare_threshold": None},
    )


def make_async_engine(settings: Settings) -> AsyncEngine:
    url = _async_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        _private_store(settings, url)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        connect_args={"connect_timeout": max(1, int(settings.readiness_timeout_s))},
    )


class HeldConnection:
    """A connection kept checked out by work that runs one batch at a time (a
    `Coalescer`'s): no pool checkout and no liveness ping per batch, which on the
    request path cost a round trip each. One that failed is dropped; the next
    batch checks out another, which the pool pings first. (Only SQLite's side
    uses it, which has no server to restart.)

    `autocommit` for reads that need no transaction around them."""

    def __init__(self, engine: Engine, *, autocommit: bool = False) -> None:
        self.engine = engine
        self.autocommit = autocommit
        self._conn: Connection | None = None

    def run(self, work: Callable[[Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            conn = self.engine.connect()
            if self.autocommit:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        try:
            return work(conn)
        except BaseException:
            # Its state is unknown (a broken socket, a transaction left open):
            # never reuse it.
            self._conn = None
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class HeldAsyncPg:
    """`HeldConnection` for PostgreSQL on psycopg's own asyncio connection: a
    batch's round trips run on the event loop, with no worker thread to hand
    over to and back from. Driver errors come out as SQLAlchemy's, so they map
    to answers like any other store error. Autocommit: no BEGIN round trip
    before a read or a write that is one statement.

    Before each batch the held connection is checked without a round trip
    (`_idle_and_open`) and replaced once if the server dropped it, so the first
    request after a PostgreSQL restart is answered rather than failed."""

    def __init__(self, engine: Engine) -> None:
        # The dialect's own reading of the URL: a multi-host one
        # (?host=H1:P1&host=H2:P2&target_session_attrs=read-write) becomes
        # libpq's host=H1,H2 port=P1,P2, which a rendered URL would not.
        _args, params = engine.dialect.create_connect_args(engine.url)
        self.params: dict[str, Any] = dict(params)
        self.params.pop("context", None)  # SQLAlchemy's type adapters, not ours
        self.params.setdefault("connect_timeout", 5)
        self._conn: Any = None

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        import psycopg

        conn = self._conn
        if conn is not None and not _idle_and_open(conn):
            # The server went away while it was idle (a restart, an admin's
            # kill): replace it before use instead of failing this batch.
            self._conn = None
            with contextlib.suppress(Exception):
                await conn.close()
            conn = None
        if conn is None:
            try:
                # Prepared on first use: the audit batch's statement and the
                # consent reads are a handful of texts run for every request, and
                # parsing and planning each again cost PostgreSQL ~35 µs a batch.
                conn = await psycopg.AsyncConnection.connect(
                    **self.params,
                    autocommit=True,
                    prepare_threshold=0,
                )
            except psycopg.Error as exc:
                raise DBAPIError.instance(None, None, exc, psycopg.Error, True) from exc
            self._conn = conn
        try:
            return await work(conn)
        except BaseException as exc:
            self._conn = None
            with contextlib.suppress(Exception):
                await conn.close()
            if isinstance(exc, psycopg.Error):
                raise DBAPIError.instance(None, None, exc, psycopg.Error, conn.broken) from exc
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _idle_and_open(conn: Any) -> bool:
    """Whether a held psycopg connection can still be used, without a round trip.

    Idle between batches, it has nothing to read: a server that shut down or
    killed the backend leaves its error message, or end of file, in the socket,
    and a closed socket reads as ready too. NOTIFY is never used on it."""
    if conn.closed or conn.broken:
        return False
    # poll, not select: a busy worker's descriptors run past select's 1024.
    poller = select.poll()
    try:
        poller.register(conn.fileno(), select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


class Held:
    """The store as batch-at-a-time work on the request path holds it: on
    PostgreSQL psycopg's asyncio connection (`HeldAsyncPg`), elsewhere a pooled
    connection used from a worker thread, since SQLite's driver blocks.

    On PostgreSQL the connection is in autocommit mode: each statement commits
    by itself, and the work here is reads or a single statement. `autocommit`
    is the SQLite side's; without it, work there opens its own transactions."""

    def __init__(self, engine: Engine, *, autocommit: bool = False) -> None:
        on_pg = engine.dialect.name == "postgresql"
        self.pg = HeldAsyncPg(engine) if on_pg else None
        self.sync = None if on_pg else HeldConnection(engine, autocommit=autocommit)

    async def run(
        self, on_pg: Callable[[Any], Awaitable[T]], elsewhere: Callable[[Connection], T]
    ) -> T:
        if self.pg is not None:
            return await self.pg.run(on_pg)
        assert self.sync is not None
        return await asyncio.to_thread(self.sync.run, elsewhere)

    async def close(self) -> None:
        if self.pg is not None:
            await self.pg.close()
        if self.sync is not None:
            self.sync.close()
