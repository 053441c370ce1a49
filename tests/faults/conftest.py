"""Fault injection: the faults' own PostgreSQL and Redis, stopped and started at will.

These servers are not the session's shared `pg` and `redis_srv`: stopping
them must not break any other test. Each test gets a fresh database from a
migrated template and puts the server back up when it is done.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select

from gateway.audit.chain import checkpoint_keys, verify
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.tables import audit_entries
from testkit.builders import ndjson, registration
from testkit.clients import ISSUER
from testkit.services import Postgres, migrated_postgres

TEMPLATE = "faults_template"
_counter = itertools.count()


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def ensure_up(server: Postgres) -> None:
    if not listening(server.port):
        with contextlib.suppress(subprocess.CalledProcessError):
            server.start()


@pytest.fixture(scope="session")
def fault_pg() -> Iterator[Postgres]:
    with migrated_postgres(TEMPLATE) as server:
        yield server


@pytest.fixture
def pg_url(fault_pg: Postgres) -> Iterator[str]:
    """A fresh database on the faults' own server; the server is up again afterwards."""
    ensure_up(fault_pg)
    yield fault_pg.copy(TEMPLATE, f"faults_{next(_counter)}")
    ensure_up(fault_pg)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


def gateway_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    settings = Settings(
        state_dir=tmp_path / ".xyd",
        database_url=url,
        pii_key="test-pii-key",
        public_base_url=ISSUER,
        key_activation_delay_s=0,
    )
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


def seed_enterprises(engine: Engine, count: int = 3) -> None:
    rows = [registration(n) for n in range(1, count + 1)]
    Ingestor(engine, "registration", b"test-pii-key", 100).run(
        read_ndjson(ndjson(*rows).splitlines()), "faults"
    )


def audit_verified(engine: Engine) -> int:
    """The number of audit entries, after asserting the chain verifies whole."""
    with engine.connect() as conn:
        count, breaks = verify(conn, checkpoint_keys(conn))
        seqs = list(conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq)))
        total = conn.execute(select(func.count()).select_from(audit_entries)).scalar_one()
    assert breaks == [], breaks
    assert [s for (s,) in seqs] == list(range(1, total + 1))
    return int(count)


@dataclass
class Answer:
    status: int
    content_type: str
    body: str


def classify(response: httpx.Response) -> Answer:
    return Answer(response.status_code, response.headers.get("content-type", ""), response.text)


def assert_no_500(answers: list[Answer]) -> None:
    """Every answer is a success or a 503/429 problem document; never a 500 or a trace."""
    for answer in answers:
        assert answer.status < 500 or answer.status == 503, (answer.status, answer.body[:300])
        if answer.status == 503:
            assert answer.content_type == "application/problem+json", answer
            assert "Traceback" not in answer.body


def wait_until(predicate: Callable[[], bool], seconds: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
