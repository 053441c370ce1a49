"""Personal fields encrypted at rest: AES-256-GCM under a versioned key ring.

Kept only for lawful recovery (a credit-repair dispute, a court's request);
reports and the stored record JSON see keyed hashes and masks (`pii.py`),
never these. A sealed value is compact text naming its key version:

    v<version>.<nonce>.<ciphertext and tag>      (base64url, no padding)

The associated data binds it to its record (category, department, the
department's record id): moved to another record, it no longer opens.

Keys come from `XYD_PII_ENCRYPTION_KEYS` ("1:<64 hex>,2:<64 hex>"), else from
`XYD_PII_ENCRYPTION_KEYS_DIR`/<version>.key (a mounted secret, read only), else
from STATE_DIR/pii-keys/<version>.key, created on first use.
The highest version seals; every version opens. Rotation adds a version
(`xyd pii rotate`); `xyd pii reencrypt` moves stored values onto it.

Errors: `PersonalDataError` when a value cannot be opened (unknown key
version, tampered or moved ciphertext, malformed text) or a key is unusable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.keys import jose
from gateway.settings import Settings, load_or_create_secret, read_secret

KEY_DIR = "pii-keys"
_KEY_FILE = re.compile(r"^([1-9][0-9]{0,5})\.key$")
_NONCE = 12


class PersonalDataError(Exception):
    """A sealed personal value cannot be opened, or a key is unusable."""


def aad_for(category: str, source_department: str, source_record_id: str) -> bytes:
    """The associated data binding a sealed value to its record."""
    return f"{category}\x1f{source_department}\x1f{source_record_id}".encode()


def version_of(sealed: str) -> int:
    """The key version a sealed value names (no key needed)."""
    head, dot, _ = sealed.partition(".")
    if not dot or head[:1] != "v" or not head[1:].isdigit():
        raise PersonalDataError("not a sealed personal value")
    return int(head[1:])


class KeyRing:
    """Key versions (32-byte AES keys) and the one that seals new values.

    Picklable (forked or fork-server ingestion workers receive it once); the
    AES-GCM contexts are built on first use in each process.
    """

    __slots__ = ("_ciphers", "active", "keys")

    def __init__(self, keys: Mapping[int, bytes], active: int | None = None) -> None:
        if not keys:
            raise PersonalDataError("the personal-data key ring is empty")
        for version, key in keys.items():
            if version < 1 or len(key) != 32:
                raise PersonalDataError(f"personal-data key v{version}: need 32 bytes, v1 or later")
        self.keys = dict(keys)
        self.active = max(keys) if active is None else active
        if self.active not in self.keys:
            raise PersonalDataError(
                f"the active personal-data key v{self.active} is not in the ring"
            )
        self._ciphers: dict[int, AESGCM] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (KeyRing, (self.keys, self.active))

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyRing(versions={sorted(self.keys)}, active={self.active})"

    def _cipher(self, version: int) -> AESGCM:
        cipher = self._ciphers.get(version)
        if cipher is None:
            key = self.keys.get(version)
            if key is None:
                raise PersonalDataError(f"no personal-data key v{version} in the ring")
            cipher = self._ciphers[version] = AESGCM(key)
        return cipher

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        """Encrypt under the active version: one AES-GCM call."""
        nonce = os.urandom(_NONCE)
        sealed = self._cipher(self.active).encrypt(nonce, plaintext, aad)
        return f"v{self.active}.{jose.b64encode(nonce)}.{jose.b64encode(sealed)}"

    def open(self, sealed: str, aad: bytes) -> bytes:
        """Decrypt a value sealed under any version of the ring."""
        version = version_of(sealed)
        parts = sealed.split(".")
        if len(parts) != 3:
            raise PersonalDataError("not a sealed personal value")
        try:
            nonce, body = jose.b64decode(parts[1]), jose.b64decode(parts[2])
        except jose.JoseError:
            raise PersonalDataError("not a sealed personal value") from None
        if len(nonce) != _NONCE:
            raise PersonalDataError("not a sealed personal value")
        try:
            return self._cipher(version).decrypt(nonce, body, aad)
        except InvalidTag:
            raise PersonalDataError(
                f"sealed personal value does not open under v{version}: "
                "tampered, or not this record's"
            ) from None


def parse_keys(text: str) -> dict[int, bytes]:
    """ "1:<hex>,2:<hex>" → {1: key, 2: key}."""
    keys: dict[int, bytes] = {}
    for item in text.replace(";", ",").split(","):
        if not item.strip():
            continue
        version, colon, hex_key = item.strip().partition(":")
        if not colon or not version.strip().isdigit():
            raise PersonalDataError("XYD_PII_ENCRYPTION_KEYS: expected VERSION:HEX[,VERSION:HEX]")
        try:
            keys[int(version)] = bytes.fromhex(hex_key.strip())
        except ValueError:
            raise PersonalDataError(f"XYD_PII_ENCRYPTION_KEYS: v{version} is not hex") from None
    return keys


def _key_files(directory: Path) -> dict[int, Path]:
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        match = _KEY_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def load_key_ring(settings: Settings) -> KeyRing:
    """The configured ring; under the state dir, version 1 is created on first use."""
    if settings.pii_encryption_keys is not None:
        keys = parse_keys(settings.pii_encryption_keys.get_secret_value())
        return KeyRing(keys, settings.pii_encryption_active)
    if (mounted := settings.pii_encryption_keys_dir) is not None:
        files = _key_files(mounted)
        if not files:
            raise PersonalDataError(f"XYD_PII_ENCRYPTION_KEYS_DIR: no VERSION.key in {mounted}")
        keys = {v: read_secret("XYD_PII_ENCRYPTION_KEYS_DIR", p) for v, p in files.items()}
        return KeyRing(keys, settings.pii_encryption_active)
    directory = settings.state_dir / KEY_DIR
    files = _key_files(directory) or {1: directory / "1.key"}
    keys = {version: load_or_create_secret(path) for version, path in files.items()}
    return KeyRing(keys, settings.pii_encryption_active)


def rotate_key_ring(settings: Settings) -> int:
    """Add the next key version under the state dir; return it (it seals from now on)."""
    if settings.pii_encryption_keys is not None:
        raise PersonalDataError(
            "keys come from XYD_PII_ENCRYPTION_KEYS: add VERSION:HEX there "
            "(and unset or raise XYD_PII_ENCRYPTION_ACTIVE)"
        )
    if settings.pii_encryption_keys_dir is not None:
        raise PersonalDataError(
            "keys come from XYD_PII_ENCRYPTION_KEYS_DIR: add the next VERSION.key to that secret"
        )
    if settings.pii_encryption_active is not None:
        raise PersonalDataError("XYD_PII_ENCRYPTION_ACTIVE pins the version: unset it to rotate")
    directory = settings.state_dir / KEY_DIR
    current = load_key_ring(settings)
    version = max(current.keys) + 1
    load_or_create_secret(directory / f"{version}.key")
    return version
