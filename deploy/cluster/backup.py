"""The cluster's backups: a base backup of the current primary (its WAL is in
the archive both PostgreSQL hosts write, deploy/pgbackup.py), and a restore
into a fresh PostgreSQL on a host of its own on the cluster's network, checked
with `xyd audit verify`.

    python -m deploy.cluster backup                    ROOT/backups/<UTC stamp>/
    python -m deploy.cluster restore --to DIR [--target-time T] [--backup B]

What the restore is checked against. Every gateway process signs the head it
wrote and pins the public key it signed with in its host's STATE_DIR
(audit-keys.jwks); the one process holding the `audit-export` lease exports
the stored checkpoints to its host's witness (STATE_DIR/audit-witness.jsonl),
and when the lease moves (a host died, stopped) the next holder's host goes
on. So no host's pins hold every key, and the witness may be split over the
hosts' files. Verify trusts the union of the gateway hosts' pinned keys (never
the store's own rows) and runs once against each host's witness file: the
restored chain must be whole, and hold every checkpoint any host exported.
A restore to a time before a witness's last checkpoint fails that check
("truncated"): the witness naming what the restore dropped, as it should.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from deploy import pgbackup
from deploy.cluster import netns
from deploy.cluster.gateways import REPO, XYD
from deploy.cluster.topology import BASE_PATH, GATEWAY_HOSTS, HOSTS, RESTORE_HOST, Cluster

PG_PORT = 5432


class RestoreError(RuntimeError):
    """A backup or restore of the cluster that cannot go on; says what to do."""


@dataclass(frozen=True)
class Trail:
    count: int
    last_seq: int


@dataclass(frozen=True)
class Verified:
    host: str
    witness: Path | None
    returncode: int
    output: str


def _primary(cluster: Cluster) -> str:
    primary = cluster.primary_pg()
    if primary is None:
        raise RestoreError("no PostgreSQL primary answers: `python -m deploy.cluster status`")
    return primary


def backup(cluster: Cluster) -> Path:
    """A base backup of the current primary under cluster.backup_dir; its path.
    Taken from the monitor host over the network, as the replication role."""
    address = cluster.address(_primary(cluster))
    argv = [sys.executable, "-m", "deploy.pgbackup", "base", "--backup-dir",
            str(cluster.backup_dir), "--host", address, "--port", str(PG_PORT),
            "--user", "replicator"]  # fmt: skip
    env = {"PGPASSWORD": cluster.passwords["replicator"], "PYTHONPATH": str(REPO)}
    done = cluster.run_in("mon", argv, env=env, timeout=300)
    if done.returncode != 0:
        raise RestoreError(f"the base backup failed: {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


def latest(cluster: Cluster) -> Path:
    found = sorted(p for p in cluster.backup_dir.glob("*") if (p / "base.tar.gz").exists())
    if not found:
        raise RestoreError(f"no backup in {cluster.backup_dir}: `python -m deploy.cluster backup`")
    return found[-1]


def archive_now(cluster: Cluster, wait_s: float = 30.0) -> str:
    """The primary switches to a new WAL segment; returns the finished one's name
    once it is in the archive, so a restore replays everything committed so far."""
    address = cluster.address(_primary(cluster))
    with (
        netns.entered(cluster.ns("client")),
        psycopg.connect(
            host=address, port=PG_PORT, user="postgres", dbname="postgres",
            password=cluster.passwords["postgres"], connect_timeout=5, autocommit=True,
        ) as conn,
    ):  # fmt: skip
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    segment = str(row[0])
    deadline = time.monotonic() + wait_s
    while not (cluster.archive_dir / segment).exists():
        if time.monotonic() > deadline:
            raise RestoreError(f"{segment} not archived within {wait_s:.0f} s: see the pg logs")
        time.sleep(0.1)
    return segment


@dataclass(frozen=True)
class Restored:
    backup: Path
    data_dir: Path
    address: str
    url: str


def _fresh(data_dir: Path) -> None:
    """An empty directory the `postgres` user owns and reaches."""
    if data_dir.exists() and any(data_dir.iterdir()):
        raise RestoreError(f"{data_dir} is not empty: --to takes a fresh directory")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.chown(data_dir, "postgres", "postgres")
    reach = ["runuser", "-u", "postgres", "--", "test", "-w", str(data_dir)]
    if subprocess.run(reach, check=False, timeout=10).returncode != 0:
        raise RestoreError(
            f"the postgres user cannot reach {data_dir} (a private directory above it): "
            "give --to a directory under /tmp or /srv"
        )


def _local(data_dir: Path) -> None:
    """The backup is of a Patroni host: its postgresql.conf names that host's
    pg_hba.conf and synchronous standby. This server is alone and keeps its own."""
    settings = {
        "hba_file": str(data_dir / "pg_hba.conf"),
        "ident_file": str(data_dir / "pg_ident.conf"),
        "synchronous_standby_names": "",
    }
    with (data_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write(pgbackup.conf_lines(settings))


@contextlib.contextmanager
def restored(
    cluster: Cluster,
    data_dir: Path,
    *,
    source: Path | None = None,
    target_time: datetime | None = None,
) -> Iterator[Restored]:
    """`source` (the latest backup when None) restored into `data_dir` with the
    archive replayed (to `target_time`, or its end), and promoted, on the host
    RESTORE_HOST added to the cluster's network; stopped and the host removed
    when the block ends (the data directory stays)."""
    source = source or latest(cluster)
    data_dir = data_dir.resolve()
    _fresh(data_dir)
    ns, address = cluster.ns(RESTORE_HOST), cluster.address(RESTORE_HOST)
    if ns in netns.existing():
        raise RestoreError(
            f"{ns} exists: another restore runs; let it end (or `ip netns delete {ns}`)"
        )
    port = f"v-{RESTORE_HOST}"
    # The last restore's bridge port goes with its namespace, but not at once.
    netns.ip("-n", cluster.net_ns, "link", "delete", port, check=False)
    try:
        netns.add_host(cluster.net_ns, ns, port, f"{address}/24")
        # The last restore's link had another MAC at this address: a host that
        # remembers it would send into the void until its entry times out (~30 s).
        for host in HOSTS:
            netns.ip("-n", cluster.ns(host), "neigh", "flush", "to", address, check=False)
        try:
            pgbackup.prepare(source, cluster.archive_dir, data_dir, target_time=target_time)
        except pgbackup.BackupError as exc:
            raise RestoreError(str(exc)) from exc
        _local(data_dir)
        with netns.entered(ns):
            try:
                pgbackup.start_promoted(data_dir, port=PG_PORT, host=address, wait_s=120)
            except pgbackup.BackupError as exc:
                hint = (
                    "\nthe archive ends before --target-time: give an earlier time, or none "
                    "to restore to its end"
                    if "before configured recovery target" in str(exc)
                    else ""
                )
                raise RestoreError(f"{exc}{hint}") from exc
        url = f"postgresql+psycopg://xyd:{cluster.passwords['xyd']}@{address}:{PG_PORT}/xyd"
        try:
            yield Restored(source, data_dir, address, url)
        finally:
            stop = [str(pgbackup.BIN_DIR / "pg_ctl"), "-D", str(data_dir), "-m", "fast",
                    "-w", "-t", "30", "stop"]  # fmt: skip
            subprocess.run(["runuser", "-u", "postgres", "--", *stop],
                           capture_output=True, check=False, timeout=60)  # fmt: skip
    finally:
        netns.delete(ns)


def trail(cluster: Cluster, url: str) -> Trail:
    """How many audit entries the database at `url` holds, and the last one's seq."""
    with netns.entered(cluster.ns("client")):
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                count, last = conn.execute(
                    text("SELECT count(*), coalesce(max(seq), 0) FROM audit_entries")
                ).one()
        finally:
            engine.dispose()
    return Trail(int(count), int(last))


def verify(cluster: Cluster, restored: Restored) -> list[Verified]:
    """`xyd audit verify` on the monitor host against the restored database, with
    the gateway hosts' pinned keys, once per gateway host's witness."""
    work = cluster.root / "verify"
    shutil.rmtree(work, ignore_errors=True)
    (work / "state").mkdir(parents=True, mode=0o700)
    pinned: dict[str, object] = {}
    for host in GATEWAY_HOSTS:
        with contextlib.suppress(FileNotFoundError):
            document = json.loads((cluster.root / host / "state" / "audit-keys.jwks").read_text())
            pinned.update({str(jwk["kid"]): jwk for jwk in document.get("keys", [])})
    keys = work / "audit-keys.jwks"
    keys.write_text(json.dumps({"keys": list(pinned.values())}))
    keys.chmod(0o600)
    env = {
        **cluster.gateway_env("mon"),
        "XYD_DATABASE_URL": restored.url,
        "XYD_STATE_DIR": str(work / "state"),
        "XYD_AUDIT_JWKS": str(keys),
    }
    # One verify per witness file, side by side: each is a whole `xyd` start.
    witnesses: list[tuple[str, Path | None]] = [
        (host, path)
        for host in GATEWAY_HOSTS
        if (path := cluster.root / host / "state" / "audit-witness.jsonl").exists()
    ]
    running = []
    for host, given in witnesses or [("no host", None)]:
        args = ["--witness", str(given)] if given is not None else []
        argv = netns.exec_argv(cluster.ns("mon"), [str(XYD), "audit", "verify", *args])
        proc = subprocess.Popen(
            argv, env={"PATH": BASE_PATH, "LANG": "C.UTF-8", **env}, cwd=cluster.root,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        running.append((host, given, proc))
    results = []
    for host, given, proc in running:
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results.append(Verified(host, given, proc.returncode, out.strip()))
    return results
