"""The personal-data key ring: sealed values name their version, open only as sealed."""

from __future__ import annotations

import base64
import pickle
import re
import stat
from pathlib import Path

import pytest

from gateway.keys.pii import (
    KeyRing,
    PersonalDataError,
    aad_for,
    load_key_ring,
    parse_keys,
    rotate_key_ring,
    version_of,
)
from gateway.settings import Settings

K1, K2 = bytes(range(32)), bytes(range(32, 64))
AAD = aad_for("penalty", "成都市市场监督管理局", "P-000001")
PLAIN = b'{"legal_rep_id_number":"510104198001011234"}'
SEALED = re.compile(r"^v(\d+)\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$")


def test_round_trip_names_the_active_version_and_never_repeats() -> None:
    ring = KeyRing({1: K1, 2: K2})
    first, second = ring.seal(PLAIN, AAD), ring.seal(PLAIN, AAD)
    assert SEALED.match(first) and first.startswith("v2.")
    assert first != second  # a fresh nonce each time
    assert version_of(first) == 2
    assert ring.open(first, AAD) == ring.open(second, AAD) == PLAIN
    assert b"510104" not in first.encode()


def test_an_older_version_still_opens_after_rotation() -> None:
    old = KeyRing({1: K1}).seal(PLAIN, AAD)
    assert KeyRing({1: K1, 2: K2}).open(old, AAD) == PLAIN


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: "v2" + s[2:], id="relabelled-version"),
        pytest.param(lambda s: "v9" + s[2:], id="unknown-version"),
        pytest.param(lambda s: s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1], id="tampered-tag"),
        pytest.param(lambda s: s.replace(".", ".AAAA", 1), id="other-nonce"),
        pytest.param(lambda s: s.split(".", 1)[1], id="no-version"),
        pytest.param(lambda s: s + ".x", id="extra-part"),
        pytest.param(lambda s: "v1.!!.!!", id="not-base64"),
    ],
)
def test_a_changed_value_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    ring = KeyRing({1: K1, 2: K2}, active=1)
    sealed = ring.seal(PLAIN, AAD)
    with pytest.raises(PersonalDataError):
        ring.open(change(sealed), AAD)


def test_a_value_moved_to_another_record_or_key_is_refused() -> None:
    ring = KeyRing({1: K1})
    sealed = ring.seal(PLAIN, AAD)
    with pytest.raises(PersonalDataError, match="not this record"):
        ring.open(sealed, aad_for("penalty", "成都市市场监督管理局", "P-000002"))
    with pytest.raises(PersonalDataError):
        KeyRing({1: K2}).open(sealed, AAD)


def test_flipping_any_ciphertext_byte_is_refused() -> None:
    ring = KeyRing({1: K1})
    head, nonce, body = ring.seal(PLAIN, AAD).split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for index in range(len(raw)):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        text = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
        with pytest.raises(PersonalDataError):
            ring.open(f"{head}.{nonce}.{text}", AAD)


def test_bad_rings_are_refused() -> None:
    with pytest.raises(PersonalDataError):
        KeyRing({})
    with pytest.raises(PersonalDataError):
        KeyRing({1: b"short"})
    with pytest.raises(PersonalDataError):
        KeyRing({1: K1}, active=2)


def test_pickles_for_workers_and_never_shows_its_keys() -> None:
    ring = KeyRing({1: K1, 2: K2})
    sealed = ring.seal(PLAIN, AAD)
    copy = pickle.loads(pickle.dumps(ring))  # noqa: S301 - our own bytes, as a pool sends them
    assert (copy.active, copy.keys) == (2, {1: K1, 2: K2})
    assert copy.open(sealed, AAD) == PLAIN
    assert K1.hex() not in repr(ring) and "v1" not in repr(ring).replace("versions=[1, 2]", "")


def test_state_dir_ring_is_created_once_then_rotated(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    ring = load_key_ring(settings)
    key_file = tmp_path / "pii-keys" / "1.key"
    assert (ring.active, list(ring.keys)) == (1, [1])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_key_ring(settings).keys == ring.keys  # the same key on every load
    sealed = ring.seal(PLAIN, AAD)

    assert rotate_key_ring(settings) == 2
    rotated = load_key_ring(settings)
    assert (rotated.active, sorted(rotated.keys)) == (2, [1, 2])
    assert rotated.keys[1] == ring.keys[1]
    assert rotated.open(sealed, AAD) == PLAIN
    assert rotated.seal(PLAIN, AAD).startswith("v2.")
    assert rotate_key_ring(settings) == 3


def test_keys_from_settings(tmp_path: Path) -> None:
    given = f"1:{K1.hex()}, 2:{K2.hex()}"
    settings = Settings(state_dir=tmp_path, pii_encryption_keys=given)  # type: ignore[arg-type]
    ring = load_key_ring(settings)
    assert (ring.active, ring.keys) == (2, {1: K1, 2: K2})
    assert not (tmp_path / "pii-keys").exists()
    assert K1.hex() not in repr(settings)
    pinned = Settings(
        state_dir=tmp_path,
        pii_encryption_keys=given,  # type: ignore[arg-type]
        pii_encryption_active=1,
    )
    assert load_key_ring(pinned).active == 1
    with pytest.raises(PersonalDataError, match="XYD_PII_ENCRYPTION_KEYS"):
        rotate_key_ring(settings)
    with pytest.raises(PersonalDataError):
        parse_keys("1=abc")
    with pytest.raises(PersonalDataError):
        parse_keys("1:nothex")
