"""PostgreSQL 15 backup and restore: a WAL archive, base backups, restores into a
fresh data directory (to the archive's end or to a point in time).

    python -m deploy.pgbackup settings --archive-dir A      the archiving settings
    python -m deploy.pgbackup base --port P --backup-dir B  a base backup, B/<UTC stamp>/
    python -m deploy.pgbackup restore --backup B/<stamp> --archive-dir A \\
        --data-dir NEW --port P2 [--target-time 2026-12-06T08:30:00+00:00]

WAL is archived by the server's own `archive_command`, not `pg_receivewal`:
the server keeps every segment until the command succeeds, so an archive that
is down delays archiving but never loses a segment, and there is no second
daemon (and replication slot) to supervise. Its cost is the recovery point: a
segment is archived when full or after `archive_timeout` (60 s here), so a
lost machine with a lost disk loses at most that much; synchronous replication
(Patroni) covers the loss of a primary, the archive covers the loss of the
cluster. Only the primary archives (`archive_mode = on`); after a failover the
new primary goes on archiving into the same directory on its new timeline.

Every command takes plain paths and a port, so a cluster can call it as it
is: `archive_settings()` into Patroni's `postgresql.parameters`, `base_backup()`
against the primary, and `prepare()` (`restore --no-start`) for a directory
Patroni or systemd starts, `start_promoted()` for one started here. Run as
root, the server and its files belong to --os-user (postgres).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
ARCHIVE_TIMEOUT_S = 60


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


def archive_command(archive_dir: Path) -> str:
    """Copy %p into the archive, durably, never over a different file.

    An existing file with the same bytes is success (the server died between
    the copy and hearing of it, and retries); one with other bytes is failure,
    so the server keeps the segment and pg_stat_archiver counts the failure."""
    target = shlex.quote(str(archive_dir))
    return (
        f"if test -f {target}/%f; then cmp -s %p {target}/%f; else "
        f"cp %p {target}/%f.part && sync {target}/%f.part && "
        f"mv {target}/%f.part {target}/%f && sync {target}; fi"
    )


def archive_settings(archive_dir: Path) -> dict[str, str]:
    """The server settings that archive WAL into `archive_dir` (a restart applies
    archive_mode)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": archive_command(archive_dir),
        "archive_timeout": f"{ARCHIVE_TIMEOUT_S}s",
    }


def conf_lines(settings: dict[str, str]) -> str:
    quoted = {name: value.replace("'", "''") for name, value in settings.items()}
    return "".join(f"{name} = '{value}'\n" for name, value in quoted.items())


def _as_user(cmd: list[str], os_user: str) -> list[str]:
    # The server refuses to run as root; its files must be its user's.
    if os.geteuid() == 0:
        return ["runuser", "-u", os_user, "--", *cmd]
    return cmd


def base_backup(
    backup_dir: Path, *, host: str, port: int, user: str, bin_dir: Path = BIN_DIR
) -> Path:
    """A compressed tar base backup in a new directory under `backup_dir`; its path.

    `-X none`: the WAL the backup needs is taken from the archive at restore
    time, so the archive must hold it; pg_basebackup waits until the server has
    archived the backup's last segment before it returns."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = backup_dir / stamp
    if target.exists():
        raise BackupError(f"{target} exists: wait a second and run it again")
    backup_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(bin_dir / "pg_basebackup"), "-h", host, "-p", str(port), "-U", user,
           "-D", str(target), "-Ft", "-z", "-X", "none", "-c", "fast", "--no-password",
           "--label", f"xyd {stamp}"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise BackupError(f"pg_basebackup failed: {done.stderr.strip()}")
    if not (target / "base.tar.gz").exists():
        raise BackupError(f"{target} has no base.tar.gz: pg_basebackup wrote something else")
    return target


CONFIG_FILES = ("postgresql.conf", "pg_hba.conf", "pg_ident.conf")


def _configure(data_dir: Path, config_from: Path | None) -> None:
    """A backup of a Debian cluster (configuration in /etc/postgresql/15/NAME)
    holds no configuration files: copy them from `config_from`."""
    if config_from is not None:
        for name in CONFIG_FILES:
            if (config_from / name).exists() and not (data_dir / name).exists():
                shutil.copy(config_from / name, data_dir / name)
    missing = [name for name in CONFIG_FILES[:2] if not (data_dir / name).exists()]
    if missing:
        raise BackupError(
            f"the backup holds no {' or '.join(missing)}: give --config-from "
            "the directory with the cluster's configuration (e.g. /etc/postgresql/15/main)"
        )


def _unpack(backup: Path, data_dir: Path, os_user: str, config_from: Path | None) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into a fresh directory")
    archive = backup / "base.tar.gz"
    if not archive.exists():
        raise BackupError(f"no base.tar.gz in {backup}: give a directory `base` made")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        # "tar": modes kept as PostgreSQL wrote them, nothing outside data_dir.
        tar.extractall(data_dir, filter="tar")
    (data_dir / "pg_wal").mkdir(exist_ok=True)
    _configure(data_dir, config_from)
    data_dir.chmod(0o700)
    if os.geteuid() == 0:
        for path in [data_dir, *data_dir.rglob("*")]:
            shutil.chown(path, os_user, os_user)


def recovery_settings(
    archive_dir: Path, target_time: datetime | None, archive_to: Path | None
) -> dict[str, str]:
    """Replay from `archive_dir` to its end or to `target_time`, then promote. The
    restored server archives into `archive_to` (a new archive for a new cluster),
    or not at all: never into the archive it restores from."""
    settings = {
        "restore_command": f"cp {shlex.quote(str(archive_dir))}/%f %p",
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",  # across failovers since the backup
    }
    if target_time is not None:
        settings["recovery_target_time"] = target_time.isoformat()
        settings["recovery_target_inclusive"] = "false"
    if archive_to is not None:
        settings.update(archive_settings(archive_to))
    else:
        settings["archive_mode"] = "off"
    return settings


def prepare(
    backup: Path,
    archive_dir: Path,
    data_dir: Path,
    *,
    target_time: datetime | None = None,
    archive_to: Path | None = None,
    config_from: Path | None = None,
    os_user: str = "postgres",
) -> None:
    """Unpack `backup` into the fresh `data_dir`, set to replay the archive and
    promote when started (by `start_promoted`, or by whatever supervises the
    server: Patroni's custom bootstrap, systemd)."""
    _unpack(backup, data_dir, os_user, config_from)
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write(conf_lines(recovery_settings(archive_dir, target_time, archive_to)))
    (data_dir / "recovery.signal").touch()
    (data_dir / "standby.signal").unlink(missing_ok=True)
    if os.geteuid() == 0:
        for name in ("postgresql.auto.conf", "recovery.signal"):
            shutil.chown(data_dir / name, os_user, os_user)


def start_promoted(
    data_dir: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    os_user: str = "postgres",
    wait_s: float = 120.0,
    bin_dir: Path = BIN_DIR,
) -> None:
    """Start a prepared data directory on `port` and wait (at most `wait_s`)
    until recovery has ended and it is promoted."""
    options = f"-p {port} -c listen_addresses={host} -c unix_socket_directories=''"
    log = data_dir / "restore.log"
    start = [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options,
             "-w", "-t", str(int(wait_s)), "start"]  # fmt: skip
    started = subprocess.run(_as_user(start, os_user), capture_output=True, text=True)
    if started.returncode != 0:
        raise BackupError(f"the restored server did not start: {_tail(log)}")
    _wait_promoted(data_dir, log, wait_s)


def _wait_promoted(data_dir: Path, log: Path, wait_s: float) -> None:
    """Recovery is over when recovery.signal is gone and the server accepts
    connections as a primary; a server that stopped instead says why in its log."""
    deadline = time.monotonic() + wait_s
    pid_file = data_dir / "postmaster.pid"
    while time.monotonic() < deadline:
        if not pid_file.exists():  # pg_ctl -w start saw it written
            raise BackupError(f"the restored server stopped: {_tail(log)}")
        status = pid_file.read_text().splitlines()[7:8]
        if not (data_dir / "recovery.signal").exists() and status == ["ready   "]:
            return
        time.sleep(0.2)
    raise BackupError(f"not promoted within {wait_s:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-5:])
    except FileNotFoundError:
        return f"no log at {log}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.pgbackup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    settings = sub.add_parser("settings", help="print the archiving settings (postgresql.conf)")
    settings.add_argument("--archive-dir", type=Path, required=True)
    base = sub.add_parser("base", help="take a base backup (tar, gzip, WAL from the archive)")
    base.add_argument("--backup-dir", type=Path, required=True)
    base.add_argument("--host", default="127.0.0.1")
    base.add_argument("--port", type=int, default=5432)
    base.add_argument("--user", default="postgres", help="a role with REPLICATION")
    again = sub.add_parser("restore", help="restore a base backup + the archive, promote")
    again.add_argument("--backup", type=Path, required=True, help="a directory `base` made")
    again.add_argument("--archive-dir", type=Path, required=True)
    again.add_argument("--data-dir", type=Path, required=True, help="fresh; made if missing")
    again.add_argument("--port", type=int, default=5432)
    again.add_argument("--host", default="127.0.0.1", help="listen_addresses")
    again.add_argument(
        "--target-time",
        type=datetime.fromisoformat,
        help="stop before the first commit after this (ISO 8601, with offset)",
    )
    again.add_argument("--archive-to", type=Path, help="the new cluster's WAL archive")
    again.add_argument(
        "--config-from", type=Path, help="postgresql.conf and pg_hba.conf, if not in the backup"
    )
    again.add_argument("--os-user", default="postgres")
    again.add_argument(
        "--no-start", action="store_true", help="prepare the directory only (Patroni starts it)"
    )
    again.add_argument("--wait", type=float, default=600.0, help="seconds to wait for promotion")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "settings":
            sys.stdout.write(conf_lines(archive_settings(args.archive_dir)))
        elif args.command == "base":
            print(base_backup(args.backup_dir, host=args.host, port=args.port, user=args.user))
        else:
            if args.target_time is not None and args.target_time.tzinfo is None:
                raise BackupError("--target-time needs an offset, e.g. +08:00")
            prepare(
                args.backup,
                args.archive_dir,
                args.data_dir,
                target_time=args.target_time,
                archive_to=args.archive_to,
                config_from=args.config_from,
                os_user=args.os_user,
            )
            if args.no_start:
                print(f"{args.data_dir} is ready to start: it replays the archive, then promotes")
                return 0
            start_promoted(
                args.data_dir, port=args.port, host=args.host, os_user=args.os_user,
                wait_s=args.wait,
            )  # fmt: skip
            print(f"restored {args.backup} into {args.data_dir}, serving on port {args.port}")
    except BackupError as exc:
        print(f"pgbackup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
