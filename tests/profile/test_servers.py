"""The two rules that ask a server, on the real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine, create_engine

from gateway.dashboard.accounts import create_user
from gateway.identity.clients import set_disabled
from gateway.profile.servers import (
    DEMO_CLIENT_IDS,
    DEMO_USER_NAMES,
    NotChecked,
    demo_accounts,
    redis_persistence,
)
from testkit.clients import register
from testkit.services import RedisServer
from tests.conftest import store_at
from xyd_demo.clients import DEMO_CLIENTS, LENDING_BANKS
from xyd_demo.repairs import DEMO_REVIEWER
from xyd_demo.users import DEMO_OFFICER


@pytest.fixture
def pg_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = create_engine(store_at("postgresql", request))
    yield engine
    engine.dispose()


@pytest.fixture
def sync_redis(redis_srv: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_srv.url)
    yield client
    client.config_set("appendonly", "no")
    client.close()


def test_the_demo_ids_are_the_demo_kits() -> None:
    assert set(DEMO_CLIENT_IDS) == {c[0] for c in DEMO_CLIENTS} | {b[0] for b in LENDING_BANKS}
    assert set(DEMO_USER_NAMES) == {DEMO_OFFICER, DEMO_REVIEWER}


def test_a_store_without_demo_accounts_passes(pg_engine: Engine) -> None:
    register(pg_engine, "bank-a", org_code="BOCD")
    with pg_engine.connect() as conn:
        assert demo_accounts(conn) == []


def test_enabled_demo_clients_and_users_are_refused(pg_engine: Engine) -> None:
    register(pg_engine, "demo-bank", org_code="BOCD")
    register(pg_engine, "demo-risk-office", "risk_office")
    register(pg_engine, "demo-cdrcb", org_code="CDRCB")
    with pg_engine.begin() as conn:
        set_disabled(conn, "demo-cdrcb", True)  # disabled: it can no longer sign in
        create_user(conn, "demo-officer", "risk_officer", "a long enough password 1")
    with pg_engine.connect() as conn:
        clients, users = demo_accounts(conn)
    assert clients.startswith("XYD_DATABASE_URL: ")
    assert "demo-bank, demo-risk-office;" in clients
    assert "demo-cdrcb" not in clients
    assert "xyd clients disable" in clients
    assert "dashboard users demo-officer;" in users
    assert "xyd users disable" in users


def test_redis_without_an_append_only_file_is_refused(sync_redis: redis.Redis) -> None:
    sync_redis.config_set("appendonly", "no")
    message = redis_persistence(sync_redis)
    assert message is not None
    assert message.startswith("XYD_REDIS_URL: ")
    assert "appendonly" in message


def test_redis_with_an_append_only_file_passes(sync_redis: redis.Redis) -> None:
    sync_redis.config_set("appendonly", "yes")
    assert redis_persistence(sync_redis) is None


def test_a_refused_config_command_is_not_checked_and_says_why(
    redis_srv: RedisServer, sync_redis: redis.Redis
) -> None:
    # As a managed Redis forbids CONFIG: a user without it.
    sync_redis.acl_setuser(
        "no-config", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
        commands=["+@all", "-config"],
    )  # fmt: skip
    limited = redis.Redis.from_url(redis_srv.url.replace("://", "://no-config:pw@"))
    try:
        with pytest.raises(NotChecked, match=r"XYD_REDIS_URL: .*not checked: CONFIG GET refused"):
            redis_persistence(limited)
    finally:
        limited.close()
        sync_redis.acl_deluser("no-config")
