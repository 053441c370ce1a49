"""`xyd demo seed` leaves a penalty an enterprise can repair now, and its reviewer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import create_engine

from gateway.dashboard import accounts
from gateway.repairs import service
from gateway.reports.build import report_day
from gateway.settings import Settings


def test_the_demo_has_a_repairable_penalty_and_a_reviewer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    env |= {"XYD_STATE_DIR": str(tmp_path / ".xyd")}

    def xyd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    assert xyd("db", "upgrade").returncode == 0
    seeded = xyd("demo", "seed", "--enterprises", "200", "--seed", "3")
    assert seeded.returncode == 0, seeded.stderr
    demo = tmp_path / ".xyd" / "demo"
    assert "credit repair:" in seeded.stdout
    sample = orjson.loads((demo / "repair-sample.json").read_bytes())
    password_file = demo / "users" / "demo-reviewer.password"
    for path in (demo / "repair-sample.json", password_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config_dir = Settings().config_dir
    engine = create_engine(f"sqlite:///{tmp_path / '.xyd' / 'xyd.db'}")
    with engine.begin() as conn:
        judged = {
            j.record_id: j
            for j, _ in service.penalties(
                conn, config_dir, sample["credit_code"], report_day(datetime.now(UTC))
            )
        }
        login = accounts.verify_login(conn, "demo-reviewer", password_file.read_text().strip())
        session, _ = accounts.create_session(conn, "demo-reviewer", datetime.now(UTC))
        found = accounts.get_session(conn, session, datetime.now(UTC))
    engine.dispose()
    assert judged[sample["record_id"]].eligibility.eligible
    assert login.outcome is accounts.Outcome.OK and login.role == accounts.REVIEWER
    assert found is not None and found.department == sample["department"]
    if sample["department"] == "成都市市场监督管理局":
        assert sample["api_reviewer"] == "demo-department"
