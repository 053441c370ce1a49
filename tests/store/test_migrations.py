"""The same migrations on SQLite and PostgreSQL, reversible and repeatable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, make_url, select

from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import CATEGORIES, consents, metadata

EXPECTED = {
    "enterprises",
    "records",
    "record_versions",
    "penalty_details",
    "license_details",
    "ingest_runs",
    "record_disputes",
    "loan_events",
    "loans",
    "platform_dead_letters",
    "platform_sync_state",
    "outbox",
    "monitor_events",
    "alerts",
    "alert_history",
    "clients",
    "signing_keys",
    "revoked_tokens",
    "used_jtis",
    "idempotency_keys",
    "audit_entries",
    "audit_head",
    "audit_checkpoints",
    "consents",
    "consent_events",
    "webhook_notices",
    "dashboard_users",
    "dashboard_sessions",
    "report_cuts",
    "issued_reports",
    "oauth_requests",
    "oauth_codes",
    "oauth_refresh_tokens",
    "portal_logins",
    "portal_sessions",
    "repair_applications",
    "repair_evidence",
    "leases",
}


def test_autogenerate_finds_nothing_to_migrate(engine: Engine) -> None:
    """The tables as defined (UtcDateTime included) are the tables migrated:
    `alembic revision --autogenerate` would write an empty migration."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migrated_schema_matches_the_table_definitions(engine: Engine) -> None:
    inspector = inspect(engine)
    tables = set(inspector.get_table_names()) - {"alembic_version"}
    assert tables == EXPECTED == set(metadata.tables)
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name
    uniques = inspector.get_unique_constraints("records")
    assert any(
        u["column_names"] == ["category", "source_department", "source_record_id"] for u in uniques
    )


def test_upgrade_twice_and_downgrade_then_up_again(engine: Engine) -> None:
    upgrade(engine)  # already at head: nothing to do, no error
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= EXPECTED


def test_every_catalogue_category_has_a_schema() -> None:
    from gateway.records.schemas import SCHEMAS

    assert tuple(SCHEMAS) == CATEGORIES


def test_cli_db_upgrade_creates_the_sqlite_store(tmp_path: Path) -> None:
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    store = create_engine(f"sqlite:///{tmp_path / 'state' / 'xyd.db'}")
    assert set(inspect(store).get_table_names()) >= EXPECTED
    store.dispose()


@pytest.mark.parametrize("where", ["postgres-socket", "sqlite-path"])
def test_upgrade_takes_a_url_holding_percent_signs(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # PostgreSQL over its unix socket: the directory goes in the URL as host=%2F...
    if where == "postgres-socket":
        from tests.conftest import fresh_pg_database

        server = request.getfixturevalue("pg")
        name = make_url(fresh_pg_database(server)).database
        url = f"postgresql+psycopg://postgres@/{name}?host={server.socket_dir}&port={server.port}"
    else:
        directory = tmp_path / "100%-state"
        directory.mkdir()
        url = f"sqlite:///{directory / 'xyd.db'}"
    engine = create_engine(url)
    assert "%" in engine.url.render_as_string(hide_password=False)
    try:
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= EXPECTED
        assert alembic_config(engine).get_main_option(
            "sqlalchemy.url"
        ) == engine.url.render_as_string(hide_password=False)
    finally:
        engine.dispose()


def test_consents_made_before_channels_take_theirs_from_the_registrant(engine: Engine) -> None:
    """Migration 0018: a platform adapter's consent (`platform:<key>`) keeps that as
    its channel; every other one came through the API, `direct`."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import column, insert, table

    config = alembic_config(engine)
    before = ScriptDirectory.from_config(config).get_revision("0018").down_revision
    assert isinstance(before, str)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, before)
    old = table(
        "consents",
        *(column(name) for name in ("id", "credit_code", "grantee_client_id")),
        *(column(name) for name in ("registrant_client_id", "purpose", "scopes", "evidence")),
        *(column(name) for name in ("valid_from", "valid_until", "created_at", "updated_at")),
    )
    at = "2026-12-01 00:00:00+00:00"  # a literal: read neither back nor by its type
    with engine.begin() as conn:
        for consent_id, registrant in (
            ("cns_bank", "bank-a"),
            ("cns_kct", "platform:kechuangtong"),
        ):
            conn.execute(
                insert(old).values(
                    id=consent_id, credit_code="91510100MA61R8XW0X", grantee_client_id="bank-a",
                    registrant_client_id=registrant, purpose="loan_application",
                    scopes='["basic"]', evidence="{}", valid_from=at, valid_until=at,
                    created_at=at, updated_at=at,
                )
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as conn:
        channels = dict(conn.execute(select(consents.c.id, consents.c.channel)).all())
    assert channels == {"cns_bank": "direct", "cns_kct": "platform:kechuangtong"}
