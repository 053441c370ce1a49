"""Bring the cluster up (every wait bounded, a failed one shows that service's log),
tell how it is, and tear it down (every process it started, its namespaces, its
directory)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from deploy.cluster import netns
from deploy.cluster.engines import (
    GATEWAY_PORT,
    etcd_service,
    haproxy_service,
    patroni_service,
    redis_service,
    sentinel_service,
)
from deploy.cluster.gateways import (
    XYD,
    Overrides,
    gateway_service,
    image_gateway_service,
    make_shared,
    monitor_service,
)
from deploy.cluster.topology import (
    GATEWAY_HOSTS,
    HOSTS,
    IMAGE_HOST,
    PG_HOSTS,
    REDIS_HOSTS,
    RESTORE_HOST,
    Cluster,
)


class ClusterError(RuntimeError):
    """A service did not come up in time (the message carries its log's last lines)."""


def wait_for(
    cluster: Cluster, what: str, probe: Callable[[], bool], services: list[str], timeout: float
) -> float:
    """Seconds until `probe()` held; ClusterError after `timeout` or when one of
    `services` has exited."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if probe():
                return time.monotonic() - start
        dead = [s for s in services if cluster.exited(s) is not None]
        if dead or time.monotonic() - start > timeout:
            why = f"{', '.join(dead)} exited" if dead else f"not within {timeout:.0f} s"
            logs = "\n".join(cluster.tail(s) for s in services)
            raise ClusterError(f"{what}: {why}\n{logs}")
        time.sleep(0.2)


def _http_ok(cluster: Cluster, url: str) -> bool:
    with netns.entered(cluster.ns("client")):
        return httpx.get(url, timeout=2).status_code == 200


def _listening(cluster: Cluster, host: str, port: int) -> bool:
    with (
        netns.entered(cluster.ns("client")),
        socket.create_connection((cluster.address(host), port), timeout=1),
    ):
        return True


def build_network(cluster: Cluster) -> None:
    netns.make_network(cluster.net_ns)
    for host in HOSTS:
        netns.add_host(cluster.net_ns, cluster.ns(host), f"v-{host}", f"{cluster.address(host)}/24")


def start_engines(cluster: Cluster) -> None:
    root, addr = cluster.root, cluster.address
    cluster.start(etcd_service(root / "etcd", addr("etcd")))
    master = addr(REDIS_HOSTS[0])
    for n, host in enumerate(REDIS_HOSTS, 1):
        replica_of = None if n == 1 else master
        cluster.start(redis_service(root / host, host, addr(host), replica_of))
        cluster.start(sentinel_service(root / f"sentinel{n}", n, addr(host), master))
    etcd = partial(_http_ok, cluster, f"http://{addr('etcd')}:2379/health")
    wait_for(cluster, "etcd", etcd, ["etcd"], 20)
    cluster.archive_dir.mkdir(mode=0o700)
    shutil.chown(cluster.archive_dir, "postgres", "postgres")
    for host in PG_HOSTS:
        start_pg(cluster, host)


def start_pg(cluster: Cluster, host: str) -> None:
    """A PostgreSQL host's Patroni started again on its data: a former primary is
    rewound (pg_rewind) and follows the new one."""
    cluster.start(patroni_service(cluster.pg_root / host, host, cluster.address(host),
                                  cluster.address("etcd"), f"{cluster.prefix}-pg",
                                  cluster.passwords, cluster.archive_dir))  # fmt: skip


def wait_engines(cluster: Cluster, timeout: float = 60) -> None:
    def primary() -> bool:
        return cluster.primary_pg() is not None

    def replicating() -> bool:
        standby = [h for h in PG_HOSTS if h != cluster.primary_pg()]
        url = f"http://{cluster.address(standby[0])}:8008/sync"
        return len(standby) == 1 and _http_ok(cluster, url)

    def master() -> bool:
        return cluster.redis_master() is not None

    wait_for(cluster, "a PostgreSQL primary", primary, list(PG_HOSTS), timeout)
    wait_for(cluster, "a synchronous standby", replicating, list(PG_HOSTS), timeout)
    for n, host in enumerate(REDIS_HOSTS, 1):
        wait_for(cluster, host, partial(_listening, cluster, host, 6379), [host], 10)
        sentinel = f"sentinel{n}"
        wait_for(cluster, sentinel, partial(_listening, cluster, host, 26379), [sentinel], 10)
    wait_for(cluster, "the sentinels' master", master, ["sentinel1", "sentinel2", "sentinel3"], 20)


def place_state_files(state: Path, files: dict[str, bytes]) -> None:
    """`files` in a host's state directory, owned as the directory is."""
    state.mkdir(parents=True, exist_ok=True)
    owner = state.stat()
    for name, content in files.items():
        path = state / name
        path.write_bytes(content)
        path.chmod(0o600)
        os.chown(path, owner.st_uid, owner.st_gid)


def start_gateways(cluster: Cluster, state_files: dict[str, bytes] | None = None) -> None:
    migrated = cluster.run_in("mon", [str(XYD), "db", "upgrade"], env=cluster.gateway_env("mon"))
    if migrated.returncode != 0:
        raise ClusterError(f"xyd db upgrade failed:\n{migrated.stdout}\n{migrated.stderr}")
    for host in GATEWAY_HOSTS:
        address, env = cluster.address(host), cluster.gateway_env(host)
        if cluster.image is not None and host == IMAGE_HOST:
            service = image_gateway_service(cluster.root, host, address, env, cluster.image)
        else:
            service = gateway_service(host, address, env)
        place_state_files(cluster.root / host / "state", state_files or {})
        cluster.start(service)
    cluster.start(monitor_service(cluster.gateway_env("mon")))
    gateways = {host: cluster.address(host) for host in GATEWAY_HOSTS}
    cluster.start(haproxy_service(cluster.root / "lb", cluster.address("lb"), gateways))


def wait_ready(cluster: Cluster, timeout: float = 60) -> None:
    def both_up() -> bool:
        return lb_servers(cluster) == {h: "UP" for h in GATEWAY_HOSTS}

    for host in GATEWAY_HOSTS:
        url = f"http://{cluster.address(host)}:{GATEWAY_PORT}/readyz"
        wait_for(cluster, f"{host}'s /readyz", partial(_http_ok, cluster, url), [host], timeout)
    wait_for(cluster, "HAProxy with both gateways up", both_up, ["lb"], timeout)
    wait_for(cluster, "the monitor", lambda: cluster.exited("mon") is None, ["mon"], 1)


def lb_servers(cluster: Cluster, field: str = "status") -> dict[str, str]:
    """A field of each gateway's row in HAProxy's `show stat` (`status`: UP,
    DOWN...; `stot`: requests sent to it), from its stats socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(cluster.root / "lb" / "haproxy.sock"))
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    names = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(names, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        r["svname"]: r[field].split(" ")[0]
        for r in rows
        if r["pxname"] == "gateways" and r["svname"] in HOSTS
    }


def up(
    root: Path, prefix: str, image: Path | None = None, overrides: Overrides | None = None
) -> Cluster:
    """The whole topology, ready; on any failure everything started is torn down.
    With `image` (an export of deploy/image), IMAGE_HOST runs the gateway from it;
    `overrides`: settings and platforms a test asks for beyond the defaults."""
    overrides = overrides or Overrides()
    root = root.resolve()
    if (root / "cluster.json").exists():
        raise ClusterError(f"{root} holds a cluster already: `python -m deploy.cluster down`")
    clashing = [ns for ns in netns.existing() if ns.startswith(f"{prefix}-")]
    if clashing:
        raise ClusterError(f"namespaces {', '.join(clashing)} exist: choose another --prefix")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    pg_root = Path(tempfile.mkdtemp(prefix=f"xyd-cluster-{prefix}-pg-"))
    pg_root.chmod(0o711)
    passwords = {k: secrets.token_hex(12) for k in ("xyd", "postgres", "replicator")}
    cluster = Cluster(root, prefix, passwords, pg_root, image, env=dict(overrides.env))
    cluster.save()
    try:
        build_network(cluster)
        make_shared(root, overrides.platforms)
        start_engines(cluster)
        wait_engines(cluster)
        start_gateways(cluster, overrides.state_files)
        wait_ready(cluster)
    except BaseException:
        down(cluster)
        raise
    return cluster


def down(cluster: Cluster, grace: float = 3.0) -> list[str]:
    """Every process started (TERM, then KILL after `grace`), anything else left in
    the namespaces, the namespaces, the directory. Returns what was left over."""
    for name in list(cluster.pids):
        cluster.kill(name, signal.SIGTERM)
    deadline = time.monotonic() + grace
    spaces = [cluster.ns(h) for h in (*HOSTS, RESTORE_HOST)]
    while time.monotonic() < deadline and any(netns.pids(ns) for ns in spaces):
        time.sleep(0.1)
    for ns in spaces:
        for pid in netns.pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in list(cluster.pids):
        cluster.kill(name, signal.SIGKILL)
    for proc in cluster.procs.values():
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
    for ns in [*spaces, cluster.net_ns]:
        netns.delete(ns)
    shutil.rmtree(cluster.pg_root, ignore_errors=True)
    shutil.rmtree(cluster.root, ignore_errors=True)
    left = leftovers(cluster)
    cluster.procs.clear()
    return left


def leftovers(cluster: Cluster) -> list[str]:
    """Namespaces of this cluster's prefix, and live processes it recorded."""
    left = [ns for ns in netns.existing() if ns.startswith(f"{cluster.prefix}-")]
    for name, pid in cluster.pids.items():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                left.append(f"{name} (pid {pid})")
    return left
