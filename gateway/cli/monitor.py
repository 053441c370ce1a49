"""`xyd monitor`: a sandbox monitor worker."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings


def monitor(
    consumer: Annotated[str | None, typer.Option(help="This worker's name in the group")] = None,
) -> None:
    """Run a sandbox monitor worker: relay committed events, apply the risk rules, raise alerts.

    With XYD_REDIS_URL, any number of workers share the Redis stream; without
    it the gateway runs the monitor in process and this command is not needed.
    """
    import asyncio
    import signal
    import socket

    from adapters.registry import load_config, notified_platforms
    from gateway.db import make_sync_engine
    from gateway.monitor.bus import RedisStreamBus
    from gateway.monitor.service import load_rules, run
    from gateway.redisconn import make_redis

    settings = Settings()
    redis = make_redis(settings)
    if redis is None:
        raise fail("set XYD_REDIS_URL: without Redis the gateway runs the monitor itself")
    try:
        rules = load_rules(settings.config_dir)
        notified = notified_platforms(load_config(settings.config_dir / "platforms.yaml"))
    except ValueError as exc:
        raise fail(str(exc)) from None
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine = make_sync_engine(settings)
        try:
            bus = RedisStreamBus(redis, claim_idle_ms=settings.monitor_claim_idle_ms)
            try:
                await run(
                    engine, bus, rules, name, stop,
                    notified=notified, max_deliveries=settings.monitor_max_deliveries,
                )  # fmt: skip
            finally:
                await bus.aclose()
        finally:
            engine.dispose()
            await redis.aclose()

    typer.echo(f"monitor {name}: {len(rules)} rules; Ctrl-C to stop")
    asyncio.run(main())
