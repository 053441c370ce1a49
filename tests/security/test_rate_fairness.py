"""One bank cannot lock the others out of an enterprise: each bank has its own
share of the enterprise's daily ceiling (issue 19, item 5)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from policies.rate import MemoryLimiter, RatePlan, RateRequest
from policies.rate_redis import RedisLimiter
from testkit.builders import code, register_enterprises
from testkit.clients import ISSUER, register
from testkit.services import RedisServer
from tests.reports.test_reports_api import URL, bearer, consent

PLAN = RatePlan(rate_per_s=1000, burst=1000, reports_per_day=1000)
SHARE, CEILING = 2, 5
CONFIG = Path(__file__).resolve().parents[2] / "config"
RATES = f"""
plans:
  roomy: {{rate_per_s: 1000, burst: 1000, reports_per_day: 1000}}
default_plan: roomy
enterprise_reports_per_day: {CEILING}
enterprise_reports_per_bank_per_day: {SHARE}
routes:
  "GET /v1/enterprises/{{credit_code}}/credit-report": {{cost: 1, reports: 1}}
"""


def report(bank: str, client_id: str | None = None) -> RateRequest:
    return RateRequest(
        client_id or f"client-of-{bank}",
        PLAN,
        cost=1,
        reports=1,
        enterprise_cap=CEILING,
        credit_code=code(1),
        bank=bank,
        bank_share=SHARE,
    )


async def test_a_flooding_bank_stops_at_its_share_in_redis_and_others_still_fetch(
    rds: Redis,
) -> None:
    limiter = RedisLimiter(rds)
    flood = [await limiter.check(report("org:FLOOD")) for _ in range(10)]
    assert [r.allowed for r in flood] == [True] * SHARE + [False] * (10 - SHARE)
    assert {r.refused for r in flood[SHARE:]} == {"bank_enterprise"}
    # Another client of the same bank shares its share.
    assert (await limiter.check(report("org:FLOOD", "second-client"))).refused == "bank_enterprise"
    # The others still have the ceiling less the flood's share.
    others = [await limiter.check(report(f"org:B{n}")) for n in range(CEILING - SHARE)]
    assert all(r.allowed for r in others)
    # The ceiling still holds for everyone together.
    assert (await limiter.check(report("org:LATE"))).refused == "enterprise"


def test_a_flooding_bank_stops_at_its_share_in_memory_and_others_still_fetch() -> None:
    limiter = MemoryLimiter()
    flood = [limiter.check_now(report("org:FLOOD")) for _ in range(10)]
    assert [r.allowed for r in flood] == [True] * SHARE + [False] * (10 - SHARE)
    assert {r.refused for r in flood[SHARE:]} == {"bank_enterprise"}
    assert all(limiter.check_now(report(f"org:B{n}")).allowed for n in range(CEILING - SHARE))
    assert limiter.check_now(report("org:LATE")).refused == "enterprise"


async def test_a_refund_gives_back_the_banks_share_too(rds: Redis) -> None:
    redis_limiter, memory = RedisLimiter(rds), MemoryLimiter()
    for check, refund in (
        (redis_limiter.check, redis_limiter.refund),
        (memory.check, memory.refund),
    ):
        charges = [(await check(report("org:A"))).charge for _ in range(SHARE)]
        assert (await check(report("org:A"))).refused == "bank_enterprise"
        charge = charges[-1]
        assert charge is not None
        await refund(charge)
        assert (await check(report("org:A"))).allowed


@pytest.fixture
def gateway(
    redis_srv: RedisServer, rds: Redis, settings: Settings, engine: Engine, tmp_path: Path
) -> Iterator[TestClient]:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    (config / "rates.yaml").write_text(RATES)
    settings.config_dir = config
    settings.redis_url = redis_srv.url
    settings.public_base_url = ISSUER
    settings.key_activation_delay_s = 0
    register_enterprises(engine, code(1))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_one_bank_flooding_an_enterprise_leaves_another_bank_able_to_fetch(
    gateway: TestClient, engine: Engine
) -> None:
    flooder = bearer(gateway, register(engine, "bank-flood", org_code="BOCD"))
    flood = {**flooder, "Consent-Id": consent(gateway, flooder)["id"]}
    answers = [gateway.get(URL, headers=flood).status_code for _ in range(CEILING + 3)]
    assert answers == [200] * SHARE + [429] * (CEILING + 3 - SHARE)
    refused = gateway.get(URL, headers=flood)
    assert refused.json()["limit"] == "bank_enterprise"
    assert '"bank_enterprise";q=2' in refused.headers["RateLimit-Policy"]

    other = bearer(gateway, register(engine, "bank-other", org_code="CCB-CD"))
    fetch = {**other, "Consent-Id": consent(gateway, other, grantee="CCB-CD")["id"]}
    assert gateway.get(URL, headers=fetch).status_code == 200
