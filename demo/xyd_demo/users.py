"""The demo's risk officer: `demo-officer`, with a fresh password on every seed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, select

from gateway.dashboard.accounts import create_user, new_password, set_password
from gateway.private_files import private_dir, write_private
from gateway.store.tables import dashboard_users

DEMO_OFFICER = "demo-officer"


def ensure_demo_officer(conn: Connection, out_dir: Path) -> Path:
    """Create (or re-key) the officer; write the password owner-only; return its path."""
    password = new_password()
    exists = conn.execute(
        select(dashboard_users.c.name).where(dashboard_users.c.name == DEMO_OFFICER)
    ).first()
    if exists is None:
        create_user(conn, DEMO_OFFICER, "risk_officer", password)
    else:
        set_password(conn, DEMO_OFFICER, password)
    private_dir(out_dir)
    path = out_dir / f"{DEMO_OFFICER}.password"
    write_private(path, password + "\n")
    return path
