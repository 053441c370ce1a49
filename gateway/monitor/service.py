"""Running the monitor: `xyd monitor` workers (Redis), or inside the gateway (embedded)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import Engine

from gateway.metrics import MONITOR_CONSUMER_LAG, OPEN_ALERTS
from gateway.monitor import repository
from gateway.monitor.bus import EventBus, RedisStreamBus
from gateway.monitor.relay import mark_applied, recover, relay_once
from gateway.monitor.worker import MAX_DELIVERIES, Monitor
from policies.risk.base import SEVERITIES, Rule

log = logging.getLogger("xyd.monitor")
RELAY_EVERY_S = 1.0


def load_rules(config_dir: Path) -> list[Rule]:
    """The rules in config/risk_rules.yaml; a bad file raises ValueError naming the field."""
    from policies.risk.config import RiskRules, build_rules

    return build_rules(RiskRules.load(config_dir / "risk_rules.yaml"))


def _open_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return repository.open_counts(conn)


async def relay_forever(engine: Engine, bus: EventBus, stop: asyncio.Event) -> None:
    starting = True
    while not stop.is_set():
        try:
            await recover(engine, bus, starting=starting)
            starting = False
            await relay_once(engine, bus)
            await mark_applied(engine, bus)
            counts = await asyncio.to_thread(_open_counts, engine)
            for severity in SEVERITIES:
                OPEN_ALERTS.labels(severity).set(counts.get(severity, 0))
            if isinstance(bus, RedisStreamBus):
                lag = await bus.lag()
                if lag is not None:
                    MONITOR_CONSUMER_LAG.set(lag)
        except Exception:  # the relay must outlive a bad round (database or Redis away)
            log.exception("relay round failed")
        try:
            await asyncio.wait_for(stop.wait(), RELAY_EVERY_S)
        except TimeoutError:
            continue


async def run(engine: Engine, bus: EventBus, rules: list[Rule], consumer: str,
              stop: asyncio.Event, *, notified: frozenset[str],
              max_deliveries: int = MAX_DELIVERIES) -> None:  # fmt: skip
    """Relay committed events onto the bus and apply them, until `stop` is set;
    new alerts on the `notified` platforms' loans queue their notification."""
    monitor = Monitor(engine, rules, notified=notified, max_deliveries=max_deliveries)
    relay = asyncio.create_task(relay_forever(engine, bus, stop))
    try:
        while not stop.is_set():
            try:
                await monitor.run(bus, consumer, stop=stop)
            except Exception:  # e.g. Redis away: wait and go on, pending events stay
                log.exception("monitor round failed")
                await asyncio.sleep(1)
    finally:
        stop.set()
        await relay
