"""The dashboard login under attack (issue 19, item 9 and the dashboard's Low items):
throttled per source and overall before any scrypt, locked by (name, source) so an
outsider cannot lock an officer out, one answer for unknown and real names, the
password policy, `xyd users disable | enable | reset-password | logout-all`, and a
live stream that ends as soon as its session does."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from httpx import Response
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as cli
from gateway.dashboard import accounts
from gateway.dashboard.router import SESSION_COOKIE
from gateway.errors import InvalidValue
from gateway.settings import Settings
from gateway.store.tables import dashboard_sessions
from testkit.live import serve
from testkit.services import RedisServer

PASSWORD = "correct horse battery"
OFFICER = "wang.fang"
WRONG_EN = "Wrong name or password"
LOCKED_EN = "Too many attempts, try again later"


def with_source(app: ASGIApp) -> ASGIApp:
    """The app, seeing each request come from the address in its X-Test-Source header:
    one test client plays several machines."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"x-test-source")
            if given:
                scope = {**scope, "client": (given.decode(), 40000)}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def plain_settings(settings: Settings) -> Settings:
    settings.run_background = False
    settings.run_embedded_monitor = False
    return settings


@pytest.fixture(params=["memory", "redis"])
def login_settings(plain_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The throttle's two backends: this process's memory, or Redis."""
    settings = plain_settings
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_srv")
        redis.Redis.from_url(server.url).flushall()
        settings.redis_url = server.url
    return settings


def client_of(settings: Settings) -> TestClient:
    return TestClient(with_source(create_app(settings)), raise_server_exceptions=False)


@pytest.fixture
def client(login_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with client_of(login_settings) as test_client:
        yield test_client


@pytest.fixture
def plain_client(plain_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with client_of(plain_settings) as test_client:
        yield test_client


def make_user(engine: Engine, name: str = OFFICER, role: str = "risk_officer") -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, name, role, PASSWORD)


def login(client: TestClient, name: str, password: str, source: str = "10.0.0.1") -> Response:
    client.cookies.clear()  # a logged-in browser is sent from the login page to the board
    page = client.get("/dashboard/login?lang=en")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return client.post(
        "/dashboard/login?lang=en",
        data={"name": name, "password": password, "csrf": match.group(1)},
        headers={"X-Test-Source": source},
        follow_redirects=False,
    )


def scrypts() -> float:
    return REGISTRY.get_sample_value("xyd_dashboard_password_checks_total") or 0.0


def test_a_flood_from_one_source_is_refused_before_any_scrypt(client: TestClient) -> None:
    before = scrypts()
    answers = [login(client, f"guess{n}", "not the password").status_code for n in range(40)]
    hashed = scrypts() - before
    # The source's burst (10) is hashed; every other attempt is refused unhashed.
    assert answers[:10] == [401] * 10
    assert answers.count(429) >= 29
    assert hashed <= 11
    refused = login(client, "guess-more", "not the password")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert LOCKED_EN in refused.text
    # Another machine is not throttled by that one.
    assert login(client, "guess-other", "x", source="10.0.0.2").status_code == 401


def test_a_flood_from_many_sources_meets_the_overall_limit_but_not_a_known_officer(
    login_settings: Settings, engine: Engine
) -> None:
    login_settings.login_overall_burst = 6
    login_settings.login_overall_per_s = 0.01
    make_user(engine)
    with client_of(login_settings) as client:
        # The officer logs in from their desk once: that pair is known from now on.
        assert login(client, OFFICER, PASSWORD, source="10.9.9.9").status_code == 303
        before = scrypts()
        flood = [login(client, OFFICER, "guess", source=f"10.1.0.{n}") for n in range(1, 25)]
        assert scrypts() - before <= 6
        assert [r.status_code for r in flood].count(429) >= 18
        # The officer, from where they work, still gets in; from a new place, waits.
        assert login(client, OFFICER, PASSWORD, source="10.9.9.9").status_code == 303
        assert login(client, OFFICER, PASSWORD, source="10.2.0.1").status_code == 429


def test_an_outsider_cannot_lock_an_officer_out(client: TestClient, engine: Engine) -> None:
    make_user(engine)
    outsider = [login(client, OFFICER, f"guess {n}", source="192.0.2.7") for n in range(8)]
    assert [r.status_code for r in outsider] == [401] * 5 + [429] * 3
    # Even the right password from the outsider's address waits now ...
    assert login(client, OFFICER, PASSWORD, source="192.0.2.7").status_code == 429
    # ... but the officer, from their own address, logs straight in.
    assert login(client, OFFICER, PASSWORD, source="10.0.0.8").status_code == 303


def test_ipv6_sources_are_throttled_by_their_slash_64(client: TestClient) -> None:
    answers = [
        login(client, f"guess{n}", "x", source=f"2001:db8:0:1::{n:x}").status_code
        for n in range(1, 14)
    ]
    assert answers.count(429) >= 2


def test_a_right_password_gives_the_tries_back(client: TestClient, engine: Engine) -> None:
    make_user(engine)
    for _ in range(4):
        assert login(client, OFFICER, "nope").status_code == 401
    assert login(client, OFFICER, PASSWORD).status_code == 303
    for _ in range(4):
        assert login(client, OFFICER, "nope").status_code == 401


def test_unknown_and_real_names_answer_alike(login_settings: Settings, engine: Engine) -> None:
    login_settings.login_source_burst = 100
    make_user(engine)
    with client_of(login_settings) as client:
        login(client, "warm-up", "x", source="10.3.0.9")  # the first scrypt pays for imports
        seen: dict[str, list[tuple[int, str, str | None, float]]] = {}
        for name in (OFFICER, "no.such.officer"):
            seen[name] = []
            for _ in range(7):
                before = scrypts()
                response = login(client, name, "not the password", source="10.3.0.1")
                hashed = scrypts() - before
                # The form's CSRF token is fresh per page: everything else must match.
                body = re.sub(r'name="csrf" value="[^"]+"', "", response.text)
                seen[name].append(
                    (response.status_code, body, response.headers.get("Retry-After"), hashed)
                )
    real, unknown = seen[OFFICER], seen["no.such.officer"]
    assert [r[0] for r in real] == [r[0] for r in unknown] == [401] * 5 + [429] * 2
    assert [r[1] for r in real] == [r[1] for r in unknown]
    assert [r[2] is None for r in real] == [r[2] is None for r in unknown]
    # Both pay one scrypt per checked attempt (neither is a fast path a clock could
    # tell apart), and none once throttled. Counted, not timed.
    assert [r[3] for r in real] == [r[3] for r in unknown] == [1.0] * 5 + [0.0] * 2


# --- the password policy ------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        " " * 12,
        "\t \u3000" * 4,
        "password1234",
        "Password1234!",
        "Pass Word 2024",
        "QWERTYUIOP!!",
        "123456789012",
        "2024-01-01 12:00",
        "my-wang.fang-pass",  # contains the user name
        "MY WANG.FANG SECRET",
        "short",
        "x" * 1025,
    ],
)
def test_the_password_policy_refuses(engine: Engine, password: str) -> None:
    with pytest.raises(InvalidValue), engine.begin() as conn:
        accounts.create_user(conn, OFFICER, "risk_officer", password)


def test_the_password_policy_accepts_long_uncommon_passphrases(engine: Engine) -> None:
    with engine.begin() as conn:
        accounts.create_user(conn, OFFICER, "risk_officer", "correct horse battery")
        accounts.create_user(conn, "li.na", "auditor", "溪水向东流 三千里路云和月")
        accounts.create_user(conn, "zhao.lei", "auditor", accounts.new_password())


# --- xyd users ------------------------------------------------------------------------


def run(settings: Settings, *args: str, stdin: str | None = None) -> Any:
    env = {"XYD_DATABASE_URL": settings.effective_database_url,
           "XYD_STATE_DIR": str(settings.state_dir)}  # fmt: skip
    return CliRunner().invoke(cli, ["users", *args], env=env, input=stdin)


def logged_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    assert login(client, name, password).status_code == 303
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    return token


def opens(client: TestClient, token: str) -> bool:
    client.cookies.set(SESSION_COOKIE, token, path="/dashboard")
    return client.get("/dashboard", follow_redirects=False).status_code == 200


def test_users_disable_ends_sessions_at_once_and_enable_lets_in_again(
    plain_client: TestClient, plain_settings: Settings, engine: Engine
) -> None:
    make_user(engine)
    token = logged_in(plain_client, OFFICER)
    result = run(plain_settings, "disable", OFFICER)
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.stdout
    assert not opens(plain_client, token)
    refused = login(plain_client, OFFICER, PASSWORD)
    assert refused.status_code == 401
    assert WRONG_EN in refused.text  # the same answer as a wrong password
    assert run(plain_settings, "enable", OFFICER).exit_code == 0
    assert login(plain_client, OFFICER, PASSWORD).status_code == 303


def test_users_reset_password_replaces_it_and_ends_sessions(
    plain_client: TestClient, plain_settings: Settings, engine: Engine
) -> None:
    make_user(engine)
    token = logged_in(plain_client, OFFICER)
    weak = run(plain_settings, "reset-password", OFFICER, "--password-stdin",
               stdin="password1234\n")  # fmt: skip
    assert weak.exit_code == 2
    assert "commonly used" in weak.output
    assert opens(plain_client, token)  # a refused reset changed nothing
    result = run(plain_settings, "reset-password", OFFICER)
    assert result.exit_code == 0, result.output
    new = result.stdout.strip().splitlines()[-1]
    assert not opens(plain_client, token)
    assert login(plain_client, OFFICER, PASSWORD).status_code == 401
    assert login(plain_client, OFFICER, new).status_code == 303
    piped = run(plain_settings, "reset-password", OFFICER, "--password-stdin",
                stdin="a brand new passphrase\n")  # fmt: skip
    assert piped.exit_code == 0, piped.output
    assert "a brand new passphrase" not in piped.stdout
    assert login(plain_client, OFFICER, "a brand new passphrase").status_code == 303


def test_users_logout_all_ends_one_accounts_or_every_session(
    plain_client: TestClient, plain_settings: Settings, engine: Engine
) -> None:
    make_user(engine)
    make_user(engine, "li.na", "auditor")
    officer = logged_in(plain_client, OFFICER)
    auditor = logged_in(plain_client, "li.na")
    result = run(plain_settings, "logout-all", OFFICER)
    assert result.exit_code == 0, result.output
    assert not opens(plain_client, officer)
    assert opens(plain_client, auditor)
    assert run(plain_settings, "logout-all").exit_code == 0
    assert not opens(plain_client, auditor)
    with engine.connect() as conn:
        assert conn.execute(select(dashboard_sessions)).first() is None


def test_users_commands_refuse_an_unknown_name(plain_settings: Settings) -> None:
    for args in (["disable", "nobody"], ["enable", "nobody"], ["reset-password", "nobody"],
                 ["logout-all", "nobody"]):  # fmt: skip
        result = run(plain_settings, *args)
        assert result.exit_code == 2, args
        assert "no dashboard user nobody" in result.output


# --- a live stream ends with its session ----------------------------------------------


def _read_stream(base: str, token: str, lines: list[tuple[float, str]]) -> None:
    cookies = {SESSION_COOKIE: token}
    with httpx.stream("GET", base + "/dashboard/stream", cookies=cookies, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            lines.append((time.monotonic(), line))


@pytest.mark.parametrize("end", ["logout", "logout-all", "disable"])
def test_a_stream_ends_within_two_seconds_of_its_session(
    plain_settings: Settings, engine: Engine, end: str
) -> None:
    make_user(engine)
    with serve(create_app(plain_settings)) as base, httpx.Client(base_url=base) as http:
        page = http.get("/dashboard/login?lang=en")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        http.post("/dashboard/login", data={"name": OFFICER, "password": PASSWORD,
                                            "csrf": csrf.group(1)})  # fmt: skip
        token = http.cookies.get(SESSION_COOKIE)
        assert token
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=_read_stream, args=(base, token, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines, "the stream never opened"
        ended_at = time.monotonic()
        if end == "logout":
            board = http.get("/dashboard")
            found = re.search(r'name="csrf" value="([^"]+)"', board.text)
            assert found is not None
            assert http.post("/dashboard/logout", data={"csrf": found.group(1)}).status_code == 303
        else:
            assert run(plain_settings, end, OFFICER).exit_code == 0
        reader.join(timeout=5)
        assert not reader.is_alive(), "the stream still runs 5 s after its session ended"
    ended = [at for at, line in lines if line == "event: session-ended"]
    assert ended, lines
    assert ended[0] - ended_at < 2.0
