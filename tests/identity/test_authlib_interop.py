"""A bank on Authlib's own OAuth client, against `xyd serve` over HTTP: README's
configuration works, Authlib's stock one is refused with a message saying why."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

from testkit.services import free_port, start_serve, stop_gently

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A seeded demo gateway: its issuer and state dir."""
    root = tmp_path_factory.mktemp("authlib")
    state, port = root / ".xyd", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    env |= {"XYD_STATE_DIR": str(state), "XYD_PORT": str(port)}
    for args in (("db", "upgrade"), ("demo", "seed", "--enterprises", "20", "--seed", "9")):
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    server = start_serve(env, root / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert server.poll() is None, (root / "serve.log").read_text()[-2000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield base, state
    finally:
        stop_gently(server)


def readme_authlib_block() -> str:
    match = re.search(r"```python\n(import json\nfrom authlib.*?)```", README.read_text(), re.S)
    assert match is not None, "README.md's bank section lost its Authlib block"
    return match.group(1)


def test_readme_authlib_configuration_fetches_tokens_and_calls_the_api(
    served: tuple[str, Path],
) -> None:
    base, state = served
    code = (state / "demo" / "enterprises.csv").read_text().splitlines()[1].split(",")[0]
    source = readme_authlib_block()
    source = source.replace("http://127.0.0.1:8000", base).replace(".xyd/", f"{state}/")
    scope: dict[str, Any] = {}
    exec(compile(source, "README.md", "exec"), scope)  # noqa: S102 - README's own block
    answer = scope["answer"]
    assert answer.status_code == 200, answer.text
    assert answer.json()["credit_code"] == code
    bank = scope["bank"]
    assert bank.token["token_type"].lower() == "bearer"
    # A second token: a new assertion with a new jti (a reused one is refused as a replay).
    first = bank.token["access_token"]
    bank.fetch_token()
    assert bank.token["access_token"] != first
    assert bank.get(f"{base}/v1/enterprises/{code}").status_code == 200


def test_authlibs_stock_private_key_jwt_is_refused_saying_why(served: tuple[str, Path]) -> None:
    base, state = served
    key = ECKey.import_key(json.loads((state / "demo" / "clients" / "demo-bank.jwk").read_text()))
    endpoint = base + "/oauth/token"
    expected = re.compile(r"exp is 3[56]\d\d s ahead; this gateway accepts at most 300 s")

    stock = OAuth2Client(
        "demo-bank", key, token_endpoint_auth_method=PrivateKeyJWT(endpoint, alg="ES256")
    )
    with stock, pytest.raises(OAuthError) as refused:
        stock.fetch_token(endpoint, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert expected.search(refused.value.description or ""), refused.value.description

    async def async_client() -> OAuthError:
        auth = PrivateKeyJWT(endpoint, alg="ES256")
        async with AsyncOAuth2Client("demo-bank", key, token_endpoint_auth_method=auth) as client:
            with pytest.raises(OAuthError) as caught:
                await client.fetch_token(endpoint, grant_type="client_credentials")
        return caught.value

    error = asyncio.run(async_client())
    assert expected.search(error.description or ""), error.description
