"""Signed checkpoints: a gateway key's statement that entry `seq` has hash `head`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.keys import jose
from gateway.keys.store import LoadedKey

CHECKPOINT_TYP = "xyd-audit-checkpoint+jws"
ALGS = frozenset({"ES256", "EdDSA"})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    head: str
    signed: str  # compact JWS of {seq, head, at}, typ CHECKPOINT_TYP


def sign(seq: int, head: str, signer: LoadedKey) -> Checkpoint:
    claims = {"seq": seq, "head": head, "at": int(datetime.now(UTC).timestamp())}
    header = {"typ": CHECKPOINT_TYP, "alg": signer.alg, "kid": signer.kid}
    return Checkpoint(seq, head, jose.sign(header, claims, signer.private))


def signed_claims(signed: str, keys: dict[str, jose.PublicKey]) -> dict[str, Any]:
    """The claims of a checkpoint signed by one of `keys`; JoseError otherwise."""
    compact = jose.parse(signed)
    key = keys.get(str(compact.header.get("kid")))
    if key is None or compact.header.get("typ") != CHECKPOINT_TYP:
        raise jose.JoseError("unknown key or wrong typ")
    jose.verify(compact, key, ALGS)
    return compact.claims
