"""A real `xyd serve` (two workers, PostgreSQL) under a bounded load loop, with faults:
PostgreSQL restarted halfway, then a worker killed with SIGKILL mid-request.

Afterwards every answer the load generator saw acknowledged (2xx) is stored
exactly once: its audit entry (by request id), its consent with its history,
its platform message; nothing is half-written and the audit chain verifies.
The tests share one server (starting one costs ~15 s here) and run in order.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, create_engine

from testkit.clients import ClientKey, register
from testkit.services import Postgres, RedisServer
from tests.faults.conftest import TEMPLATE, audit_verified, ensure_up, seed_enterprises
from tests.faults.served import Seen, Served, assert_exactly_once, run_load, xyd_serve

USERS = 4


@dataclass
class Stack:
    served: Served
    engine: Engine
    bank: ClientKey
    pg: Postgres


@pytest.fixture(scope="module")
def stack(
    fault_pg: Postgres, redis_srv: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    ensure_up(fault_pg)
    url = fault_pg.copy(TEMPLATE, "faults_served")
    engine = create_engine(url, pool_pre_ping=True)
    seed_enterprises(engine, 1)
    bank = register(engine, "bank-a", org_code="BOCD")
    with xyd_serve(tmp_path_factory.mktemp("served"), url, redis_srv.url, workers=2) as served:
        yield Stack(served, engine, bank, fault_pg)
    ensure_up(fault_pg)
    engine.dispose()


def _finish(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(timeout=20)


def _acked(seen: Seen) -> int:
    return len(seen.audited) + len(seen.messages)


def assert_only_503(seen: Seen) -> None:
    assert not {s for s in seen.statuses if s >= 500 and s != 503}, seen.statuses


def test_load_with_postgres_restarted_halfway_loses_and_doubles_nothing(stack: Stack) -> None:
    seen, stop, threads = run_load(stack.served, stack.bank, USERS)
    try:
        time.sleep(4.0)
        before = _acked(seen)
        stack.pg.stop()
        time.sleep(2.0)
        stack.pg.start()
        during = _acked(seen)
        time.sleep(4.0)
    finally:
        _finish(stop, threads)
    assert before > 0 and _acked(seen) > during, "no recovery after PostgreSQL came back"
    assert 503 in seen.statuses, seen.statuses  # the outage was seen, as 503s
    assert_only_503(seen)
    assert_exactly_once(stack.engine, seen)
    assert audit_verified(stack.engine) >= len(seen.audited)
    print("load + restart:", seen.statuses, "acked", _acked(seen), "dropped", seen.failed)


def test_sigkill_of_a_worker_mid_request_leaves_nothing_half_written(stack: Stack) -> None:
    workers = stack.served.workers()
    assert len(workers) == 2, workers
    seen, stop, threads = run_load(stack.served, stack.bank, USERS)
    try:
        time.sleep(2.0)
        before = _acked(seen)
        os.kill(workers[0], signal.SIGKILL)  # requests are in flight on both workers
        time.sleep(3.0)
    finally:
        _finish(stop, threads)
    assert stack.served.proc.poll() is None, "the server went down with its worker"
    assert before > 0 and _acked(seen) > before, (seen.statuses, seen.failed)
    assert_only_503(seen)
    assert_exactly_once(stack.engine, seen)
    assert audit_verified(stack.engine) >= len(seen.audited)
    print("sigkill:", seen.statuses, "acked", _acked(seen), "dropped", seen.failed)
