"""The demo identity provider (xyd_demo.oidc), over real HTTP: what `make demo`
serves for the gateway's enterprise login."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from gateway.keys import jose
from testkit.services import free_port
from xyd_demo.oidc.registration import REDIRECT_PATH
from xyd_demo.oidc.serve import serve
from xyd_demo.oidc.users import USERS_FILE, ensure_users

GATEWAY = "http://127.0.0.1:8000"
REDIRECT = GATEWAY + REDIRECT_PATH
ENTERPRISES = """credit_code,name,profile
91510100000000001A,成都甲公司,clean
91510100000000002B,成都乙公司,clean
91510100000000003C,成都丙公司,penalised
"""


@dataclass(frozen=True)
class Demo:
    issuer: str
    state_dir: Path
    client_id: str
    client_secret: str
    users: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    state_dir = tmp_path_factory.mktemp("state")
    (state_dir / "demo").mkdir()
    (state_dir / "demo" / "enterprises.csv").write_text(ENTERPRISES, encoding="utf-8")
    serving = serve(state_dir, "127.0.0.1", 8000)
    deadline = time.monotonic() + 20
    while not serving.server.started:
        assert time.monotonic() < deadline, "the provider did not start"
        time.sleep(0.05)
    client = json.loads((state_dir / "demo" / "oidc" / "client.json").read_text())
    rows = ensure_users(state_dir / "demo")
    yield Demo(
        serving.issuer,
        state_dir,
        client["client_id"],
        client["client_secret"],
        {row["username"]: row for row in rows},
    )
    serving.server.should_exit = True


def challenge(verifier: str) -> str:
    return jose.b64encode(hashlib.sha256(verifier.encode()).digest())


def authorize_params(demo: Demo, **changes: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": demo.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge("v" * 43),
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {name: value for name, value in params.items() if value is not None}


def hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


def log_in(
    browser: httpx.Client, url: str, username: str, password: str, **form: str | None
) -> httpx.Response:
    """Open the authorisation URL, fill in the form, post it; the answer unfollowed."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    fields: dict[str, str | None] = {
        **hidden(page.text),
        "username": username,
        "password": password,
        **form,
    }
    data = {name: value for name, value in fields.items() if value is not None}
    return browser.post(url.split("?")[0], data=data)


def submit(
    browser: httpx.Client, demo: Demo, form: dict[str, str], username: str, password: str
) -> httpx.Response:
    return browser.post(
        demo.issuer + "/authorize", data={**form, "username": username, "password": password}
    )


def redirected(answer: httpx.Response) -> dict[str, str]:
    """The query the provider sent the browser back to the gateway with."""
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def code_for(demo: Demo, username: str, verifier: str = "v" * 43) -> tuple[str, dict[str, str]]:
    params = authorize_params(demo, code_challenge=challenge(verifier))
    with httpx.Client() as browser:
        url = str(httpx.URL(demo.issuer + "/authorize", params=params))
        back = redirected(log_in(browser, url, username, demo.users[username]["password"]))
    assert back["state"] == params["state"] and back["iss"] == demo.issuer
    return back["code"], params


def exchange(demo: Demo, code: str, verifier: str = "v" * 43, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, **extra}  # fmt: skip
    return httpx.post(demo.issuer + "/token", data=form, auth=(demo.client_id, demo.client_secret))


def verified_claims(demo: Demo, id_token: str) -> dict[str, object]:
    keys = httpx.get(demo.issuer + "/jwks").json()["keys"]
    compact = jose.parse(id_token)
    (jwk,) = [key for key in keys if key["kid"] == compact.header["kid"]]
    jose.verify(compact, jose.public_key_from_jwk(jwk), frozenset({"ES256"}))
    assert compact.header["alg"] == "ES256"
    return compact.claims


# --- metadata and files ---------------------------------------------------------


def test_discovery_and_jwks_describe_an_es256_code_flow_provider(demo: Demo) -> None:
    meta = httpx.get(demo.issuer + "/.well-known/openid-configuration").json()
    assert meta["issuer"] == demo.issuer
    assert meta["authorization_endpoint"] == demo.issuer + "/authorize"
    assert meta["token_endpoint"] == demo.issuer + "/token"
    assert meta["response_types_supported"] == ["code"]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    (key,) = httpx.get(meta["jwks_uri"]).json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key
    assert key["kid"] == jose.thumbprint(jose.public_jwk(jose.public_key_from_jwk(key)))


def test_the_gateway_finds_its_registration_and_the_users_their_passwords(demo: Demo) -> None:
    demo_dir = demo.state_dir / "demo"
    issuer = (demo_dir / "oidc" / "issuer").read_text().strip()
    client = json.loads((demo_dir / "oidc" / "client.json").read_text())
    assert issuer == client["issuer"] == demo.issuer
    assert REDIRECT in client["redirect_uris"]
    for path in (demo_dir / USERS_FILE, *(demo_dir / "oidc").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    rows = list(demo.users.values())
    assert {(row["credit_code"], row["role"]) for row in rows} == {
        ("91510100000000001A", "legal_representative"),
        ("91510100000000001A", "agent"),
        ("91510100000000003C", "legal_representative"),
        ("91510100000000003C", "agent"),
    }  # the first enterprise of each profile, a person of each role
    assert len({row["password"] for row in rows}) == len(rows)


def test_users_are_kept_while_the_seed_names_them_and_remade_when_it_does_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "enterprises.csv").write_text(ENTERPRISES, encoding="utf-8")
    first = ensure_users(tmp_path)
    assert ensure_users(tmp_path) == first
    (tmp_path / "enterprises.csv").write_text(
        ENTERPRISES.replace("91510100000000001A", "91510100000000009X"), encoding="utf-8"
    )
    again = ensure_users(tmp_path)
    assert {row["username"] for row in again} == {row["username"] for row in first}
    assert not {row["password"] for row in again} & {row["password"] for row in first}


# --- the login --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_full_login_with_authlib_gives_a_verifiable_id_token(
    demo: Demo, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the demo serves plain HTTP
    username = "clean-rep"
    nonce = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    with OAuth2Client(
        demo.client_id, demo.client_secret, token_endpoint_auth_method=method,
        scope="openid", redirect_uri=REDIRECT, code_challenge_method="S256",
    ) as rp, httpx.Client() as browser:  # fmt: skip
        url, state = rp.create_authorization_url(
            demo.issuer + "/authorize", code_verifier=verifier, nonce=nonce
        )
        answer = log_in(browser, url, username, demo.users[username]["password"])
        token = rp.fetch_token(
            demo.issuer + "/token",
            authorization_response=answer.headers["location"],
            code_verifier=verifier,
            state=state,
        )
        userinfo = rp.get(demo.issuer + "/userinfo").json()
    claims = verified_claims(demo, token["id_token"])
    now = time.time()
    assert claims["iss"] == demo.issuer and claims["aud"] == demo.client_id
    assert claims["nonce"] == nonce
    assert claims["credit_code"] == "91510100000000001A"
    assert claims["xyd_role"] == "legal_representative"
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert claims["iat"] <= now + 1 and now < claims["exp"] <= claims["iat"] + 600
    assert claims["sub"] != username and username not in str(claims["sub"])
    assert userinfo == {"sub": claims["sub"], "credit_code": "91510100000000001A",
                        "xyd_role": "legal_representative"}  # fmt: skip
    digest = hashlib.sha256(token["access_token"].encode()).digest()
    assert claims["at_hash"] == jose.b64encode(digest[:16])


def test_the_subject_is_stable_per_person_and_differs_between_people(demo: Demo) -> None:
    def subject(username: str) -> object:
        code, _ = code_for(demo, username)
        return verified_claims(demo, exchange(demo, code).json()["id_token"])["sub"]

    assert subject("clean-agent") == subject("clean-agent") != subject("clean-rep")


def test_the_login_page_asks_for_the_browsers_help_and_loads_nothing(demo: Demo) -> None:
    url = str(httpx.URL(demo.issuer + "/authorize", params=authorize_params(demo)))
    page = httpx.get(url)
    assert page.status_code == 200
    assert 'autocomplete="username"' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    assert hidden(page.text)["csrf"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"form-action 'self' {GATEWAY}" in csp  # the form's redirect goes there
    assert page.headers["cache-control"] == "no-store"


# --- refusals at the login ---------------------------------------------------------


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(demo: Demo) -> None:
    url = str(httpx.URL(demo.issuer + "/authorize", params=authorize_params(demo)))
    with httpx.Client() as browser:
        page = browser.get(url)
        form = hidden(page.text)
        wrong = submit(browser, demo, form, "clean-rep", "guess-1234")
        unknown = submit(browser, demo, form, "nobody", "guess-1234")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.text == unknown.text
    assert "location" not in wrong.headers


def test_after_five_wrong_passwords_not_even_the_right_one_logs_in(demo: Demo) -> None:
    url = str(httpx.URL(demo.issuer + "/authorize", params=authorize_params(demo)))
    with httpx.Client() as browser:
        form = hidden(browser.get(url).text)
        answers = [submit(browser, demo, form, "clean-rep", f"wrong-{n}") for n in range(5)]
        late = submit(browser, demo, form, "clean-rep", demo.users["clean-rep"]["password"])
    assert [a.status_code for a in answers] == [400] * 5
    assert late.status_code == 403 and "location" not in late.headers


@pytest.mark.parametrize(
    ("form", "cookie"),
    [({"csrf": None}, True), ({"csrf": "forged"}, True), ({}, False)],
    ids=["no-csrf-token", "wrong-csrf-token", "another-browser"],
)
def test_a_form_without_its_csrf_token_or_cookie_logs_nobody_in(
    demo: Demo, form: dict[str, str | None], cookie: bool
) -> None:
    url = str(httpx.URL(demo.issuer + "/authorize", params=authorize_params(demo)))
    password = demo.users["clean-rep"]["password"]
    with httpx.Client() as browser:
        fields = {**hidden(browser.get(url).text), "username": "clean-rep",
                  "password": password, **form}  # fmt: skip
        data = {name: value for name, value in fields.items() if value is not None}
        if not cookie:
            browser.cookies.clear()
        answer = browser.post(demo.issuer + "/authorize", data=data)
    assert answer.status_code == 403
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain", "code_challenge": "v" * 43}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
    ],
    ids=["no-pkce", "no-method", "plain-pkce", "no-nonce", "no-state", "implicit",
         "hybrid", "no-openid"],
)  # fmt: skip
def test_a_request_that_breaks_the_profile_goes_back_with_an_error(
    demo: Demo, changes: dict[str, str | None], error: str
) -> None:
    params = authorize_params(demo, **changes)
    answer = httpx.get(demo.issuer + "/authorize", params=params)
    back = redirected(answer)
    assert back["error"] == error and "code" not in back
    assert back["iss"] == demo.issuer
    assert back.get("state") == params.get("state")


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": REDIRECT + "/extra"},
        {"redirect_uri": REDIRECT + "?next=https://evil.example"},
        {"redirect_uri": REDIRECT.upper()},
        {"redirect_uri": None},
        {"client_id": "someone-else"},
    ],
    ids=["foreign", "longer-path", "extra-query", "case", "missing", "unknown-client"],
)
def test_an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    demo: Demo, changes: dict[str, str | None]
) -> None:
    answer = httpx.get(demo.issuer + "/authorize", params=authorize_params(demo, **changes))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "evil.example" not in answer.text


def test_hostile_authorisation_requests_get_a_4xx(demo: Demo) -> None:
    base = demo.issuer + "/authorize?" + str(httpx.QueryParams(authorize_params(demo)))
    repeated = httpx.get(base + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb")
    long = httpx.get(demo.issuer + "/authorize", params=authorize_params(demo, state="s" * 5000))
    huge_form = httpx.post(demo.issuer + "/authorize", data={"request": "x" * 10_000})
    not_a_form = httpx.post(demo.issuer + "/authorize", json={"request": "x"})
    unknown = httpx.post(demo.issuer + "/authorize", data={"request": "x", "csrf": "y"})
    for answer in (repeated, long, huge_form, not_a_form, unknown):
        assert answer.status_code == 400, answer.text
        assert "location" not in answer.headers


# --- refusals at the token endpoint --------------------------------------------------


def test_a_wrong_code_verifier_is_refused_and_spends_the_code(demo: Demo) -> None:
    code, _ = code_for(demo, "clean-rep")
    wrong = exchange(demo, code, verifier="w" * 43)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert exchange(demo, code).json()["error"] == "invalid_grant"


def test_a_code_is_single_use_and_a_replay_revokes_what_it_gave(demo: Demo) -> None:
    code, _ = code_for(demo, "penalised-agent")
    first = exchange(demo, code)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    access = first.json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert httpx.get(demo.issuer + "/userinfo", headers=headers).status_code == 200
    again = exchange(demo, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert httpx.get(demo.issuer + "/userinfo", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("extra", "auth", "status", "error"),
    [
        ({"redirect_uri": GATEWAY + "/elsewhere"}, None, 400, "invalid_grant"),
        ({}, ("someone", "secret"), 401, "invalid_client"),
        ({}, "wrong-secret", 401, "invalid_client"),
        ({"client_secret": "also-posted"}, None, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, None, 400, "unsupported_grant_type"),
        ({"code": "made-up"}, None, 400, "invalid_grant"),
    ],
    ids=["other-redirect", "unknown-client", "wrong-secret", "two-auth-methods",
         "other-grant", "made-up-code"],
)  # fmt: skip
def test_the_token_endpoint_refuses_in_the_oauth_format(
    demo: Demo,
    extra: dict[str, str],
    auth: tuple[str, str] | str | None,
    status: int,
    error: str,
) -> None:
    code, _ = code_for(demo, "clean-agent")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": "v" * 43, **extra}  # fmt: skip
    credentials = (
        (demo.client_id, auth)
        if isinstance(auth, str)
        else auth or (demo.client_id, demo.client_secret)
    )
    answer = httpx.post(demo.issuer + "/token", data=form, auth=credentials)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error


def test_hostile_token_requests_get_a_4xx(demo: Demo) -> None:
    auth = (demo.client_id, demo.client_secret)
    token = demo.issuer + "/token"
    garbled = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    answers = [
        httpx.post(token, data={"code": "x" * 10_000}, auth=auth),
        httpx.post(token, json={"grant_type": "authorization_code"}, auth=auth),
        httpx.post(token, content=b"code=a&code=b", auth=auth,
                   headers={"Content-Type": "application/x-www-form-urlencoded"}),
        httpx.post(token, data={"grant_type": "authorization_code"}, headers=garbled),
        httpx.post(token, data={"grant_type": "authorization_code"}),
    ]  # fmt: skip
    assert [answer.status_code for answer in answers] == [400, 400, 400, 401, 401]
    assert all("error" in answer.json() for answer in answers)


# --- the command --------------------------------------------------------------------


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_xyd_demo_oidc_serves_on_the_port_it_is_given_until_stopped(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "enterprises.csv").write_text(ENTERPRISES, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path), "XYD_DEMO_OIDC_PORT": str(port)}
    command = [sys.executable, "-m", "gateway.cli", "demo", "oidc"]
    # Started as make demo starts it, in the background: SIGINT ignored on entry.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=_ignore_interrupts
    )
    try:
        assert process.stdout is not None
        assert (
            process.stdout.readline().strip() == f"demo identity provider: http://127.0.0.1:{port}"
        )
        # Both lines read: the command is in its wait, and nothing it writes
        # is left to fill the pipe while it stops.
        assert process.stdout.readline().startswith("its users and passwords: ")
        issuer = (tmp_path / "demo" / "oidc" / "issuer").read_text().strip()
        meta = httpx.get(issuer + "/.well-known/openid-configuration").json()
        assert meta["issuer"] == issuer == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_xyd_demo_oidc_wants_the_seed_first(tmp_path: Path) -> None:
    env = {**os.environ, "XYD_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "gateway.cli", "demo", "oidc"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "xyd demo seed" in done.stderr


def test_the_repair_samples_enterprise_has_its_people(tmp_path: Path) -> None:
    # The README's repair walk logs in as the sample enterprise's person.
    (tmp_path / "enterprises.csv").write_text(ENTERPRISES, encoding="utf-8")
    before = ensure_users(tmp_path)
    assert "repairable-rep" not in {row["username"] for row in before}
    sample = {"credit_code": "91510100000000077Q", "record_id": 1}
    (tmp_path / "repair-sample.json").write_text(json.dumps(sample), encoding="utf-8")
    rows = {row["username"]: row for row in ensure_users(tmp_path)}
    assert rows["repairable-rep"]["credit_code"] == "91510100000000077Q"
    assert rows["repairable-rep"]["role"] == "legal_representative"
    assert rows["repairable-agent"]["role"] == "agent"
