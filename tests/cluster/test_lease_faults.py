"""The host holding a pull schedule's lease killed whole (both its workers at once,
SIGKILL: no release): the other gateway host takes the lease over once it has
expired and syncs on from the stored cursor; every event of the platform's log,
those appended after the kill too, is stored exactly once.

The 天府融通 simulator is served from the client host (plain http: the production
profile asks https of the gateway's own issuers, not of a platform's address; the
outbound allow-list admits the client's private address for this cluster only).
This module's cluster switches that platform on with a 1 s schedule and 5 s leases
(cluster_overrides); the other modules' clusters stay as they are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, Executable, create_engine, func, select
from sqlalchemy.pool import NullPool

from deploy.cluster import netns
from deploy.cluster.gateways import Overrides
from deploy.cluster.topology import GATEWAY_HOSTS, HOSTS, SUBNET, Cluster
from gateway.store.tables import leases, loan_events
from testkit.builders import MARKET, code, ndjson, registration
from tests.cluster.world import record, served_in, xyd
from xyd_demo.simulators.tianfu_rongtong import TianfuRongtongSimulator

CREDENTIALS = "tfrt-simulator.json"  # in each gateway host's state directory
PLATFORM = "tianfu-rongtong"
LEASE = f"pull:{PLATFORM}"
PLATFORM_HOST, PORT = "client", 8103
TTL_S, EVERY_S = 5.0, 1.0
# Suppliers the feed's loans go to, registered before it is served: an
# authorisation for an unknown enterprise is dead-lettered, not stored.
BORROWERS = tuple((code(n), f"成都测试{n}号有限公司") for n in range(1, 25))


@pytest.fixture(scope="module")
def simulator() -> TianfuRongtongSimulator:
    return TianfuRongtongSimulator(seed=22, events=150, borrowers=BORROWERS)


@pytest.fixture(scope="module")
def cluster_overrides(simulator: TianfuRongtongSimulator) -> Overrides:
    address = f"{SUBNET}.{HOSTS[PLATFORM_HOST]}"
    credentials = json.dumps({
        "base_url": f"http://{address}:{PORT}",
        "client_id": simulator.client_id, "client_secret": simulator.client_secret,
    }).encode()  # fmt: skip
    block: dict[str, object] = {
        "enabled": True, "simulator_file": CREDENTIALS, "schedule_s": EVERY_S,
        # The gateways start before the simulator is served: their first syncs fail.
        "breaker_open_s": EVERY_S,
    }  # fmt: skip
    return Overrides(
        env={"XYD_LEASE_TTL_S": str(TTL_S), "XYD_OUTBOUND_ALLOWED_HOSTS": json.dumps([address])},
        platforms={PLATFORM: block},
        state_files={CREDENTIALS: credentials},
    )


@pytest.fixture(scope="module")
def platform(cluster: Cluster, simulator: TianfuRongtongSimulator) -> Iterator[str]:
    """The simulator served on the client host, its borrowers registered first."""
    rows = [registration(n, credit_code=c, subject_name=name)
            for n, (c, name) in enumerate(BORROWERS, 1)]  # fmt: skip
    records = cluster.root / "tfrt-registrations.ndjson"
    records.write_bytes(ndjson(*rows))
    xyd(cluster, "ingest", str(records), "--category", "registration", "--department", MARKET)
    with served_in(cluster, PLATFORM_HOST, simulator.app, PORT) as url:
        yield url


def query(cluster: Cluster, statement: Executable) -> list[tuple[Any, ...]]:
    """Rows of `statement`, asked from the client host (whichever PostgreSQL leads)."""
    with netns.entered(cluster.ns("client")):
        engine: Engine = create_engine(cluster.database_url, poolclass=NullPool)
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(statement)]


def stored_ids(cluster: Cluster) -> dict[str, int]:
    """How many times each of the platform's event ids is stored."""
    column = loan_events.c.message_id
    statement = (
        select(column, func.count()).where(loan_events.c.platform == PLATFORM).group_by(column)
    )
    return {str(m): int(n) for m, n in query(cluster, statement)}


def valid_ids(simulator: TianfuRongtongSimulator) -> set[str]:
    return set(simulator.log.unique()) - simulator.log.invalid_ids


def lease(cluster: Cluster) -> tuple[str, int]:
    """The schedule's lease: (holder, token)."""
    found = query(cluster, select(leases.c.holder, leases.c.token).where(leases.c.name == LEASE))
    return (str(found[0][0]), int(found[0][1])) if found else ("", 0)


def wait_until(what: str, done: Callable[[], bool], within_s: float) -> float:
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < within_s, f"{what}: not within {within_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def duplicates_logged(cluster: Cluster) -> int:
    """Events the syncs met again (a platform delivers at least once), from the
    gateways' "platform synced" lines."""
    total = 0
    for host in GATEWAY_HOSTS:
        for line in cluster.log(host).read_text(errors="replace").splitlines():
            if "platform synced" in line and line.startswith("{"):
                total += int(json.loads(line).get("duplicate", 0))
    return total


def test_the_lease_holder_s_host_killed_the_other_syncs_on_exactly_once(
    cluster: Cluster, simulator: TianfuRongtongSimulator, platform: str
) -> None:
    wait_until("the feed stored", lambda: set(stored_ids(cluster)) == valid_ids(simulator), 40)
    holder, token = lease(cluster)
    killed = holder.split(":")[0]
    assert killed in GATEWAY_HOSTS, holder
    # The holder is one process (host:pid:random), one of the killed host's workers.
    assert int(holder.split(":")[1]) in netns.pids(cluster.ns(killed)), holder
    survivor = next(h for h in GATEWAY_HOSTS if h != killed)
    before = len(simulator.log.entries)

    simulator.log.append(10)  # a page the holder may be fetching as it dies
    cluster.kill_host(killed)
    died = time.monotonic()
    appended_at = died
    while lease(cluster)[0].split(":")[0] != survivor:
        assert time.monotonic() - died < TTL_S * 3, f"no take-over: {lease(cluster)}"
        if time.monotonic() - appended_at >= 0.5:
            simulator.log.append(5)  # the platform's log goes on while nobody syncs
            appended_at = time.monotonic()
        time.sleep(0.1)
    taken_over = time.monotonic() - died
    new_holder, new_token = lease(cluster)
    simulator.log.append(20)
    after_kill = set(e["id"] for e in simulator.log.entries[before:]) & valid_ids(simulator)
    wait_until("every event stored", lambda: set(stored_ids(cluster)) == valid_ids(simulator), 20)
    all_stored = time.monotonic() - died

    stored = stored_ids(cluster)
    doubled = sum(1 for n in stored.values() if n > 1)
    figures = {
        "ttl_s": TTL_S,
        "schedule_s": EVERY_S,
        "killed": holder,
        "taken_by": new_holder,
        "token": [token, new_token],
        "takeover_s": round(taken_over, 2),
        "all_stored_s": round(all_stored, 2),
        "events": len(simulator.log.entries),
        "valid": len(valid_ids(simulator)),
        "appended_around_kill": len(after_kill),
        "stored": sum(stored.values()),
        "doubled": doubled,
        "duplicates_met": duplicates_logged(cluster),
    }
    record("lease_holder_killed", figures)
    # It expires at most TTL_S after the last renewal (before the kill); the
    # survivor's processes try every third of it and sync as soon as they hold it.
    assert taken_over <= TTL_S + TTL_S / 3 + EVERY_S + 1.0, figures
    assert new_holder.startswith(f"{survivor}:") and new_token == token + 1, figures
    assert set(stored) == valid_ids(simulator) and doubled == 0, figures
    assert after_kill and after_kill <= set(stored), figures
