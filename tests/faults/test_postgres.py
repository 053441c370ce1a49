"""PostgreSQL stopped under load: 503 problem documents, never a 500; then recovery
without restarting the gateway."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine

from gateway.app import create_app
from testkit.builders import code
from testkit.clients import register
from testkit.live import serve
from testkit.services import Postgres
from tests.faults.conftest import (
    Answer,
    assert_no_500,
    audit_verified,
    classify,
    gateway_settings,
    seed_enterprises,
    wait_until,
)

LOADERS = 4


def client_ready(client: httpx.Client) -> tuple[int, list[str]]:
    answer = client.get("/readyz")
    return answer.status_code, answer.json().get("down", [])


def test_postgres_stopped_mid_load_is_503_then_recovers(
    fault_pg: Postgres, pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    seed_enterprises(pg_engine)
    bank = register(pg_engine, "bank-a", org_code="BOCD")
    settings = gateway_settings(tmp_path, pg_url, readiness_timeout_s=1.0)
    answers: list[Answer] = []
    stop = threading.Event()

    def load(client: httpx.Client, token: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        while not stop.is_set():
            try:
                got = client.get(f"/v1/enterprises/{code(1)}", headers=auth)
                answers.append(classify(got))
                got = client.post("/oauth/token", data=bank.form())
                answers.append(classify(got))
            except httpx.TransportError as exc:  # a dropped connection would be a defect too
                answers.append(Answer(599, "", repr(exc)))

    with serve(create_app(settings)) as base:
        clients = [httpx.Client(base_url=base, timeout=10) for _ in range(LOADERS)]
        token = clients[0].post("/oauth/token", data=bank.form()).json()["access_token"]
        threads = [threading.Thread(target=load, args=(c, token)) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        fault_pg.stop()
        time.sleep(2.0)
        during = len(answers)
        down = client_ready(clients[0])
        fault_pg.start()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        statuses = [a.status for a in answers]
        # Answered throughout: successes before and after, 503 problems while it was down.
        assert 503 in statuses[:during] and 200 in statuses, statuses
        assert_no_500(answers)
        # Back without a restart: the same process answers again.
        auth = {"Authorization": f"Bearer {token}"}
        client = clients[0]
        assert wait_until(
            lambda: client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 200, 10
        )
        assert client.get("/readyz").status_code == 200
        assert down == (503, ["database"])
        for c in clients:
            c.close()
    audit_verified(pg_engine)
