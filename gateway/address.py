"""Where the command line finds a running gateway.

`xyd serve` writes the address it listens on to STATE_DIR/serve.json when it
starts and removes it when it stops, so `xyd demo token` and `xyd call` reach
a demo on any port without XYD_PORT in the caller's shell. In order:
`--base-url`, then XYD_PUBLIC_BASE_URL / XYD_HOST / XYD_PORT when set, then
that file (unless its server is gone), then the default http://127.0.0.1:8000.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.client import GatewayClient
from gateway.private_files import private_dir, write_private
from gateway.settings import Settings

FILE_NAME = "serve.json"
_ADDRESS_SETTINGS = frozenset({"public_base_url", "host", "port"})


class Unreachable(Exception):
    """No gateway answered at the address: the message names it and how it was found."""


@dataclass(frozen=True)
class Address:
    url: str
    source: str  # how it was found: error messages name it


def connect_host(host: str) -> str:
    """The address a client on this machine dials for a server bound to `host`."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a bind-all address, dialled on loopback
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def announced(state_dir: Path, host: str, port: int) -> Iterator[Path]:
    """STATE_DIR/serve.json names this process's address while the block runs."""
    path = state_dir / FILE_NAME
    private_dir(path.parent)
    body = {"url": f"http://{connect_host(host)}:{port}", "pid": os.getpid()}
    write_private(path, json.dumps(body) + "\n")
    try:
        yield path
    finally:
        # Only our own: a second gateway may have taken the file over since.
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()


def find(settings: Settings, base_url: str | None = None) -> Address:
    if base_url:
        return Address(base_url.rstrip("/"), "--base-url")
    named = sorted(_ADDRESS_SETTINGS & settings.model_fields_set)
    if named:
        return Address(settings.issuer, " / ".join(f"XYD_{n.upper()}" for n in named))
    path = settings.state_dir / FILE_NAME
    served = _read(path)
    if served is not None:
        return Address(served, f"{path}, written by xyd serve")
    return Address(settings.issuer, "the default; give --base-url or set XYD_PORT")


def _read(path: Path) -> str | None:
    """The file's URL, unless it is unreadable or its server has gone (killed, not stopped)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        url, pid = body["url"], body["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not isinstance(pid, int) or pid <= 0 or not _alive(pid):
        return None
    return url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def reaching(address: Address) -> Iterator[None]:
    """Turn a transport failure inside the block into Unreachable, naming the URL tried."""
    try:
        yield
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise Unreachable(
            f"no gateway answering at {address.url} ({address.source}): {reason}"
        ) from None


def connect(address: Address, key_file: Path) -> GatewayClient:
    """A client for the gateway at `address`, its issuer read from the server's metadata
    (RFC 8414): the URL dialled (localhost, a proxy) need not be the issuer."""
    http = httpx.Client(base_url=address.url, timeout=10)
    with reaching(address):
        answer = http.get("/.well-known/oauth-authorization-server")
    try:
        body = answer.json() if answer.status_code == 200 else None
    except ValueError:
        body = None
    issuer = body.get("issuer") if isinstance(body, dict) else None
    if not isinstance(issuer, str):
        http.close()
        raise Unreachable(
            f"{address.url} ({address.source}) is not an xyd gateway: "
            f"GET /.well-known/oauth-authorization-server answered {answer.status_code}"
        )
    return GatewayClient.from_jwk_file(address.url, key_file, issuer=issuer, http=http)
