"""What the demo provider keeps under `.xyd/demo/oidc/`, all owner-only:

- `signing.jwk`: its ES256 private key (kept, so tokens and the JWKS outlive a restart);
- `subject.key`: the key its subjects are derived with (users.subject_of);
- `client.json`: the gateway's registration (`client_id`, `client_secret`,
  `redirect_uris`, `token_endpoint_auth_methods`), and `issuer` once serving;
- `issuer`: the provider's issuer URL, one line, written once it listens.

The gateway reads `client.json` and `issuer`; the provider keeps the client
secret only as a scrypt hash once loaded.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.identity.clients import hash_secret
from gateway.keys import jose
from gateway.private_files import private_dir, write_private

# Where the gateway's portal receives the provider's answer.
REDIRECT_PATH = "/portal/login/callback"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True, slots=True)
class Client:
    """A registered relying party: the provider keeps its secret's hash only."""

    client_id: str
    secret_hash: str
    redirect_uris: frozenset[str]


def oidc_dir(state_dir: Path) -> Path:
    return state_dir / "demo" / "oidc"


def signing_key(directory: Path) -> ec.EllipticCurvePrivateKey:
    path = directory / "signing.jwk"
    if path.exists():
        key = jose.private_key_from_jwk(json.loads(path.read_text(encoding="utf-8")))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    key = ec.generate_private_key(ec.SECP256R1())
    private_dir(directory)
    write_private(path, json.dumps(jose.private_jwk(key)) + "\n")
    return key


def subject_key(directory: Path) -> bytes:
    path = directory / "subject.key"
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    key = secrets.token_bytes(32)
    private_dir(directory)
    write_private(path, key.hex() + "\n")
    return key


def gateway_redirect_uris(host: str, port: int) -> list[str]:
    hosts = dict.fromkeys([host, "127.0.0.1", "localhost"])
    return [f"http://{name}:{port}{REDIRECT_PATH}" for name in hosts]


def ensure_client(directory: Path, redirect_uris: list[str]) -> Client:
    """The gateway's registration: the same client id and secret while the file
    lasts, its redirect URIs those of the gateway's address now."""
    path = directory / "client.json"
    found = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    client_id: str = found.get("client_id") or "xyd-gateway-" + secrets.token_hex(4)
    secret: str = found.get("client_secret") or secrets.token_urlsafe(32)
    registration = {
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_methods": list(AUTH_METHODS),
    }
    private_dir(directory)
    write_private(path, json.dumps(registration, indent=2) + "\n")
    return Client(client_id, hash_secret(secret), frozenset(redirect_uris))


def publish_issuer(directory: Path, issuer: str) -> None:
    """The issuer where the gateway reads it: its own file, and client.json."""
    path = directory / "client.json"
    registration = json.loads(path.read_text(encoding="utf-8"))
    write_private(path, json.dumps({**registration, "issuer": issuer}, indent=2) + "\n")
    write_private(directory / "issuer", issuer + "\n")
