"""OWASP API7 (SSRF) and API10 (unsafe consumption of APIs): where the gateway
connects, and how much it takes from what answers.

The gateway calls out only to platforms named in deployment config (callback,
JWKS and feed URLs); clients' keys are registered inline and a JOSE header
naming a key URL is refused. Outbound calls go nowhere non-public unless the
host is allow-listed, follow no redirects, and read bounded bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from adapters.base import PlatformContext, PlatformServices
from adapters.chuangfu_tianfu import adapter as chuangfu_tianfu
from adapters.kechuangtong import adapter as kechuangtong
from adapters.kechuangtong.wire import ALERT_FIELDS
from gateway.keys import jose
from gateway.outbound import OutboundPolicy, OutboundRefused
from gateway.settings import Settings
from policies.consent import ConsentRules
from testkit.clients import ClientKey, new_key
from testkit.live import serve
from testkit.platforms import build_adapter
from tests.conftest import store_at

CONFIG = Path(__file__).resolve().parents[2] / "config"
ALERT = {name: "x" for name in ALERT_FIELDS}


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and Redis, as in production."""
    return store_at("postgresql", request)


class Listener:
    """A stand-in for an internal service: counts what reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.mode = "ok"
        self.app = Starlette(routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])])

    async def answer(self, request: Request) -> Response:
        if request.url.path == "/healthz":  # serve()'s readiness probe
            return Response()
        self.hits.append(request.url.path)
        if self.mode == "redirect":
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)
        if self.mode == "huge":

            async def endless() -> AsyncIterator[bytes]:
                yield b'{"keys": ['
                for _ in range(4096):  # 256 MiB if nobody stops reading
                    yield b" " * 65536

            return StreamingResponse(endless(), media_type="application/json")
        return JSONResponse({"keys": []})


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[Listener, int]]:
    found = Listener()
    with serve(found.app) as base:
        yield found, int(base.rsplit(":", 1)[1])


def context(
    tmp_path: Path, outbound: OutboundPolicy, **block: Any
) -> tuple[PlatformContext, dict[str, Any]]:
    ctx = PlatformContext(
        services=PlatformServices(),
        consent_rules=ConsentRules.load(CONFIG / "consent.yaml"),
        pii_key=b"k",
        state_dir=tmp_path,
        outbound=outbound,
    )
    return ctx, {"enabled": True, **block}


def build(key: str, made: tuple[PlatformContext, dict[str, Any]]) -> Any:
    ctx, block = made
    return build_adapter(key, block, ctx, object)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.8/jwks",
        "http://192.168.1.1/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://127.0.0.1:6379/",  # Redis, when loopback is not allow-listed
        "http://0.0.0.0/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
)
def test_configured_urls_to_private_targets_stop_start_up(tmp_path: Path, url: str) -> None:
    strict = OutboundPolicy.of([])
    (tmp_path / "secret").write_text("s")
    with pytest.raises(ValueError, match="callback_url"):
        build("kechuangtong", context(tmp_path, strict, secret_file="secret", callback_url=url))
    with pytest.raises(ValueError, match="jwks_url"):
        build("chuangfu-tianfu", context(tmp_path, strict, jwks_url=url))


def test_allow_listed_and_public_targets_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    listed = OutboundPolicy.of(["10.0.0.8"])
    build(
        "kechuangtong",
        context(tmp_path, listed, secret_file="secret", callback_url="http://10.0.0.8/cb"),
    )
    build("chuangfu-tianfu", context(tmp_path, listed, jwks_url="https://platform.example/jwks"))
    assert Settings().outbound_allowed_hosts == ["localhost", "127.0.0.1", "::1"]


async def test_a_name_resolving_to_loopback_is_refused_at_call_time(
    tmp_path: Path, listener: tuple[Listener, int]
) -> None:
    """A host name passes the config check; its addresses are checked on every call."""
    target, port = listener
    target.mode, target.hits = "ok", []
    (tmp_path / "secret").write_text("s")
    url = f"http://localhost:{port}/cb"
    strict = build(
        "kechuangtong",
        context(tmp_path, OutboundPolicy.of([]), secret_file="secret", callback_url=url),
    )
    with pytest.raises(OutboundRefused, match="not a public address"):
        await strict.notify("risk_alert", ALERT)
    with pytest.raises(chuangfu_tianfu.KeysUnavailable, match="not a public address"):
        await chuangfu_tianfu.fetch_jwks(f"http://localhost:{port}/jwks", OutboundPolicy.of([]))
    assert target.hits == []  # refused before connecting
    listed = build(
        "kechuangtong",
        context(tmp_path, OutboundPolicy.of(["localhost"]), secret_file="secret", callback_url=url),
    )
    await listed.notify("risk_alert", ALERT)
    assert target.hits == ["/cb"]


async def test_redirects_are_not_followed(tmp_path: Path, listener: tuple[Listener, int]) -> None:
    target, port = listener
    target.mode, target.hits = "redirect", []
    (tmp_path / "secret").write_text("s")
    adapter = build(
        "kechuangtong",
        context(
            tmp_path,
            OutboundPolicy(),
            secret_file="secret",
            callback_url=f"http://127.0.0.1:{port}/cb",
        ),
    )
    with pytest.raises(kechuangtong.NotificationFailed, match="302"):
        await adapter.notify("risk_alert", ALERT)
    assert target.hits == ["/cb"]
    transport = OutboundPolicy.of([]).transport()
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        # Even a client told to follow: each hop passes the guard again.
        with pytest.raises(OutboundRefused):
            await client.get(f"http://localhost:{port}/start")


async def test_an_oversized_key_set_is_cut_off(listener: tuple[Listener, int]) -> None:
    target, port = listener
    target.mode = "huge"
    with pytest.raises(chuangfu_tianfu.KeysUnavailable, match="too large"):
        await chuangfu_tianfu.fetch_jwks(f"http://127.0.0.1:{port}/jwks")


def test_a_key_url_in_a_client_assertion_is_never_fetched(
    app_client: TestClient, bank: ClientKey, listener: tuple[Listener, int]
) -> None:
    """The authorisation server never fetches a key it is pointed at (jku, x5u): an
    attacker's own key, offered by URL or inline, signs nothing we accept."""
    target, port = listener
    target.mode, target.hits = "ok", []
    attacker = new_key()
    for header in (
        {"jku": f"http://127.0.0.1:{port}/jwks"},
        {"x5u": f"http://127.0.0.1:{port}/cert.pem"},
        {"jwk": jose.public_jwk(attacker)},
    ):
        forged = ClientKey(bank.client_id, attacker, bank.kid).assertion(header=header)
        answer = app_client.post("/oauth/token", data=bank.form(forged))
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_client"
    assert target.hits == []
