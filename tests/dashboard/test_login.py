"""Dashboard login: accounts, sessions and CSRF, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx import Response
from sqlalchemy import Column, Engine, select, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as cli
from gateway.dashboard import accounts
from gateway.dashboard.router import PRE_COOKIE, SESSION_COOKIE
from gateway.errors import InvalidValue
from gateway.settings import Settings
from gateway.store.tables import dashboard_sessions, dashboard_users

PASSWORD = "correct horse battery"
WRONG_EN = "Wrong name or password"
LOCKED_EN = "Too many attempts, try again later"


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    settings.run_background = False
    settings.run_embedded_monitor = False
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def make_user(engine: Engine, name: str = "wang.fang", role: str = "risk_officer") -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, name, role, PASSWORD)


def login_csrf(client: TestClient, lang: str = "en") -> str:
    page = client.get(f"/dashboard/login?lang={lang}")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def login(client: TestClient, name: str, password: str, csrf: str | None = None) -> Response:
    token = csrf if csrf is not None else login_csrf(client)
    return client.post(
        "/dashboard/login?lang=en",
        data={"name": name, "password": password, "csrf": token},
        follow_redirects=False,
    )


def page_csrf(client: TestClient) -> str:
    page = client.get("/dashboard", follow_redirects=False)
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def test_login_sets_a_strict_httponly_cookie_and_shows_the_user(
    client: TestClient, engine: Engine
) -> None:
    make_user(engine, role="auditor")
    response = login(client, "wang.fang", PASSWORD)
    assert response.status_code == 303
    cookie = next(
        v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # the test server's base URL is http
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "wang.fang" in page.text
    assert "auditor" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_cookie_is_secure_behind_https(settings: Settings, engine: Engine) -> None:
    settings.public_base_url = "https://xyd.example"
    settings.run_background = False
    settings.run_embedded_monitor = False
    with TestClient(create_app(settings)) as test_client:
        page = test_client.get("/dashboard/login")
    assert "Secure" in page.headers["set-cookie"]


def test_login_page_is_chinese_with_an_english_switch(client: TestClient) -> None:
    page = client.get("/dashboard/login")
    assert "用户名" in page.text
    assert 'href="/dashboard/login?lang=en"' in page.text
    assert "Password" in client.get("/dashboard/login?lang=en").text


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, engine: Engine
) -> None:
    make_user(engine)
    wrong = login(client, "wang.fang", "not the password")
    unknown = login(client, "nobody", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert WRONG_EN in response.text
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_login_without_or_with_a_forged_csrf_token_is_403(
    client: TestClient, engine: Engine
) -> None:
    make_user(engine)
    login_csrf(client)
    forged = login(client, "wang.fang", PASSWORD, csrf="forged")
    missing = client.post(
        "/dashboard/login", data={"name": "wang.fang", "password": PASSWORD}, follow_redirects=False
    )
    assert forged.status_code == missing.status_code == 403
    # No pre-session cookie at all: the form's token has nothing to match.
    real = login_csrf(client)
    client.cookies.delete(PRE_COOKIE, path="/dashboard")
    assert login(client, "wang.fang", PASSWORD, csrf=real).status_code == 403


def test_logout_checks_csrf_and_destroys_the_session(client: TestClient, engine: Engine) -> None:
    make_user(engine)
    login(client, "wang.fang", PASSWORD)
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    csrf = page_csrf(client)
    for data in ({}, {"csrf": "forged"}):
        response = client.post("/dashboard/logout", data=data, follow_redirects=False)
        assert response.status_code == 403
    response = client.post("/dashboard/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    with engine.connect() as conn:
        assert conn.execute(select(dashboard_sessions)).first() is None
    # The old cookie, replayed, no longer opens the dashboard.
    client.cookies.set(SESSION_COOKIE, token, path="/dashboard")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "column", [dashboard_sessions.c.last_seen_at, dashboard_sessions.c.created_at]
)
def test_an_expired_session_redirects_to_login(
    client: TestClient, engine: Engine, column: Column[datetime]
) -> None:
    make_user(engine)
    login(client, "wang.fang", PASSWORD)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    ago = datetime.now(UTC) - timedelta(hours=25)
    with engine.begin() as conn:
        conn.execute(update(dashboard_sessions).values({column.name: ago}))
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"


def test_idle_timeout_is_eight_hours(engine: Engine) -> None:
    make_user(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        token, _ = accounts.create_session(conn, "wang.fang", now)
        assert accounts.get_session(conn, token, now + timedelta(hours=7, minutes=59))
        accounts.touch_session(conn, token, now + timedelta(hours=7, minutes=59))
        # Touched: alive at 15 h; but never past 24 h however active.
        assert accounts.get_session(conn, token, now + timedelta(hours=15))
        accounts.touch_session(conn, token, now + timedelta(hours=23, minutes=59))
        assert accounts.get_session(conn, token, now + timedelta(hours=24)) is None


def test_the_session_table_stores_only_the_token_hash(client: TestClient, engine: Engine) -> None:
    make_user(engine)
    login(client, "wang.fang", PASSWORD)
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    with engine.connect() as conn:
        row = conn.execute(select(dashboard_sessions)).one()
    assert row.id == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in row}


def test_roles_are_stored_and_checked(engine: Engine) -> None:
    make_user(engine, "li.officer", "risk_officer")
    make_user(engine, "zhao.audit", "auditor")
    with engine.connect() as conn:
        roles = dict(conn.execute(select(dashboard_users.c.name, dashboard_users.c.role)).all())
    assert roles == {"li.officer": "risk_officer", "zhao.audit": "auditor"}
    with pytest.raises(InvalidValue), engine.begin() as conn:
        accounts.create_user(conn, "x", "admin", PASSWORD)
    with pytest.raises(accounts.UserExists), engine.begin() as conn:
        accounts.create_user(conn, "zhao.audit", "auditor", PASSWORD)


def test_cli_creates_a_user_whose_password_works(settings: Settings, engine: Engine) -> None:
    env = {
        "XYD_DATABASE_URL": settings.effective_database_url,
        "XYD_STATE_DIR": str(settings.state_dir),
    }
    runner = CliRunner()
    result = runner.invoke(cli, ["users", "create", "chen.risk", "--role", "risk_officer"], env=env)
    assert result.exit_code == 0, result.output
    password = result.stdout.strip().splitlines()[-1]
    piped = runner.invoke(
        cli,
        ["users", "create", "sun.audit", "--role", "auditor", "--password-stdin"],
        env=env,
        input="a long enough password\n",
    )
    assert piped.exit_code == 0, piped.output
    assert "a long enough password" not in piped.stdout
    again = runner.invoke(cli, ["users", "create", "chen.risk", "--role", "auditor"], env=env)
    assert again.exit_code == 2
    with engine.begin() as conn:
        ok = accounts.verify_login(conn, "chen.risk", password)
        piped_ok = accounts.verify_login(conn, "sun.audit", "a long enough password")
    assert (ok.outcome, ok.role) == (accounts.Outcome.OK, "risk_officer")
    assert (piped_ok.outcome, piped_ok.role) == (accounts.Outcome.OK, "auditor")


def test_form_bodies_are_bounded_and_urlencoded(client: TestClient) -> None:
    csrf = login_csrf(client)
    big = client.post("/dashboard/login", data={"csrf": csrf, "name": "x" * 5000})
    assert big.status_code == 413
    as_json = client.post("/dashboard/login", json={"csrf": csrf, "name": "x"})
    assert as_json.status_code == 415


def test_the_demo_officer_can_log_in_with_the_written_password(
    engine: Engine, tmp_path: Path
) -> None:
    from gateway.dashboard.accounts import verify_login
    from xyd_demo.users import ensure_demo_officer

    with engine.begin() as conn:
        first = ensure_demo_officer(conn, tmp_path).read_text().strip()
    with engine.begin() as conn:
        path = ensure_demo_officer(conn, tmp_path)  # a second seed re-keys it
    second = path.read_text().strip()
    assert first != second
    assert path.stat().st_mode & 0o777 == 0o600
    with engine.begin() as conn:
        assert verify_login(conn, "demo-officer", second).outcome.name == "OK"
        assert verify_login(conn, "demo-officer", first).outcome.name != "OK"
