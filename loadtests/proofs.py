"""Single-use credentials made ahead of a load run, so the load generator only replays them.

DPoP proofs (RFC 9449) as `xyd call demo-bank-fapi` makes them
(gateway.client.dpop_proof): the client's DPoP key in the `jwk` header, the
request's method and URL, the access token's hash, a fresh `jti` each. The
gateway accepts each proof once and for 60 s after its `iat`, so a batch is
made just before the round that spends it. Client assertions (RFC 7523) for
the token endpoint likewise: single-use `jti`, short `exp`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

from gateway.client import client_assertion
from gateway.identity.dpop import DPOP_TYP, token_hash
from gateway.keys import jose


def dpop_proofs(
    key: jose.ClientPrivateKey,
    method: str,
    url: str,
    access_token: str,
    count: int,
    *,
    iat: int | None = None,
) -> Iterator[str]:
    """`count` distinct proofs for one request target: only the jti differs."""
    header = {"typ": DPOP_TYP, "alg": jose.alg_for(key)[0], "jwk": jose.public_jwk(key)}
    claims = {"htm": method, "htu": url, "iat": iat if iat is not None else int(time.time()),
              "ath": token_hash(access_token)}  # fmt: skip
    for _ in range(count):
        yield jose.sign(header, {**claims, "jti": secrets.token_urlsafe(16)}, key)


def client_assertions(
    client_id: str, key: jose.PrivateKey, audience: str, count: int, *, kid: str | None = None
) -> Iterator[str]:
    for _ in range(count):
        yield client_assertion(client_id, key, audience=audience, kid=kid, lifetime_s=120)
