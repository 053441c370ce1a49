"""The demo credentials and sample enterprises `xyd demo seed` leaves under the state dir."""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.keys import jose


class MissingDemoState(RuntimeError):
    """The state dir holds no demo data: say how to make it rather than fail deep inside a user."""


@dataclass(frozen=True)
class DemoKey:
    client_id: str
    key: jose.ClientPrivateKey
    kid: str | None
    dpop: bool


@dataclass(frozen=True)
class DemoState:
    root: Path

    @property
    def demo(self) -> Path:
        return self.root / "demo"

    def client(self, client_id: str) -> DemoKey:
        path = self.demo / "clients" / f"{client_id}.jwk"
        jwk = orjson.loads(path.read_bytes())
        key = jose.private_key_from_jwk(jwk)
        return DemoKey(jwk["client_id"], key, jwk.get("kid"), bool(jwk.get("dpop")))

    @functools.cached_property
    def enterprises(self) -> tuple[tuple[str, str], ...]:
        """(credit code, profile) of the seed's sample enterprises."""
        with (self.demo / "enterprises.csv").open(encoding="utf-8-sig", newline="") as handle:
            return tuple((row["credit_code"], row["profile"]) for row in csv.DictReader(handle))

    @property
    def credit_codes(self) -> list[str]:
        return [code for code, _ in self.enterprises]

    def platform_dir(self, platform: str) -> Path:
        return self.demo / "platforms" / platform


@functools.cache
def demo_state(root: str | None = None) -> DemoState:
    state = DemoState(Path(root or os.environ.get("XYD_STATE_DIR", ".xyd")))
    if not (state.demo / "enterprises.csv").exists() or not (state.demo / "clients").is_dir():
        raise MissingDemoState(
            f"no demo state under {state.demo}: run `xyd demo seed` against the gateway's "
            "store first (or set XYD_STATE_DIR to the state dir it wrote)"
        )
    return state
