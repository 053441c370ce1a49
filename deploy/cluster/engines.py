"""The engines' configurations and command lines: etcd, Patroni (PostgreSQL),
Redis with Sentinel, HAProxy. Each `*_service` writes its files under the host's
directory and returns what to run there."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deploy.pgbackup import archive_settings
from gateway.errors import PROBLEM_BASE

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MASTER_NAME = "xyd"
GATEWAY_PORT = 8080
LB_PORT = 8080


@dataclass(frozen=True)
class Service:
    """One process the cluster starts: on `host`, as `user` (None: root)."""

    name: str
    host: str
    argv: list[str]
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # None: the cluster's directory (root's alone)


def etcd_service(home: Path, address: str) -> Service:
    home.mkdir(parents=True, exist_ok=True)
    client = f"http://{address}:2379"
    peer = f"http://{address}:2380"
    argv = [
        "/usr/bin/etcd", "--name", "etcd", "--data-dir", str(home / "data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"etcd={peer}", "--initial-cluster-state", "new",
    ]  # fmt: skip
    return Service("etcd", "etcd", argv)


def patroni_service(
    home: Path,
    host: str,
    address: str,
    etcd: str,
    scope: str,
    passwords: dict[str, str],
    archive: Path,
) -> Service:
    """A PostgreSQL 15 host managed by Patroni; the first to start bootstraps and
    creates the `xyd` role and database (post_bootstrap). The primary archives
    its WAL into `archive` (deploy/pgbackup.py), which every host reaches, so a
    new primary after a failover archives on into the same directory."""
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    bootstrap = home / "post_bootstrap.sh"
    bootstrap.write_text(
        "#!/bin/sh\nset -e\n"
        # Strict synchronous mode would hold these commits until a standby exists,
        # and the standby waits for this bootstrap to end.
        "export PGOPTIONS='-c synchronous_commit=local'\n"
        f'psql "$1" -v ON_ERROR_STOP=1 -c "CREATE ROLE xyd LOGIN PASSWORD \'{passwords["xyd"]}\'"'
        ' -c "CREATE DATABASE xyd OWNER xyd"\n'
    )
    bootstrap.chmod(0o755)
    config = {
        "scope": scope,
        "name": host,
        "restapi": {"listen": f"{address}:8008", "connect_address": f"{address}:8008"},
        "etcd3": {"host": f"{etcd}:2379"},
        "bootstrap": {
            "dcs": {
                # Failover in seconds for the tests: the leader key lives 10 s and is
                # renewed every second (ttl >= loop_wait + 2 * retry_timeout).
                "ttl": 10,
                "loop_wait": 1,
                "retry_timeout": 4,
                "maximum_lag_on_failover": 1048576,
                # A report is answered only after its audit entry committed. With a
                # synchronous standby that commit is on two hosts before the answer,
                # and Patroni promotes only the standby named synchronous in etcd, so
                # losing the primary loses no acknowledged entry.
                # Not strict: with two hosts, strict mode makes the promoted standby
                # wait for a standby of its own, so one host lost stops every write
                # until it is back (a single failure would take the service down,
                # which is what two hosts are for). Unstrict, the lone primary commits
                # alone until the other rejoins (pg_rewind, then streaming again),
                # and only a second failure in that window could lose a commit; the
                # usual choice with two database hosts. Zero loss through any two
                # failures takes a third host (synchronous_node_count with two standbys).
                "synchronous_mode": True,
                "synchronous_mode_strict": False,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"wal_log_hints": "on", "max_wal_senders": 10},
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_bootstrap": str(bootstrap),
        },
        "postgresql": {
            "listen": f"{address}:5432",
            "connect_address": f"{address}:5432",
            "data_dir": str(home / "data"),
            "bin_dir": str(PG_BIN),
            "pgpass": str(home / "pgpass"),
            # A new standby copies the primary at once, not after a spread checkpoint.
            "basebackup": [{"checkpoint": "fast"}],
            "authentication": {
                "superuser": {"username": "postgres", "password": passwords["postgres"]},
                "replication": {"username": "replicator", "password": passwords["replicator"]},
            },
            "parameters": {"unix_socket_directories": str(run), **archive_settings(archive)},
            "pg_hba": [
                "local all all trust",
                "host replication replicator 10.77.0.0/24 scram-sha-256",
                "host all all 10.77.0.0/24 scram-sha-256",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }
    path = home / "patroni.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.chown(home, "postgres", "postgres")
    for child in (run, bootstrap, path):
        shutil.chown(child, "postgres", "postgres")
    home.chmod(0o700)
    env = {"HOME": str(home), "PATH": f"{PG_BIN}:/usr/bin:/bin"}
    argv = ["/usr/bin/patroni", str(path)]
    return Service(host, host, argv, user="postgres", env=env, cwd=home)


def redis_service(home: Path, host: str, address: str, master: str | None) -> Service:
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        f"bind {address}", "port 6379", "protected-mode no", f"dir {home}",
        # The append-only file, fsynced every second: the replay guards, revocation
        # marks and today's counts survive a restart but for the last second, which
        # the gateway covers (replay floor, counts rebuilt from the audit trail);
        # `always` would put a disk flush on every request's one Redis trip.
        "appendonly yes", "appendfsync everysec", 'save ""',
        # A master that no replica follows (cut off on its own) stops taking
        # writes after 5 s rather than accept what a failover would throw away.
        # Replication is asynchronous otherwise: the gateway waits for one
        # replica on the writes that must survive a failover (XYD_REDIS_WAIT_REPLICAS).
        "min-replicas-to-write 1", "min-replicas-max-lag 5",
        # Each second's set of spent jtis expires whole: freed by a background
        # thread, not in the event loop every request waits on (up to 5 ms a set).
        "lazyfree-lazy-expire yes",
    ]  # fmt: skip
    if master is not None:
        lines.append(f"replicaof {master} 6379")
    path = home / "redis.conf"
    path.write_text("\n".join(lines) + "\n")
    return Service(host, host, ["/usr/bin/redis-server", str(path)])


def sentinel_service(home: Path, n: int, address: str, master: str) -> Service:
    """Sentinel rewrites its file as it learns the topology, so it is its own copy."""
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        f"bind {address}", "port 26379", "protected-mode no", f"dir {home}",
        f"sentinel monitor {MASTER_NAME} {master} 6379 2",
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
        f"sentinel failover-timeout {MASTER_NAME} 5000",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
    ]  # fmt: skip
    path = home / "sentinel.conf"
    path.write_text("\n".join(lines) + "\n")
    return Service(f"sentinel{n}", f"redis{n}", ["/usr/bin/redis-sentinel", str(path)])


def haproxy_service(home: Path, address: str, gateways: dict[str, str]) -> Service:
    """HTTP in front of the gateway hosts: a host leaves after two failed /readyz
    checks a second apart and comes back after two good ones."""
    home.mkdir(parents=True, exist_ok=True)
    servers = "\n".join(
        f"    server {name} {addr}:{GATEWAY_PORT} check" for name, addr in gateways.items()
    )
    errors = _problem_pages(home)
    path = home / "haproxy.cfg"
    path.write_text(f"""global
    maxconn 2000
    stats socket {home}/haproxy.sock mode 600 level admin

defaults
    mode http
    option httplog
    log stdout format raw local0
    # A request head must arrive within 10 s (slowloris); idle and slow peers end.
    timeout http-request 10s
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 5s
    timeout queue 5s
    timeout check 2s
    # What HAProxy answers itself (no gateway up, one timed out) is a problem
    # document like the gateways' own, so a client reads every refusal alike.
{errors}
    # A request is tried again on the other host when its connection failed (never
    # sent) or, for a read, when the host closed without answering (it died with
    # the request in flight); a write that may have been applied is never resent.
    retries 2
    option redispatch
    retry-on conn-failure empty-response

frontend xyd
    bind {address}:{LB_PORT}
    maxconn 1000
    default_backend gateways

backend gateways
    balance roundrobin
    http-request disable-l7-retry unless METH_GET || METH_HEAD
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 maxconn 200
{servers}
""")
    return Service("lb", "lb", ["/usr/sbin/haproxy", "-db", "-f", str(path)])


PROBLEMS = {
    502: ("Bad Gateway", "a gateway host failed to answer; retry"),
    503: ("Service Unavailable", "no gateway host can answer now; retry shortly"),
    504: ("Gateway Timeout", "a gateway host did not answer in time; retry"),
}


def _problem_pages(home: Path) -> str:
    """HAProxy's own error answers as application/problem+json files; the
    `errorfile` lines naming them."""
    lines = []
    for status, (reason, detail) in PROBLEMS.items():
        body = json.dumps({
            "type": PROBLEM_BASE + "gateway-unavailable",
            "title": "The gateway is unavailable", "status": status, "detail": detail,
        })  # fmt: skip
        page = home / f"{status}.http"
        page.write_bytes(
            (
                f"HTTP/1.1 {status} {reason}\r\n"
                "Content-Type: application/problem+json\r\n"
                f"Content-Length: {len(body.encode())}\r\n"
                "Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
                f"{body}"
            ).encode()
        )
        lines.append(f"    errorfile {status} {page}")
    return "\n".join(lines)
