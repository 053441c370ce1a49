"""Running the monitor: `xyd monitor` workers (Redis), or inside the gateway (embedded)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import Engine

from gateway.monitor.bus import EventBus
from gateway.monitor.relay import relay_once
from gateway.monitor.worker import Monitor
from policies.risk.base import Rule

log = logging.getLogger("xyd.monitor")
RELAY_EVERY_S = 1.0


def load_rules(config_dir: Path) -> list[Rule]:
    """The rules in config/risk_rules.yaml; a bad file raises ValueError naming the field."""
    from policies.risk.config import RiskRules, build_rules

    return build_rules(RiskRules.load(config_dir / "risk_rules.yaml"))


async def relay_forever(engine: Engine, bus: EventBus, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await relay_once(engine, bus)
        except Exception:  # the relay must outlive a bad round (database or Redis away)
            log.exception("relay round failed")
        try:
            await asyncio.wait_for(stop.wait(), RELAY_EVERY_S)
        except TimeoutError:
            continue


async def run(engine: Engine, bus: EventBus, rules: list[Rule], consumer: str,
              stop: asyncio.Event) -> None:  # fmt: skip
    """Relay committed events onto the bus and apply them, until `stop` is set."""
    monitor = Monitor(engine, rules)
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
