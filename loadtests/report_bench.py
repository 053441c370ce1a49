"""Credit reports on PostgreSQL: cold builds at scale, and the warm path through every gate.

    .venv/bin/python -m loadtests.report_bench --enterprises 1000000 [--url postgresql+psycopg://...]

Seeds the store when it is empty (the demo data set), then:

- cold: `ReportService.full_report` for random enterprises with the cache
  empty (two indexed queries, publication rules, the score and its four
  quarterly recomputations): p50/p95/p99;
- warm: `GET /v1/enterprises/{code}/credit-report` in process (ASGI, no
  network) with a real token, consent, rate limit (Redis when `--redis`),
  signature and committed audit entry on every request: p50/p99 and
  requests/s on one event loop. Issue 8's `make bench` measures over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp

import httpx
from sqlalchemy import create_engine, func, select, text

from gateway.app import create_app
from gateway.db import make_sync_engine
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.migrate import upgrade
from gateway.store.tables import enterprises
from testkit.clients import ISSUER, register
from testkit.services import postgres_server, redis_server
from xyd_demo.seed import seed_demo


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with postgres_server() as server:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        yield server.url("bench")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100)
    return (
        f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p95 {cut[94] * 1000:6.2f} ms  "
        f"p99 {cut[98] * 1000:6.2f} ms  (n={len(ordered)})"
    )


async def measure(settings: Settings, codes: list[str], cold: int, warm: int) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = state_of(app)
        service, engine = state.reports, state.engine
        samples = []
        for code in random.sample(codes, min(cold, len(codes))):
            service.cache.local.clear()
            async with engine.connect() as conn:
                version = (
                    await conn.execute(
                        select(enterprises.c.data_version).where(enterprises.c.credit_code == code)
                    )
                ).scalar_one()
            started = time.perf_counter()
            await service.full_report(engine, code, version, datetime.now(UTC))
            samples.append(time.perf_counter() - started)
        print(f"cold build   {percentiles(samples)}")

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            sync_engine = make_sync_engine(settings)
            bank = register(sync_engine, "bench-bank", org_code="BENCH")
            sync_engine.dispose()
            token = (await client.post("/oauth/token", data=bank.form())).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            code = codes[0]
            consent = (
                await client.post(
                    "/v1/consents",
                    headers=auth,
                    json={
                        "credit_code": code, "grantee": "BENCH", "purpose": "credit_review",
                        "scopes": ["basic", "penalties", "lists", "tax", "judicial"],
                        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                        "evidence": {"document_sha256": "ab" * 32, "signer": "法人",
                                     "channel": "direct"},
                    },
                )
            ).json()  # fmt: skip
            headers = {**auth, "Consent-Id": consent["id"]}
            url = f"/v1/enterprises/{code}/credit-report"
            samples = []
            begun = time.perf_counter()
            for _ in range(warm):
                started = time.perf_counter()
                answer = await client.get(url, headers=headers)
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            total = time.perf_counter() - begun
        print(f"warm request {percentiles(samples)}  {warm / total:7.0f} req/s (one loop)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--cold", type=int, default=500)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--redis", action="store_true", help="rate limits in a real Redis")
    args = parser.parse_args()
    with database(args.url) as url, contextlib.ExitStack() as stack:
        state = Path(mkdtemp(prefix="xyd-bench-"))
        settings = Settings(
            database_url=url, pii_key="bench", state_dir=state, public_base_url=ISSUER,
            key_activation_delay_s=0,
        )  # fmt: skip
        # One plan big enough that the benchmark measures the gate, not refusals.
        config = state / "config"
        shutil.copytree(settings.config_dir, config)
        (config / "rates.yaml").write_text(
            (config / "rates.yaml").read_text()
            .replace("enterprise_reports_per_day: 100", "enterprise_reports_per_day: 10000000")
            .replace("enterprise_reports_per_bank_per_day: 20",
                     "enterprise_reports_per_bank_per_day: 10000000")
            .replace("rate_per_s: 20\n    burst: 40\n    reports_per_day: 5000",
                     "rate_per_s: 100000\n    burst: 100000\n    reports_per_day: 10000000")
        )  # fmt: skip
        settings.config_dir = config
        if args.redis:
            settings.redis_url = stack.enter_context(redis_server()).url
        engine = make_sync_engine(settings)
        upgrade(engine)
        with engine.connect() as conn:
            present = conn.execute(select(func.count()).select_from(enterprises)).scalar_one()
        if present == 0:
            started = time.perf_counter()
            seed_demo(engine, b"bench", enterprises=args.enterprises, seed=7, out_dir=state)
            print(f"seeded {args.enterprises} enterprises in {time.perf_counter() - started:.0f} s")
        with engine.connect() as conn:
            codes = list(
                conn.execute(
                    select(enterprises.c.credit_code).order_by(func.random()).limit(args.cold)
                ).scalars()
            )
        engine.dispose()
        asyncio.run(measure(settings, codes, args.cold, args.warm))


if __name__ == "__main__":
    main()
