"""Checkpoints that a records batch signs in its own transaction (a department's
POST, or an operator's `xyd ingest`) are signed with a pinned key at the configured
interval, so `xyd audit verify` trusts a trail holding them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.records.ingest_file import ingest_file
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints
from testkit.builders import MARKET, code, ndjson, penalty


def test_a_trail_with_checkpoints_signed_by_xyd_ingest_verifies(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    every = 10
    bounded = settings.model_copy(update={"audit_checkpoint_every": every})
    feed = tmp_path / "penalties.ndjson"
    feed.write_bytes(ndjson(*(penalty(n, credit_code=code(1 + n % 3)) for n in range(1, 26))))
    assert ingest_file(bounded, feed, "penalty", None, None, MARKET) == 0
    with engine.connect() as conn:
        signed = conn.scalar(select(func.count()).select_from(audit_checkpoints))
    assert signed == 25 // every
    env = {
        "XYD_STATE_DIR": str(bounded.state_dir),
        "XYD_DATABASE_URL": bounded.database_url,
        "XYD_AUDIT_CHECKPOINT_EVERY": str(every),
        "XYD_PII_KEY": "test-pii-key",
    }
    answer = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert answer.exit_code == 0, answer.output
    assert "audit chain intact: 25 entries" in answer.output
