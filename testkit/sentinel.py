"""A throw-away Redis under Sentinel: a master (AOF on), one replica, three sentinels.

All on 127.0.0.1's free ports, run from Debian's `redis-server` and
`redis-sentinel` in a temp dir, every wait bounded, every process stopped and
the dir removed on the way out. `failover()` and `kill_master()` are the two
ways a master goes: handed over, or lost.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from testkit.services import free_port

MASTER_NAME = "xyd"
# Seconds a sentinel waits before calling a silent master down; small, so a
# test's switch takes seconds, not the default half-minute.
DOWN_AFTER_MS = 1000


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found; `make services` installs it")
    return found


def _until(what: str, ready: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"sentinel set: {what} not within {seconds:.0f} s")
        time.sleep(0.05)


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)


@dataclass
class SentinelSet:
    root: Path
    redis_ports: list[int]
    sentinel_ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The gateway's XYD_REDIS_URL for this set."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def master_port(self) -> int:
        """The master's port as the first sentinel that answers sees it."""
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError), _client(port) as sentinel:
                _host, master = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(master)
        raise redis.ConnectionError("no sentinel answered")

    def master(self) -> redis.Redis:
        """A plain client to the current master (for a test's own reads)."""
        return _client(self.master_port())

    def start_failover(self) -> None:
        """SENTINEL FAILOVER: the replica is promoted, the old master demoted
        (its clients are disconnected). Returns at once; see `wait_switched`."""
        with _client(self.sentinel_ports[0]) as sentinel:
            sentinel.sentinel_failover(MASTER_NAME)

    def kill_master(self, seconds: float = 30) -> None:
        """SIGKILL the master once a replica has all it wrote (replication is
        asynchronous: a replica behind would come up without the last writes);
        the sentinels agree it is down (after `DOWN_AFTER_MS`) and promote the
        replica. Returns once killed."""
        port = self.master_port()
        with _client(port) as master:
            _until("a replica in sync", lambda: int(master.execute_command("WAIT", 1, 500)) >= 1,
                   seconds)  # fmt: skip
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def failover(self, seconds: float = 30) -> int:
        """`start_failover`, then the new master's port once it is in charge."""
        old = self.master_port()
        self.start_failover()
        return self.wait_switched(old, seconds)

    def wait_switched(self, old: int, seconds: float = 30) -> int:
        """The new master's port once every sentinel names it, not `old`, and
        it says it is a master."""

        def switched() -> bool:
            seen = set()
            for port in self.sentinel_ports:
                with _client(port) as sentinel:
                    seen.add(int(sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            if len(seen) != 1 or old in seen:
                return False
            with _client(seen.pop()) as master:
                return master.role()[0] in (b"master", "master")

        _until("the promotion", switched, seconds)
        return self.master_port()

    def _start(self, port: int, args: list[str], binary: str) -> None:
        log = (self.root / f"{port}.log").open("wb")
        self.processes[port] = subprocess.Popen(
            [binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()


def _redis_args(root: Path, port: int, *, replica_of: int | None) -> list[str]:
    data = root / f"redis-{port}"
    data.mkdir()
    args = [
        "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
        "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
        "--daemonize", "no",
    ]  # fmt: skip
    if replica_of is not None:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    return args


def _sentinel_conf(root: Path, port: int, master_port: int) -> Path:
    conf = root / f"sentinel-{port}.conf"  # the sentinel rewrites it: ours, not shared
    conf.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {root}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n"
    )
    return conf


@contextlib.contextmanager
def sentinel_set(seconds: float = 30) -> Iterator[SentinelSet]:
    server, sentinel_bin = _binary("redis-server"), _binary("redis-sentinel")
    root = Path(tempfile.mkdtemp(prefix="xyd-sentinel-"))
    master, replica = free_port(), free_port()
    found = SentinelSet(root, [master, replica], [free_port() for _ in range(3)])
    try:
        found._start(master, _redis_args(root, master, replica_of=None), server)
        found._start(replica, _redis_args(root, replica, replica_of=master), server)

        def in_sync() -> bool:
            with _client(replica) as client:
                return client.info("replication").get("master_link_status") == "up"

        _until("the replica's sync", in_sync, seconds)
        for port in found.sentinel_ports:
            found._start(port, [str(_sentinel_conf(root, port, master))], sentinel_bin)

        def watching() -> bool:
            for port in found.sentinel_ports:
                with _client(port) as sentinel:
                    state = sentinel.sentinel_master(MASTER_NAME)
                    if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                        return False
            return True

        _until("three sentinels watching the master and its replica", watching, seconds)
        yield found
    finally:
        found.stop()
        shutil.rmtree(root, ignore_errors=True)
