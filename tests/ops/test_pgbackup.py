"""deploy.pgbackup without a server: the archive command's three cases, and the
restores it refuses before touching anything."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from deploy.pgbackup import BackupError, archive_command, prepare


def archive(segment: Path, archive_dir: Path) -> int:
    command = archive_command(archive_dir).replace("%p", str(segment)).replace("%f", segment.name)
    return subprocess.run(["sh", "-c", command], timeout=10).returncode


def test_a_segment_is_archived_once_and_never_overwritten(tmp_path: Path) -> None:
    store, segment = tmp_path / "archive", tmp_path / "000000010000000000000001"
    store.mkdir()
    segment.write_bytes(b"wal" * 100)
    assert archive(segment, store) == 0
    assert (store / segment.name).read_bytes() == segment.read_bytes()
    assert not list(store.glob("*.part"))
    # The server died before it heard of the copy and asks again: the same bytes are done.
    assert archive(segment, store) == 0
    segment.write_bytes(b"other")
    assert archive(segment, store) != 0
    assert (store / segment.name).read_bytes() == b"wal" * 100


def backup_without_config(tmp_path: Path) -> Path:
    backup = tmp_path / "backup"
    backup.mkdir()
    with tarfile.open(backup / "base.tar.gz", "w:gz") as tar:
        entry = tarfile.TarInfo("PG_VERSION")
        entry.size = 3
        tar.addfile(entry, io.BytesIO(b"15\n"))
    return backup


def test_restore_refuses_a_directory_in_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    with pytest.raises(BackupError, match="not empty: restore into a fresh directory"):
        prepare(backup_without_config(tmp_path), tmp_path, data)


def test_a_backup_without_configuration_asks_for_config_from(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="--config-from"):
        prepare(backup_without_config(tmp_path), tmp_path, tmp_path / "data")
