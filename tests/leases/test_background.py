"""Two gateway hosts (two apps, each with its background loops) against the 天府融通
simulator: only the pull schedule's lease holder syncs, no event is stored twice,
and when the holder dies the other takes the schedule over within the lease's
time to live and one schedule interval."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Connection, Engine, func, select
from starlette.testclient import TestClient

from adapters.tianfu_rongtong.adapter import TianfuRongtongAdapter
from gateway.app import create_app
from gateway.db import make_async_engine
from gateway.leases import Lease, LeaseLost
from gateway.positions import read_position
from gateway.settings import Settings
from gateway.state import state_of
from gateway.store.tables import leases, loan_events
from testkit.builders import codes_in, register_enterprises
from testkit.clients import register
from testkit.live import serve
from xyd_demo.simulators.tianfu_rongtong import BANKS, TianfuRongtongSimulator

CONFIG = Path(__file__).resolve().parents[2] / "config"
PLATFORM = "tianfu-rongtong"
TTL_S = 1.5
EVERY_S = 0.5


@pytest.fixture
def simulator() -> TianfuRongtongSimulator:
    return TianfuRongtongSimulator(seed=11, events=60)


@pytest.fixture
def base_url(simulator: TianfuRongtongSimulator) -> Iterator[str]:
    with serve(simulator.app) as url:
        yield url


def registered(engine: Engine, simulator: TianfuRongtongSimulator) -> None:
    register_enterprises(engine, *codes_in(json.dumps(simulator.log.entries)))


def host_settings(settings: Settings, tmp_path: Path, base_url: str, sim: Any) -> Settings:
    credentials = tmp_path / "tfrt.json"
    body = {"base_url": base_url, "client_id": sim.client_id, "client_secret": sim.client_secret}
    credentials.write_text(json.dumps(body))
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    block = {"enabled": True, "simulator_file": str(credentials), "schedule_s": EVERY_S}
    (config / "platforms.yaml").write_text(yaml.safe_dump({PLATFORM: block}))
    settings.config_dir = config
    settings.public_base_url = "http://testserver"
    settings.lease_ttl_s = TTL_S
    return settings


class Host:
    """One gateway host: its app, and the times its scheduled syncs began."""

    def __init__(self, settings: Settings, holder: str) -> None:
        self.holder = holder
        self.app = create_app(settings.model_copy(update={"lease_holder": holder}))
        self.syncs: list[float] = []
        adapter = state_of(self.app).platforms[PLATFORM]
        assert isinstance(adapter, TianfuRongtongAdapter)
        synced = adapter.sync

        async def counted(**kwargs: Any) -> Any:
            self.syncs.append(time.monotonic())
            return await synced(**kwargs)

        adapter.sync = counted  # type: ignore[method-assign]


def stored(engine: Engine) -> tuple[int, int]:
    """(events stored, distinct message ids among them)."""
    with engine.connect() as conn:
        column = loan_events.c.message_id
        total, distinct = conn.execute(
            select(func.count(column), func.count(column.distinct()))
        ).one()
    return int(total), int(distinct)


def valid(simulator: TianfuRongtongSimulator) -> int:
    return len(set(simulator.log.unique()) - simulator.log.invalid_ids)


def holder_of(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(leases.c.holder).where(leases.c.name == f"pull:{PLATFORM}")
            ).scalar_one()
        )


def wait_for(done: Callable[[], bool], within_s: float) -> float:
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < within_s, "not within the time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_one_host_syncs_and_the_other_takes_over_when_it_dies(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: TianfuRongtongSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    registered(engine, simulator)
    settings = host_settings(settings, tmp_path, base_url, simulator)
    hosts = [Host(settings, "host-a"), Host(settings, "host-b")]
    running: dict[str, TestClient] = {}
    try:
        for host in hosts:
            running[host.holder] = TestClient(host.app).__enter__()
        wait_for(lambda: stored(engine)[0] == valid(simulator), 15)
        time.sleep(EVERY_S * 4)  # several more schedule rounds on both hosts
        syncing = [h for h in hosts if h.syncs]
        assert len(syncing) == 1, [len(h.syncs) for h in hosts]
        holder = syncing[0]
        survivor = next(h for h in hosts if h is not holder)
        assert len(holder.syncs) > 2
        assert holder_of(engine).startswith(f"{holder.holder}:")
        assert stored(engine) == (valid(simulator), valid(simulator))

        # The holder dies: no clean stop, so no release; its lease runs out.
        async def dead(self: Lease) -> None:
            return None

        monkeypatch.setattr(Lease, "release", dead)
        running.pop(holder.holder).__exit__(None, None, None)
        died = time.monotonic()
        simulator.log.append(30)
        registered(engine, simulator)
        wait_for(lambda: bool(survivor.syncs), TTL_S + EVERY_S + 1.0)
        taken_over = survivor.syncs[0] - died
        assert taken_over <= TTL_S + EVERY_S + 0.5, taken_over
        wait_for(lambda: stored(engine)[0] == valid(simulator), 10)
        assert stored(engine) == (valid(simulator), valid(simulator))
        assert holder_of(engine).startswith(f"{survivor.holder}:")
    finally:
        for client in running.values():
            client.__exit__(None, None, None)


# On PostgreSQL: the embedded SQLite store keeps its leases until they expire.
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_clean_stop_hands_the_schedule_over_before_the_ttl(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: TianfuRongtongSimulator,
) -> None:
    """A rolling upgrade stops hosts cleanly: the leases are released on the way
    out, so the other host takes over within a retry round, not after the ttl."""
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    registered(engine, simulator)
    ttl_s = 6.0  # retries every 2 s: a take-over after a release is well under it
    settings = host_settings(settings, tmp_path, base_url, simulator)
    settings.lease_ttl_s = ttl_s
    hosts = [Host(settings, "host-a"), Host(settings, "host-b")]
    running: dict[str, TestClient] = {}
    try:
        for host in hosts:
            running[host.holder] = TestClient(host.app).__enter__()
        wait_for(lambda: stored(engine)[0] == valid(simulator), 15)
        holder = next(h for h in hosts if h.syncs)
        survivor = next(h for h in hosts if h is not holder)
        assert not survivor.syncs
        running.pop(holder.holder).__exit__(None, None, None)
        stopped = time.monotonic()
        wait_for(lambda: bool(survivor.syncs), ttl_s)
        taken_over = survivor.syncs[0] - stopped
        assert taken_over < ttl_s / 3 + EVERY_S + 0.5, taken_over
        assert holder_of(engine).startswith(f"{survivor.holder}:")
        wait_for(lambda: len(survivor.syncs) >= 2, 5)  # syncing on, nothing stored twice
        wait_for(lambda: stored(engine)[0] == valid(simulator), 10)
        assert stored(engine) == (valid(simulator), valid(simulator))
    finally:
        for client in running.values():
            client.__exit__(None, None, None)


async def test_a_page_fetched_as_the_lease_is_lost_is_not_stored(
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    base_url: str,
    simulator: TianfuRongtongSimulator,
) -> None:
    for code in BANKS:
        register(engine, f"bank-{code.lower()}", org_code=code)
    registered(engine, simulator)
    settings = host_settings(settings, tmp_path, base_url, simulator)
    settings.run_background = False
    state = state_of(create_app(settings))
    state.engine = make_async_engine(settings)
    state.platform_services.bind(state.engine)
    try:
        adapter = state.platforms[PLATFORM]
        assert isinstance(adapter, TianfuRongtongAdapter)
        lost = Lease(state.engine, f"pull:{PLATFORM}", "host-a", TTL_S)
        other = Lease(state.engine, f"pull:{PLATFORM}", "host-b", TTL_S)
        assert await lost.acquire()
        fenced: list[str] = []

        def fence(conn: Connection) -> None:
            # The first transaction reads the cursor; before the second, the first
            # page's, host-b takes over (host-a paused past its lease, say).
            fenced.append("page" if fenced else "cursor")
            if len(fenced) == 2:
                with engine.begin() as elsewhere:
                    later = datetime.now(UTC) + timedelta(seconds=TTL_S + 1)
                    assert other._take(elsewhere, later) == 2
            lost.fence(conn)

        adapter.fence = fence
        with pytest.raises(LeaseLost):
            await adapter.sync()
        assert fenced == ["cursor", "page"]
        assert stored(engine) == (0, 0)
        with engine.connect() as conn:
            assert read_position(conn, PLATFORM, "cursor") is None
    finally:
        await state.engine.dispose()
