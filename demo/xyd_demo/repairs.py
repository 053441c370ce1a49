"""The demo's credit repair: a penalty the seeded data lets an enterprise repair now,
and a department reviewer for it (`demo-reviewer`, a fresh password on every seed).

Written to `.xyd/demo/repair-sample.json` (the enterprise, the penalty's record
id, its department, who reviews) and `.xyd/demo/users/demo-reviewer.password`.
The market regulator's penalty is preferred: the demo's department client
(`demo-department`) is that department's, so it can review over the API too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Connection, select, update

from gateway.dashboard.accounts import REVIEWER, create_user, new_password, set_password
from gateway.private_files import private_dir, write_private
from gateway.repairs import service
from gateway.reports.build import report_day
from gateway.store.tables import dashboard_users
from xyd_demo import names
from xyd_demo.oidc.users import REPAIR_SAMPLE

DEMO_REVIEWER = "demo-reviewer"
API_REVIEWER = "demo-department"  # xyd_demo.clients: the market regulator's client


def write_repair_sample(conn: Connection, config_dir: Path, out_dir: Path) -> Path | None:
    """Find a repairable penalty, make its department's reviewer; the sample's path,
    or None when the data holds no repairable penalty."""
    on = report_day(datetime.now(UTC))
    found = service.find_repairable(conn, config_dir, on, names.MARKET) or (
        service.find_repairable(conn, config_dir, on)
    )
    if found is None:
        return None
    code, judged = found
    password = _ensure_reviewer(conn, judged.department)
    private_dir(out_dir / "users")
    write_private(out_dir / "users" / f"{DEMO_REVIEWER}.password", password + "\n")
    sample = {
        "credit_code": code,
        "record_id": judged.record_id,
        "decision_number": judged.decision_number,
        "department": judged.department,
        "earliest": judged.eligibility.earliest.isoformat()
        if judged.eligibility.earliest
        else None,
        "dashboard_reviewer": DEMO_REVIEWER,
        "api_reviewer": API_REVIEWER if judged.department == names.MARKET else None,
    }
    path = out_dir / REPAIR_SAMPLE
    write_private(path, orjson.dumps(sample, option=orjson.OPT_INDENT_2))
    return path


def _ensure_reviewer(conn: Connection, department: str) -> str:
    password = new_password()
    exists = conn.execute(
        select(dashboard_users.c.name).where(dashboard_users.c.name == DEMO_REVIEWER)
    ).first()
    if exists is None:
        create_user(conn, DEMO_REVIEWER, REVIEWER, password, department=department)
    else:
        set_password(conn, DEMO_REVIEWER, password)
        conn.execute(
            update(dashboard_users)
            .where(dashboard_users.c.name == DEMO_REVIEWER)
            .values(department=department)
        )
    return password
