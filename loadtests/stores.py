"""What the benchmark's gateway runs on: a throw-away PostgreSQL and Redis, demo data,
and a copy of the configuration sized so that the gate measures rather than refuses.

The rate limits are raised, not removed: every request still runs the GCRA
script in Redis, the daily and per-enterprise counters included; with the
shipped plan (20/s) the gateway would answer 429 from the first second and
the benchmark would time refusals. The pull platforms are switched off:
their simulators are not running here, and their schedules would poll
whatever else listens on the demo ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

from gateway.settings import Settings
from testkit.services import Postgres, postgres_server

ROOT = Path(__file__).resolve().parents[1]
XYD = Path(sys.executable).parent / "xyd"
UNLIMITED = {"rate_per_s": 100_000, "burst": 100_000, "reports_per_day": 10_000_000}
PULL_PLATFORMS = ("yingchuang", "tianfu-rongtong")


def clean_env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """This process's environment without a developer's XYD_* or PG* settings, which
    would point the benchmark's servers at another store."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XYD_", "PG"))
        and k not in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    return {**env, **extra}


def bench_config(target: Path) -> Path:
    shutil.copytree(Settings().config_dir, target, dirs_exist_ok=True)
    rates = yaml.safe_load((target / "rates.yaml").read_text(encoding="utf-8"))
    rates["plans"] = {name: dict(UNLIMITED) for name in rates["plans"]}
    rates["enterprise_reports_per_day"] = UNLIMITED["reports_per_day"]
    rates["enterprise_reports_per_bank_per_day"] = UNLIMITED["reports_per_day"]
    (target / "rates.yaml").write_text(yaml.safe_dump(rates, allow_unicode=True), "utf-8")
    platforms = yaml.safe_load((target / "platforms.yaml").read_text(encoding="utf-8"))
    for name in PULL_PLATFORMS:
        if name in platforms:
            platforms[name]["enabled"] = False
    (target / "platforms.yaml").write_text(yaml.safe_dump(platforms, allow_unicode=True), "utf-8")
    return target


def create_database(server: Postgres, name: str) -> str:
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.url(name)


def xyd(env: Mapping[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(XYD), *args], env=dict(env), cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"xyd {' '.join(args)} failed: {done.stderr[-800:]}")
    return done.stdout


def cached_postgres(directory: Path) -> contextlib.AbstractContextManager[Postgres]:
    """A PostgreSQL whose data directory outlives the run (a seeded million-enterprise
    store takes 8 minutes to make); created on first use."""
    return postgres_server(directory)


def postmaster_pid(server: Postgres) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])
