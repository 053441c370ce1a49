"""A pull platform's sync: rows stored per second, from its simulator over real HTTP.

    .venv/bin/python -m loadtests.pull_bench --rows 20000 [--postgres]

Serves the 天府融通 simulator in a process of its own with a feed of `--rows`
events (its malformed ones and redeliveries included) lending to enterprises
and banks in the registry, so authorisations become consents; then times one
sync from the start of the feed as the scheduled one runs it (pages of 500,
each page stored with its cursor in one transaction) and prints rows/s.

Next to the rate: the CPU time per row of this process (the adapter: HTTP
client, parsing, storing), of PostgreSQL on the throw-away server, and of
the simulator serving the pages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import shutil
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path
from tempfile import mkdtemp

from adapters.base import PlatformContext, PlatformServices
from adapters.tianfu_rongtong.adapter import TianfuRongtongAdapter
from adapters.tianfu_rongtong.config import TianfuRongtongConfig
from gateway.db import make_async_engine, make_sync_engine
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from loadtests.adapter_bench import BORROWERS, postmaster, registered, store
from loadtests.ingest_bench import client_cpu_seconds
from loadtests.procstat import CpuMeter
from policies.consent import ConsentRules
from testkit.services import free_port
from xyd_demo import platforms

CLIENT_ID, SECRET = "tfrt_bench", "bench-secret-bench-secret"


def _serve_simulator(port: int, rows: int, stop: Event) -> None:
    """The simulator's process: served until `stop` is set."""
    from testkit.live import serve
    from xyd_demo.simulators.tianfu_rongtong import TianfuRongtongSimulator

    simulator = TianfuRongtongSimulator(
        client_id=CLIENT_ID, client_secret=SECRET, events=rows, borrowers=BORROWERS
    )
    with serve(simulator.app, port=port):
        stop.wait()


@contextlib.contextmanager
def simulator(rows: int) -> Iterator[tuple[str, int]]:
    """The simulator's base URL and process id."""
    spawn = multiprocessing.get_context("spawn")
    stop, port = spawn.Event(), free_port()
    process = spawn.Process(target=_serve_simulator, args=(port, rows, stop))
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        platforms.wait_for(base, 120)
        assert process.pid is not None
        yield base, process.pid
    finally:
        stop.set()
        process.join(20)
        if process.is_alive():
            process.kill()


async def sync(
    settings: Settings, credentials: Path, database: CpuMeter
) -> tuple[int, int, int, float]:
    """One sync from the feed's start: rows fetched, accepted, duplicates, and the
    database's CPU seconds (read before the engine closes its connections: the
    meter loses what a process that has ended spent)."""
    services = PlatformServices()
    ctx = PlatformContext(
        services=services,
        consent_rules=ConsentRules.load(settings.config_dir / "consent.yaml"),
        pii_key=b"bench",
        state_dir=credentials.parent,
    )
    engine = make_async_engine(settings)
    services.bind(engine)
    config = TianfuRongtongConfig(enabled=True, simulator_file=str(credentials))
    adapter = TianfuRongtongAdapter(ctx, config)
    try:
        database.start()
        report = await adapter.sync()
        spent = database.stop()
    finally:
        await engine.dispose()
    return report.fetched, report.accepted, report.duplicate, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    state = Path(mkdtemp(prefix="xyd-pull-bench-"))
    with store(args.postgres, state) as server:
        settings = Settings(database_url=server.url, state_dir=state, pii_key="bench")
        engine = make_sync_engine(settings)
        upgrade(engine)
        registered(engine)
        engine.dispose()
        with simulator(args.rows) as (base, pid):
            credentials = state / "tfrt.json"
            body = {"base_url": base, "client_id": CLIENT_ID, "client_secret": SECRET}
            credentials.write_text(json.dumps(body))
            theirs, feed = CpuMeter(postmaster(server)), CpuMeter([pid])
            feed.start()
            ours = client_cpu_seconds()
            started = time.perf_counter()
            fetched, accepted, duplicate, pg = asyncio.run(sync(settings, credentials, theirs))
            seconds = time.perf_counter() - started
            per_row = 1e6 / max(1, fetched)
            cpu = f"adapter {(client_cpu_seconds() - ours) * per_row:.0f}"
            if server.data_dir is not None:
                cpu += f", PostgreSQL {pg * per_row:.0f}"
            cpu += f", simulator {feed.stop() * per_row:.0f}"
            print(
                f"tianfu-rongtong {fetched:7} rows in {seconds:6.1f} s = "
                f"{fetched / seconds:7.0f} rows/s  (accepted {accepted}, duplicate {duplicate})  "
                f"CPU µs/row: {cpu}"
            )
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
