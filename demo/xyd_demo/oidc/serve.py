"""`xyd demo oidc`: the demo provider on a port of its own (given, or one the
system picks), its users, key and the gateway's registration made or kept
under the state directory first."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from xyd_demo.oidc import registration
from xyd_demo.oidc.provider import Provider
from xyd_demo.oidc.users import ensure_users, people


@dataclass(frozen=True, slots=True)
class Serving:
    issuer: str
    users_file: Path
    server: uvicorn.Server


def _listen(port: int) -> socket.socket:
    """Listening before the issuer is published: a client that reads it at
    once waits in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def serve(state_dir: Path, gateway_host: str, gateway_port: int, port: int = 0) -> Serving:
    """Start the provider in a daemon thread; publish its issuer; return it."""
    directory = registration.oidc_dir(state_dir)
    rows = ensure_users(state_dir / "demo")
    client = registration.ensure_client(
        directory, registration.gateway_redirect_uris(gateway_host, gateway_port)
    )
    sock = _listen(port)
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = Provider(
        issuer,
        registration.signing_key(directory),
        [client],
        people(rows, registration.subject_key(directory)),
    )
    server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    registration.publish_issuer(directory, issuer)
    return Serving(issuer, state_dir / "demo" / "enterprise-users.csv", server)
