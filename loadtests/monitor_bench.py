"""Monitor throughput: events/s from the Redis stream to committed alerts, all rules on.

    .venv/bin/python -m loadtests.monitor_bench --events 5000 [--workers 1]

Publishes a synthetic mix (loan lifecycles across platforms, overdue and
default, report queries, consent denials) to a throw-away Redis, then runs
monitor workers against a throw-away PostgreSQL until every event is applied.

Next to the rate it prints the CPU time per event of the workers (this
process) and of PostgreSQL: on a shared machine the rate moves with the
neighbours' load, the CPU figures much less.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import func, select

from gateway.db import make_sync_engine
from gateway.monitor.bus import RedisStreamBus
from gateway.monitor.service import load_rules
from gateway.monitor.worker import Monitor
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.tables import alerts, monitor_events
from loadtests.ingest_bench import Server, client_cpu_seconds, database
from policies.risk.base import MonitorEvent
from testkit.builders import code
from testkit.services import redis_server

CONFIG = Path(__file__).resolve().parents[1] / "config"
PLATFORMS = ("kechuangtong", "nongdaitong", "chuangfu-tianfu", "yingchuang", "tianfu-rongtong")
LIFECYCLE = ("application_submitted", "loan_approved", "loan_disbursed", "repayment_received",
             "repayment_overdue")  # fmt: skip


def synthetic(count: int, seed: int = 7) -> list[MonitorEvent]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    events: list[MonitorEvent] = []
    for n in range(count):
        at = start + timedelta(seconds=n * 30)
        sme = code(1 + rng.randrange(2000))
        roll = rng.random()
        if roll < 0.75:
            platform = rng.choice(PLATFORMS)
            kind = rng.choice(LIFECYCLE)
            events.append(MonitorEvent(
                f"loan:{platform}:b{n}", "loan", at, sme,
                {"platform": platform, "event_type": kind, "loan_no": f"L{n // 5}",
                 "bank_code": rng.choice(("BOCD", "CCB-CD", "ICBC-CD")),
                 "amount_fen": rng.randrange(10**6, 10**9),
                 "days_overdue": rng.choice((10, 35, 65, 95)) if kind == "repayment_overdue"
                 else None},
            ))  # fmt: skip
        elif roll < 0.95:
            events.append(MonitorEvent(
                f"query:b{n}", "query", at, sme,
                {"client_id": rng.choice(("bank-a", "bank-b", "bank-c")), "route": "report"},
            ))  # fmt: skip
        else:
            events.append(MonitorEvent(
                f"query:b{n}", "consent_denied", at, sme,
                {"client_id": "bank-c", "reason": "missing"},
            ))  # fmt: skip
    return events


async def measure(server: Server, redis_url: str, count: int, workers: int) -> None:
    settings = Settings(database_url=server.url, pii_key="bench")
    engine = make_sync_engine(settings)
    upgrade(engine)
    rules = load_rules(CONFIG)
    redis = Redis.from_url(redis_url)
    bus = RedisStreamBus(redis)
    await bus.publish(synthetic(count))
    stop = asyncio.Event()
    server_before, client_before = server.cpu_seconds(), client_cpu_seconds()
    started = time.perf_counter()
    runners = [
        asyncio.create_task(Monitor(engine, rules).run(bus, f"bench-{n}", stop=stop))
        for n in range(workers)
    ]
    while True:
        with engine.connect() as conn:
            applied = conn.execute(select(func.count()).select_from(monitor_events)).scalar_one()
        if applied >= count:
            break
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*runners)
    cpu = f"workers {(client_cpu_seconds() - client_before) * 1e6 / count:.0f}"
    server_after = server.cpu_seconds()
    if server_before is not None and server_after is not None:
        cpu += f", PostgreSQL {(server_after - server_before) * 1e6 / count:.0f}"
    with engine.connect() as conn:
        raised = conn.execute(select(func.count()).select_from(alerts)).scalar_one()
    print(f"{count} events, {workers} worker(s): {seconds:.1f} s = {count / seconds:.0f} events/s; "
          f"{raised} alerts; CPU µs/event: {cpu}")  # fmt: skip
    await redis.aclose()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with database(None) as server, redis_server() as redis:
        asyncio.run(measure(server, redis.url, args.events, args.workers))


if __name__ == "__main__":
    main()
