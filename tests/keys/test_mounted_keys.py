"""Keys named by file settings (secrets mounted as files) are read, never made."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.keys.pii import PersonalDataError, load_key_ring, rotate_key_ring
from gateway.settings import Settings


def _write(path: Path, key: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key.hex() + "\n")
    return path


def test_the_kek_and_pii_key_come_from_their_files(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        key_encryption_key_file=_write(tmp_path / "kek", b"k" * 32),
        pii_key_file=_write(tmp_path / "pii", b"p" * 32),
    )
    assert settings.kek_bytes() == b"k" * 32
    assert settings.pii_key_bytes() == b"p" * 32
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("setting", ["key_encryption_key_file", "pii_key_file"])
def test_a_missing_or_garbled_file_is_refused_naming_its_setting(
    tmp_path: Path, setting: str
) -> None:
    env_name = "XYD_" + setting.upper()
    (tmp_path / "garbled").write_text("not hex\n")
    missing = Settings(state_dir=tmp_path, **{setting: tmp_path / "absent"})
    garbled = Settings(state_dir=tmp_path, **{setting: tmp_path / "garbled"})
    for settings, says in ((missing, "cannot be read"), (garbled, "does not hold a hex key")):
        read = settings.kek_bytes if setting.startswith("key_") else settings.pii_key_bytes
        with pytest.raises(ValueError, match=f"{env_name}: .*{says}"):
            read()
    assert not (tmp_path / "absent").exists()


def test_the_pii_ring_comes_from_a_mounted_directory(tmp_path: Path) -> None:
    mounted = tmp_path / "pii-keys"
    _write(mounted / "1.key", b"1" * 32)
    _write(mounted / "2.key", b"2" * 32)
    settings = Settings(state_dir=tmp_path / "state", pii_encryption_keys_dir=mounted)
    ring = load_key_ring(settings)
    assert ring.keys == {1: b"1" * 32, 2: b"2" * 32}
    assert ring.active == 2
    with pytest.raises(PersonalDataError, match="XYD_PII_ENCRYPTION_KEYS_DIR: add the next"):
        rotate_key_ring(settings)
    assert not (tmp_path / "state").exists()


def test_an_empty_mounted_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    settings = Settings(state_dir=tmp_path, pii_encryption_keys_dir=tmp_path / "empty")
    with pytest.raises(PersonalDataError, match=r"XYD_PII_ENCRYPTION_KEYS_DIR: no VERSION\.key"):
        load_key_ring(settings)
    assert list((tmp_path / "empty").iterdir()) == []
