"""The department reviewer's pages: its queue only, the application with its
commitment and evidence (attachments), decisions by form with CSRF; the risk
officers' dashboard flags applications past their review time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.dashboard import accounts
from gateway.identity.clients import get_client
from gateway.settings import Settings
from gateway.store.tables import repair_applications
from testkit.builders import MARKET, TAX
from testkit.clients import register
from tests.dashboard.test_login import PASSWORD, login
from tests.repairs.test_api import World
from tests.repairs.test_evidence import PDF_BYTES


def reviewer(engine: Engine, name: str, department: str) -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, name, accounts.REVIEWER, PASSWORD, department=department)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def test_a_reviewer_works_its_own_queue(app_client: TestClient, engine: Engine) -> None:
    world = World(app_client, engine)
    application = world.apply().json()
    reviewer(engine, "li.market", MARKET)
    client = app_client
    assert login(client, "li.market", PASSWORD).status_code == 303
    landing = client.get("/dashboard", follow_redirects=False)
    assert landing.headers["location"].startswith("/dashboard/repairs")
    queue = client.get("/dashboard/repairs")
    assert application["id"] in queue.text and "部门审核员" in queue.text
    page = client.get(f"/dashboard/repairs/{application['id']}")
    assert page.status_code == 200
    assert "违背上述承诺" in page.text  # the commitment, in full
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    link = f"/dashboard/repairs/{application['id']}/evidence/{application['evidence'][0]['id']}"
    assert link in page.text
    file = client.get(link)
    assert file.content == PDF_BYTES
    assert file.headers["content-disposition"].startswith("attachment;")
    assert file.headers["x-content-type-options"] == "nosniff"
    # Nothing else of the dashboard.
    assert client.get("/dashboard/alerts/alr_x", follow_redirects=False).status_code == 303
    assert client.get("/dashboard/stream").status_code == 403

    url = f"/dashboard/repairs/{application['id']}/decision"
    token = csrf_of(page.text)
    no_csrf = client.post(url, data={"decision": "approve"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    no_reason = client.post(url, data={"decision": "reject", "csrf": token})
    assert no_reason.status_code == 422
    done = client.post(url, data={"decision": "approve", "csrf": token}, follow_redirects=False)
    assert done.status_code == 303, done.text
    decided = client.get("/v1/repairs?status=approved", headers=world.market).json()["items"]
    assert [(a["id"], a["decision"]["decided_by"]) for a in decided] == [
        (application["id"], "user:li.market")
    ]
    again = client.post(url, data={"decision": "approve", "csrf": token}, follow_redirects=False)
    assert again.headers["location"].endswith("msg=stale")


def test_another_departments_reviewer_sees_nothing_of_it(
    app_client: TestClient, engine: Engine
) -> None:
    world = World(app_client, engine)
    application = world.apply().json()
    reviewer(engine, "zhao.tax", TAX)
    assert login(app_client, "zhao.tax", PASSWORD).status_code == 303
    assert application["id"] not in app_client.get("/dashboard/repairs").text
    assert app_client.get(f"/dashboard/repairs/{application['id']}").status_code == 404
    evidence = f"/dashboard/repairs/{application['id']}/evidence/1"
    assert app_client.get(evidence).status_code == 404
    page = app_client.get("/dashboard/repairs")
    refused = app_client.post(
        f"/dashboard/repairs/{application['id']}/decision",
        data={"decision": "approve", "csrf": csrf_of(page.text)},
    )
    assert refused.status_code == 404


def test_officers_see_applications_past_their_review_time(
    app_client: TestClient, engine: Engine
) -> None:
    world = World(app_client, engine)
    application = world.apply().json()
    with engine.begin() as conn:
        accounts.create_user(conn, "wang.fang", "risk_officer", PASSWORD)
    assert login(app_client, "wang.fang", PASSWORD).status_code == 303
    assert "data-repairs-overdue" not in app_client.get("/dashboard").text
    with engine.begin() as conn:
        conn.execute(
            update(repair_applications)
            .where(repair_applications.c.id == application["id"])
            .values(review_due_at=datetime.now(UTC) - timedelta(days=1))
        )
    page = app_client.get("/dashboard").text
    assert re.search(r"data-repairs-overdue>1<", page)
    assert application["id"] in page and "超过审核时限" in page
    # An officer does not decide repairs.
    assert app_client.get("/dashboard/repairs", follow_redirects=False).status_code == 303


def test_reviewer_accounts_name_their_department(engine: Engine) -> None:
    import pytest

    from gateway.errors import InvalidValue

    with engine.begin() as conn, pytest.raises(InvalidValue):
        accounts.create_user(conn, "a.b", accounts.REVIEWER, PASSWORD)
    with engine.begin() as conn, pytest.raises(InvalidValue):
        accounts.create_user(conn, "a.c", "risk_officer", PASSWORD, department=MARKET)


def test_the_cli_creates_a_reviewer_for_a_department(settings: Settings, engine: Engine) -> None:
    env = {
        "XYD_DATABASE_URL": settings.effective_database_url,
        "XYD_STATE_DIR": str(settings.state_dir),
    }
    runner = CliRunner()
    create = ["users", "create", "li.market", "--role", accounts.REVIEWER, "--password-stdin"]
    made = runner.invoke(
        cli, [*create, "--department", "11510100000100378A"], env=env, input=f"{PASSWORD}\n"
    )
    assert made.exit_code == 0, made.output
    unknown = runner.invoke(cli, [*create[:2], "x.y", *create[3:], "--department", "不存在的局"],
                            env=env, input=f"{PASSWORD}\n")  # fmt: skip
    assert unknown.exit_code == 2 and "departments.yaml" in unknown.output
    with engine.begin() as conn:
        session, _ = accounts.create_session(conn, "li.market", datetime.now(UTC))
        found = accounts.get_session(conn, session, datetime.now(UTC))
    assert found is not None and (found.role, found.department) == (accounts.REVIEWER, MARKET)


def test_department_clients_get_the_review_scope(engine: Engine) -> None:
    register(engine, "dept-x", client_type="department")
    register(engine, "kct-x", client_type="platform")
    with engine.connect() as conn:
        department, platform = get_client(conn, "dept-x"), get_client(conn, "kct-x")
    assert department is not None and "repairs:review" in department.scopes
    assert platform is not None and "repairs:review" not in platform.scopes
