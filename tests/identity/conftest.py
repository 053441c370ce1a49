from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from tests.builders import ndjson, registration
from tests.conftest import fresh_pg_database
from tests.identity.kit import ISSUER, ClientKey, register
from tests.services import RedisServer


@pytest.fixture(params=["embedded", "production"])
def id_mode(request: pytest.FixtureRequest) -> str:
    """Embedded: SQLite, jti and denylist in the database. Production: PostgreSQL + Redis."""
    return str(request.param)


@pytest.fixture
def store_url(id_mode: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if id_mode == "production":
        return fresh_pg_database(request.getfixturevalue("pg"))
    target = tmp_path / "xyd.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), target)
    return f"sqlite:///{target}"


@pytest.fixture
def id_settings(
    id_mode: str, request: pytest.FixtureRequest, settings: Settings, engine: Engine
) -> Settings:
    settings.public_base_url = ISSUER
    settings.key_activation_delay_s = 0
    if id_mode == "production":
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
