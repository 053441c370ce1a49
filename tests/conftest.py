"""Test fixtures: real PostgreSQL and Redis, fresh databases per test.

The credit store runs on both SQLite and PostgreSQL: tests that take the
`store_url` fixture run once on each.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from sqlalchemy import Engine, create_engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.db import make_sync_engine
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from testkit.builders import ndjson, registration
from testkit.clients import ISSUER, ClientKey, register
from testkit.services import (
    Postgres,
    RedisServer,
    migrated_postgres,
    redis_server,
)

for name in (
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "DATABASE_URL",
    "PROMETHEUS_MULTIPROC_DIR",
):
    os.environ.pop(name, None)
# Settings come from each test alone; what tells the tests where to keep their
# artefacts is no setting, and stays.
_TEST_OPTIONS = frozenset({"XYD_SHOTS", "XYD_TEST_ARTIFACTS"})
for name in list(os.environ):
    if name.startswith("XYD_") and name not in _TEST_OPTIONS:
        del os.environ[name]

_TEMPLATE = "xyd_template"
_counter = itertools.count()
_TESTS = Path(__file__).resolve().parent
# Whole directories `make test-fast` leaves out, by the marker it deselects.
_MARKED_DIRS = {"fuzz": "fuzz", "faults": "faults", "loadtests": "load", "cluster": "cluster"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        top = item.path.relative_to(_TESTS).parts[0]
        if top in _MARKED_DIRS:
            item.add_marker(_MARKED_DIRS[top])


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    with migrated_postgres(_TEMPLATE) as server:
        yield server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def rds(redis_srv: RedisServer) -> AsyncIterator[Redis]:
    """A client of the shared Redis, emptied for this test."""
    client = Redis.from_url(redis_srv.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "xyd.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def fresh_pg_database(pg: Postgres) -> str:
    return pg.copy(_TEMPLATE, f"xyd_test_{os.getpid()}_{next(_counter)}")


def store_at(kind: str, request: pytest.FixtureRequest) -> str:
    """A freshly migrated, empty credit store: "sqlite" or "postgresql"."""
    if kind == "postgresql":
        return fresh_pg_database(request.getfixturevalue("pg"))
    template: Path = request.getfixturevalue("sqlite_template")
    target = request.getfixturevalue("tmp_path") / "xyd.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A freshly migrated, empty credit store on each supported database."""
    return store_at(request.param, request)


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / ".xyd",
        database_url=store_url,
        pii_key="test-pii-key",  # type: ignore[arg-type]
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_sync_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def id_settings(
    request: pytest.FixtureRequest, store_url: str, settings: Settings, engine: Engine
) -> Settings:
    """The gateway's settings with one registered enterprise. On SQLite the embedded
    mode (jti and denylist in the database); on PostgreSQL production's, with Redis."""
    settings.public_base_url = ISSUER
    settings.key_activation_delay_s = 0
    if store_url.startswith("postgresql"):
        server: RedisServer = request.getfixturevalue("redis_srv")
        settings.redis_url = server.url
        redis.Redis.from_url(server.url).flushall()
    Ingestor(engine, "registration", b"test-pii-key", 10).run(
        read_ndjson(ndjson(registration(1)).splitlines()), "test"
    )
    return settings


@pytest.fixture
def app_client(id_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(id_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def bank(engine: Engine) -> ClientKey:
    return register(engine, "bank-a", org_code="BOCD")
