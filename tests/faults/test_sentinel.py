"""Redis under Sentinel: the gateway finds the master through the sentinels,
and after a failover (handed over, or the master killed) it works against the
promoted replica without a restart. During the switch it fails closed: 503
problems, never a 500."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from httpx import Response
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.identity.sync_mirror import mirror_client_state
from gateway.profile.check import check
from gateway.redisconn import (
    MASTER_RECHECK_S,
    DirectTarget,
    RedisUrlError,
    SentinelTarget,
    make_sync_redis,
    parse_redis_url,
)
from testkit.clients import ClientKey, register
from testkit.sentinel import SentinelSet, sentinel_set
from tests.faults.conftest import gateway_settings, seed_enterprises
from tests.faults.test_redis import REPORT
from tests.identity.test_access_tokens import assert_401, call
from tests.identity.test_token_flow import get_token
from tests.profile.builders import production_settings
from tests.reports.test_reports_api import bearer, consent

SWITCH_S = 30.0


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    with sentinel_set() as found:
        yield found


def day_counts(sentinels: SentinelSet) -> dict[bytes, int]:
    """The limiter's daily report counts, as the current master holds them."""
    with sentinels.master() as master:
        keys = [k for k in master.keys("xyd:rl:day:*")]
        return {k: int(v) for k, v in zip(keys, master.mget(keys), strict=True) if v}


def test_urls_are_read_once_and_bad_ones_name_the_setting() -> None:
    assert parse_redis_url("redis://127.0.0.1:6379/0") == DirectTarget("redis://127.0.0.1:6379/0")
    assert parse_redis_url("redis+sentinel://:s%40cret@a:26379,b:26380,[::1]:26381/main/3") == (
        SentinelTarget((("a", 26379), ("b", 26380), ("::1", 26381)), "main", 3, "s@cret")
    )
    assert parse_redis_url("redis+sentinel://a:1/m").db == 0  # type: ignore[union-attr]
    for bad in [
        "redis+sentinel://a:1,b/main",  # a sentinel without its port
        "redis+sentinel://a:1",  # no master name
        "redis+sentinel://a:1/main/zero",
        "redis+sentinel://a:1/main/0/extra",
        "redis+sentinel://a:99999/main",
        "sentinel://a:1/main",
        "127.0.0.1:6379",
    ]:
        with pytest.raises(RedisUrlError, match="XYD_REDIS_URL") as refused:
            parse_redis_url(bad)
        assert "redis+sentinel://[:PASSWORD@]" in str(refused.value)
    with pytest.raises(RedisUrlError) as refused:
        parse_redis_url("redis+sentinel://:hunter2@a:1")
    assert "hunter2" not in str(refused.value)


def test_a_bad_sentinel_url_refuses_the_start(pg_url: str, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, pg_url, redis_url="redis+sentinel://127.0.0.1/xyd")
    with (
        pytest.raises(RedisUrlError, match="XYD_REDIS_URL"),
        TestClient(create_app(settings)),
    ):
        pytest.fail("the app started")


def test_the_profile_check_asks_the_master_through_the_sentinels(
    sentinels: SentinelSet, pg_url: str, tmp_path: Path
) -> None:
    """Only the master's append-only file matters: a replica's says nothing of
    what the set keeps."""
    settings = production_settings(tmp_path, database_url=pg_url, redis_url=sentinels.url)

    def redis_findings() -> list[str]:
        found = check(settings)
        return [v for v in found.violations + found.warnings if "XYD_REDIS_URL" in v]

    replica = next(port for port in sentinels.redis_ports if port != sentinels.master_port())
    with redis.Redis(port=replica) as client:
        client.config_set("appendonly", "no")
    assert redis_findings() == []
    with sentinels.master() as master:
        master.config_set("appendonly", "no")
        try:
            assert ["append-only" in v for v in redis_findings()] == [True]
        finally:
            master.config_set("appendonly", "yes")
    with redis.Redis(port=replica) as client:
        client.config_set("appendonly", "yes")
    client = make_sync_redis(settings, timeout=1)
    assert client is not None
    with client:
        assert client.role()[0] == b"master"


def _switch(
    client: TestClient,
    token: str,
    sentinels: SentinelSet,
    start: Callable[[], None],
) -> list[Response]:
    """Start a switch and keep calling until the new master is named and five
    calls in a row were answered; every answer on the way."""
    old = sentinels.master_port()
    start()
    answers: list[Response] = []
    deadline = time.monotonic() + SWITCH_S
    switched_at: float | None = None
    while True:
        assert time.monotonic() < deadline, [a.status_code for a in answers]
        answers.append(call(client, token))
        if switched_at is None:
            with contextlib.suppress(redis.RedisError):
                if sentinels.master_port() != old:
                    switched_at = time.monotonic()
        # The pool follows the sentinels within MASTER_RECHECK_S of the switch.
        followed = switched_at is not None and time.monotonic() > switched_at + MASTER_RECHECK_S
        if followed and [a.status_code for a in answers[-5:]] == [200] * 5:
            return answers
        time.sleep(0.05)  # under the plan's 20 a second


def _assert_fail_closed(answers: list[Response]) -> None:
    for answer in answers:
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 503:
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 503


@pytest.mark.parametrize("how", ["failover", "kill_master"])
def test_the_gateway_follows_the_master_across_a_switch(
    how: str, sentinels: SentinelSet, pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    with sentinels.master() as master:
        master.flushall()  # the set outlives a test; its clients and counts do not
    seed_enterprises(pg_engine, 1)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(
        tmp_path, pg_url, redis_url=sentinels.url, rate_limit_redis_down="fail_closed",
        report_cache_entries=0, breaker_open_s=0.5, readiness_timeout_s=5.0,
    )  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        headers = {**auth, "Consent-Id": consent(client, auth)["id"]}
        assert client.get(REPORT, headers=headers).status_code == 200
        counted = day_counts(sentinels)  # counted in Redis, through the sentinels
        assert len(counted) >= 3 and set(counted.values()) == {1}, counted
        with sentinels.master() as master:
            assert master.keys("xyd:report:*")

        token = get_token(client, bank)
        start = sentinels.start_failover if how == "failover" else sentinels.kill_master
        answers = _switch(client, token, sentinels, start)
        _assert_fail_closed(answers)
        if how == "kill_master":  # the sentinels take a second to agree: refused meanwhile
            assert any(a.status_code == 503 for a in answers)

        # The limiter counts on the new master, from where the old one left
        # off, and the app was not restarted.
        assert day_counts(sentinels) == counted
        assert client.get(REPORT, headers=headers).status_code == 200
        assert day_counts(sentinels) == {k: v + 1 for k, v in counted.items()}
        assert client.get("/readyz").status_code == 200

        # The denylist: a revocation through the app, a disabled client through
        # the CLI's mirror, both on the new master and both refused.
        revoked = get_token(client, bank)
        assert call(client, revoked).status_code == 200
        answer = client.post("/oauth/revoke", data={**bank.form(), "token": revoked})
        assert answer.status_code == 200, answer.text
        assert_401(call(client, revoked))
        other: ClientKey = register(pg_engine, "bank-b", org_code="BOCE")
        other_token = get_token(client, other)
        assert call(client, other_token).status_code == 200
        mirror_client_state(settings, other.client_id, disabled=True)
        assert_401(call(client, other_token), "disabled")
