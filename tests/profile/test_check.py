"""The profile refuses with every violation at once: `check()`, the app's
lifespan, `xyd check-config` and `xyd serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as cli
from gateway.profile.check import ProfileRefused, check, enforce
from gateway.settings import Settings
from testkit.clients import register
from testkit.services import RedisServer, free_port
from tests.conftest import store_at
from tests.profile.builders import production_settings


@pytest.fixture
def persistent_redis(redis_srv: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_srv.url)
    client.config_set("appendonly", "yes")
    yield redis_srv.url
    client.config_set("appendonly", "no")
    client.close()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    return store_at("postgresql", request)


def test_a_fully_configured_production_passes_on_real_servers(
    tmp_path: Path, pg_url: str, persistent_redis: str
) -> None:
    settings = production_settings(tmp_path, database_url=pg_url, redis_url=persistent_redis)
    found = check(settings)
    assert (found.violations, found.warnings) == ([], [])
    enforce(settings)


def test_every_violation_is_listed_at_once(
    tmp_path: Path, pg_url: str, redis_srv: RedisServer
) -> None:
    engine = create_engine(pg_url)
    register(engine, "demo-bank", org_code="BOCD")
    engine.dispose()
    settings = production_settings(
        tmp_path, database_url=pg_url, redis_url=redis_srv.url, public_docs=None, pii_key_file=None
    )
    with pytest.raises(ProfileRefused) as refused:
        enforce(settings)
    named = [v.split(":", 1)[0] for v in refused.value.violations]
    assert named == [
        "XYD_PII_KEY_FILE",
        "XYD_PUBLIC_DOCS",
        "XYD_DATABASE_URL",  # the demo client
        "XYD_REDIS_URL",  # appendonly no
    ]
    for violation in refused.value.violations:
        assert f"\n  {violation}" in str(refused.value)


def test_servers_that_cannot_be_asked_are_warnings_not_refusals(tmp_path: Path) -> None:
    port = free_port()
    settings = production_settings(
        tmp_path,
        database_url=f"postgresql+psycopg://xyd@127.0.0.1:{port}/xyd",
        redis_url=f"redis://127.0.0.1:{port}/0",
    )
    found = check(settings)
    assert found.violations == []
    assert [w.split(":", 1)[0] for w in found.warnings] == ["XYD_DATABASE_URL", "XYD_REDIS_URL"]
    assert all("not checked" in w for w in found.warnings)


def test_the_demo_profile_checks_nothing(tmp_path: Path) -> None:
    enforce(Settings(state_dir=tmp_path))


def test_the_apps_lifespan_refuses_to_start(tmp_path: Path) -> None:
    settings = production_settings(tmp_path, database_url="", redis_url=None)
    with pytest.raises(ProfileRefused) as refused, TestClient(create_app(settings)):
        pytest.fail("the app started")
    assert [v.split(":", 1)[0] for v in refused.value.violations] == [
        "XYD_DATABASE_URL",
        "XYD_REDIS_URL",
    ]


def test_an_unreadable_redis_url_is_a_violation_naming_it(tmp_path: Path) -> None:
    settings = production_settings(
        tmp_path, database_url="", redis_url="redis+sentinel://s1:26379,s2/xyd"
    )
    refused = [v for v in check(settings).violations if v.startswith("XYD_REDIS_URL")]
    assert len(refused) == 1 and "'s2' is not HOST:PORT" in refused[0], refused


def _env(settings: Settings) -> dict[str, str]:
    """The settings as the XYD_ environment the CLI reads."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if hasattr(getattr(settings, name), "get_secret_value"):
            value = getattr(settings, name).get_secret_value()
        if isinstance(value, list):
            value = ",".join(value) if name == "consent_channels" else json.dumps(value)
        env[f"XYD_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_the_cli_prints_each_violation_on_its_own_line(tmp_path: Path, command: str) -> None:
    unsafe = production_settings(
        tmp_path, database_url="", redis_url=None, allow_client_secret_basic=True
    )
    answer = CliRunner().invoke(cli, [command], env=_env(unsafe))
    assert answer.exit_code == 2, answer.output
    lines = answer.output.splitlines()
    assert [line.split(":", 2)[1].strip() for line in lines] == [
        "XYD_DATABASE_URL",
        "XYD_REDIS_URL",
        "XYD_ALLOW_CLIENT_SECRET_BASIC",
    ]
    assert all(line.startswith("error: ") for line in lines)


def test_check_config_says_ok(tmp_path: Path, pg_url: str, persistent_redis: str) -> None:
    safe = production_settings(tmp_path, database_url=pg_url, redis_url=persistent_redis)
    answer = CliRunner().invoke(cli, ["check-config"], env=_env(safe))
    assert answer.exit_code == 0, answer.output
    assert answer.output == "ok (production profile)\n"
