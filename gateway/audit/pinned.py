"""The keys `xyd audit verify` trusts for checkpoints: kept outside the store.

Anyone who can write the store can add a row to `signing_keys`, so a key is
never trusted for being there. The gateway pins the public part of each audit
key it signs with, derived from the private part it decrypted with the KEK
(never the row's `public_jwk`, which the store owner could swap), in
STATE_DIR/audit-keys.jwks beside the KEK (0600). A deployment may instead
configure XYD_AUDIT_JWKS, a JWKS file it publishes and distributes itself;
then only that file is trusted.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from gateway.keys import jose
from gateway.keys.store import LoadedKey, load_ring
from gateway.settings import Settings


def path_of(settings: Settings) -> Path:
    """Where the pinned keys are: XYD_AUDIT_JWKS, else beside the KEK."""
    return settings.audit_jwks or settings.state_dir / "audit-keys.jwks"


def trusted(settings: Settings) -> dict[str, jose.PublicKey]:
    """kid → public key for every pinned audit key; empty when nothing is pinned."""
    return read(path_of(settings))


def read(path: Path) -> dict[str, jose.PublicKey]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {
        str(jwk["kid"]): jose.public_key_from_jwk(jwk)
        for jwk in document.get("keys", [])
        if isinstance(jwk, dict) and "kid" in jwk
    }


def pin(path: Path, keys: Iterable[LoadedKey]) -> list[str]:
    """Add `keys`' public parts to the file at `path` (kept 0600); return the kids added.

    Workers pin at once: an exclusive lock on a sibling file orders them, and
    the new document replaces the old by rename, so a reader never sees half."""
    wanted = {key.kid: _public(key) for key in keys if key.purpose == "audit"}
    if not wanted:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            held: list[dict[str, Any]] = json.loads(path.read_text())["keys"]
        except FileNotFoundError:
            held = []
        known = {str(jwk["kid"]) for jwk in held}
        added = [kid for kid in wanted if kid not in known]
        if added:
            _replace(path, {"keys": held + [wanted[kid] for kid in added]})
        return added
    finally:
        os.close(lock)


def pin_store_keys(conn: Connection, settings: Settings) -> list[str]:
    """Pin every live audit key of the store that decrypts with this KEK: a row
    the KEK authenticates (AES-GCM, bound to its kid and purpose) was made by
    someone holding the KEK, not by whoever can only write the store."""
    ring = load_ring(conn, settings.kek_bytes())
    return pin(path_of(settings), ring.keys.values())


def _public(key: LoadedKey) -> dict[str, Any]:
    return {**jose.public_jwk(key.private), "kid": key.kid, "alg": key.alg, "use": "sig"}


def _replace(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
