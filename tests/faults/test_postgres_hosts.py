"""A multi-host PostgreSQL URL (`?host=H1:P1&host=H2:P2&target_session_attrs=read-write`):
the gateway, its held connections and `xyd db` land on the server that takes
writes, whichever is listed first, and come back after it restarts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as cli
from gateway.store.tables import audit_entries
from testkit.clients import register
from testkit.services import Postgres, postgres_server
from tests.faults.conftest import TEMPLATE, gateway_settings, seed_enterprises, wait_until
from tests.faults.test_redis import REPORT
from tests.reports.test_reports_api import bearer, consent

_names = itertools.count()


@pytest.fixture(scope="module")
def read_only_pg() -> Iterator[Postgres]:
    """A second server that refuses writes, as a standby would."""
    with postgres_server() as server:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("ALTER SYSTEM SET default_transaction_read_only = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        admin.dispose()
        yield server


def both_hosts(read_only: Postgres, writable: Postgres, database: str) -> str:
    """The read-only server first: only target_session_attrs makes it skip it."""
    return (
        f"postgresql+psycopg://postgres@/{database}?host=127.0.0.1:{read_only.port}"
        f"&host=127.0.0.1:{writable.port}&target_session_attrs=read-write"
    )


def database_on_both(read_only: Postgres, writable: Postgres, template: str | None) -> str:
    """A database of the same name on both servers (the read-only one must be a
    real candidate, not one that fails for want of the database)."""
    name = f"hosts_{next(_names)}"
    for server in (read_only, writable):
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SET default_transaction_read_only = off"))
            from_template = f" TEMPLATE {template}" if template and server is writable else ""
            conn.execute(text(f"CREATE DATABASE {name}{from_template}"))
        admin.dispose()
    return name


def test_xyd_db_upgrade_migrates_the_writable_server(
    read_only_pg: Postgres, fault_pg: Postgres
) -> None:
    name = database_on_both(read_only_pg, fault_pg, template=None)
    env = {"XYD_DATABASE_URL": both_hosts(read_only_pg, fault_pg, name)}
    answer = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert answer.exit_code == 0, answer.output
    for server, tables in ((fault_pg, True), (read_only_pg, False)):
        engine = create_engine(server.url(name))
        with engine.connect() as conn:
            found = conn.execute(text("SELECT to_regclass('audit_entries')")).scalar_one()
        engine.dispose()
        assert (found is not None) is tables, server.port


def test_the_gateway_lands_on_the_writable_server_and_survives_its_restart(
    read_only_pg: Postgres, fault_pg: Postgres, tmp_path: Path
) -> None:
    name = database_on_both(read_only_pg, fault_pg, template=TEMPLATE)
    writable = create_engine(fault_pg.url(name), pool_pre_ping=True)
    seed_enterprises(writable, 1)
    bank = register(writable, "bank-a", org_code="BOCD")
    settings = gateway_settings(
        tmp_path, both_hosts(read_only_pg, fault_pg, name), readiness_timeout_s=5.0
    )

    def audited() -> int:
        with writable.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_entries)).scalar_one())

    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            auth = bearer(client, bank)
            headers = {**auth, "Consent-Id": consent(client, auth)["id"]}
            # A report: the async engine, the audit writer's sync engine and the
            # held psycopg connections (audit chain, report reads) all write.
            assert client.get(REPORT, headers=headers).status_code == 200
            written = audited()
            assert written > 0

            fault_pg.stop()
            fault_pg.start()

            # No manual step: the pools ping, the held connections reconnect.
            answers: list[int] = []

            def answered() -> bool:
                answers.append(client.get(REPORT, headers=headers).status_code)
                return answers[-1] == 200

            assert wait_until(answered, 20, every=0.2), answers
            assert set(answers) <= {200, 503}, answers
            assert audited() > written
            assert client.get("/readyz").status_code == 200
    finally:
        writable.dispose()
