"""Files only the gateway's own user may read: everything under the state directory.

The state directory holds the SQLite store and its WAL (personal fields,
hashed or sealed, but the store whole), keys, the KEK, demo credentials and
passwords, serve.json; an ingest's rejects file holds what departments sent.
None is for other local users. Two layers, because either alone misses files:
`restrict_umask()` at the CLI's start covers every file any library creates
(SQLite's WAL and SHM, prometheus_client's samples, a shell's redirect in the
Makefile sets its own), and the helpers below give files and directories
their mode explicitly, whatever the umask of the process that calls them
(tests, another embedding), and tighten one an older version left open.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO

UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> None:
    """New files 0600 and directories 0700 in this process and its children."""
    os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """`path` made 0700 with its missing parents, or an existing one of ours
    tightened to 0700 (a shared directory, sticky like /tmp, is left alone)."""
    missing, parent = [], path
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        directory.chmod(DIR_MODE)  # mkdir's mode passes through the umask
    if not missing:
        info = path.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & stat.S_ISVTX:
            path.chmod(DIR_MODE)
    return path


def open_private(path: Path) -> IO[bytes]:
    """`path` truncated for writing, 0600 from its creation on (never briefly open)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # a file that existed keeps its mode otherwise
    return os.fdopen(fd, "wb")


def write_private(path: Path, data: bytes | str) -> None:
    with open_private(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def private_sqlite(database: Path) -> None:
    """The SQLite file made 0600 before SQLite opens it: SQLite gives its -wal
    and -shm files the database file's mode, so they are 0600 too."""
    if not database.parent.exists():
        private_dir(database.parent)
    # A store on a file system gone read-only still opens: the gateway then
    # answers 503 to writes (tests/faults/test_sqlite.py) rather than not starting.
    with contextlib.suppress(OSError):  # there already, or read-only
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for name in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            database.with_name(database.name + name).chmod(FILE_MODE)
