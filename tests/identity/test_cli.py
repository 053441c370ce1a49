"""`xyd clients …` and `xyd keys rotate` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from gateway.keys import jose
from testkit.clients import new_key


def xyd(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XYD_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_client_lifecycle_and_key_rotation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert xyd(state, "db", "upgrade").returncode == 0
    jwk_file = tmp_path / "bank.jwk"
    jwk_file.write_bytes(orjson.dumps({**jose.public_jwk(new_key()), "kid": "k1"}))
    created = xyd(
        state, "clients", "create", "bank-z", "--type", "bank", "--jwks", str(jwk_file),
        "--org-code", "ZB", "--scope", "reports:read",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "registered bank-z (bank): reports:read" in created.stdout
    again = xyd(state, "clients", "create", "bank-z", "--type", "bank", "--jwks", str(jwk_file))
    assert again.returncode == 2
    assert "already exists" in again.stderr
    private = tmp_path / "private.jwk"
    private.write_bytes(orjson.dumps({**jose.private_jwk(new_key()), "kid": "bad"}))  # type: ignore[arg-type]
    refused = xyd(state, "clients", "add-key", "bank-z", str(private))
    assert refused.returncode == 2
    assert "private key material" in refused.stderr
    second = tmp_path / "k2.jwk"
    second.write_bytes(orjson.dumps({**jose.public_jwk(new_key()), "kid": "k2"}))
    assert xyd(state, "clients", "add-key", "bank-z", str(second)).returncode == 0
    assert xyd(state, "clients", "remove-key", "bank-z", "k1").returncode == 0
    assert xyd(state, "clients", "disable", "bank-z").returncode == 0
    listed = xyd(state, "clients", "list").stdout
    assert "bank-z\tbank\tZB\tDISABLED\treports:read\tkeys=k2" in listed
    assert xyd(state, "clients", "disable", "nobody").returncode == 2
    rotated = xyd(state, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "published now, signing in 120 s" in rotated.stdout


def test_clients_register_redirect_uris(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert xyd(state, "db", "upgrade").returncode == 0
    jwk_file = tmp_path / "bank.jwk"
    jwk_file.write_bytes(orjson.dumps({**jose.public_jwk(new_key()), "kid": "k1"}))
    created = xyd(
        state, "clients", "create", "bank-r", "--type", "bank", "--jwks", str(jwk_file),
        "--redirect-uri", "https://bank.example/cb", "--redirect-uri", "http://127.0.0.1:8765/cb",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "redirect URI https://bank.example/cb" in created.stdout
    assert "redirect URI http://127.0.0.1:8765/cb" in created.stdout
    for bad in ("http://bank.example/cb", "https://bank.example/cb#frag", "bank.example/cb"):
        refused = xyd(
            state, "clients", "create", "bank-x", "--type", "bank", "--jwks", str(jwk_file),
            "--redirect-uri", bad,
        )  # fmt: skip
        assert refused.returncode == 2, bad
        assert "redirect_uri" in refused.stderr
