"""The cluster as tests see it: its hosts and addresses, commands run on a host,
processes killed, cables cut, and who leads PostgreSQL and Redis now.

Its state (prefix, passwords, recorded pids) is kept in ROOT/cluster.json, so
`python -m deploy.cluster down` finds what `up` started from another process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis import Redis

from deploy.cluster import netns
from deploy.cluster.engines import LB_PORT, MASTER_NAME, Service
from deploy.cluster.gateways import ISSUER, database_url, gateway_env, redis_url

SUBNET = "10.77.0"
# Each host's last address byte in SUBNET.
HOSTS: dict[str, int] = {
    "etcd": 2, "pg1": 11, "pg2": 12, "redis1": 21, "redis2": 22, "redis3": 23,
    "gw1": 31, "gw2": 32, "mon": 35, "lb": 40, "client": 50,
}  # fmt: skip
PG_HOSTS = ("pg1", "pg2")
REDIS_HOSTS = ("redis1", "redis2", "redis3")
GATEWAY_HOSTS = ("gw1", "gw2")
# The gateway host run from the image's exported root filesystem when there is one.
IMAGE_HOST = "gw2"
# A host `python -m deploy.cluster restore` adds for the restored PostgreSQL, and removes.
RESTORE_HOST = "restore"
RESTORE_ADDRESS = 60
BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Cluster:
    root: Path
    prefix: str
    passwords: dict[str, str]
    # PostgreSQL runs as `postgres`, which may not pass through a private (0700)
    # directory above `root` (`xyd` keeps .xyd/ so): its hosts live under /tmp.
    pg_root: Path
    # The image export (deploy/image/export.py) IMAGE_HOST runs from; None: every
    # gateway host runs the project's venv.
    image: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)
    # Settings a test asked for beyond the defaults (gateways.Overrides.env).
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # --- where things are ----------------------------------------------------
    @property
    def hosts(self) -> list[str]:
        return list(HOSTS)

    @property
    def net_ns(self) -> str:
        return f"{self.prefix}-net"

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return f"{SUBNET}.{RESTORE_ADDRESS if host == RESTORE_HOST else HOSTS[host]}"

    @property
    def addresses(self) -> dict[str, str]:
        return {host: self.address(host) for host in HOSTS}

    @property
    def lb_url(self) -> str:
        return f"http://{self.address('lb')}:{LB_PORT}"

    @property
    def issuer(self) -> str:
        return ISSUER

    @property
    def database_url(self) -> str:
        return database_url(self.passwords["xyd"], [self.address(h) for h in PG_HOSTS])

    @property
    def redis_url(self) -> str:
        return redis_url([self.address(h) for h in REDIS_HOSTS])

    def gateway_env(self, host: str) -> dict[str, str]:
        return gateway_env(self.root, host, self.database_url, self.redis_url, self.env)

    @property
    def archive_dir(self) -> Path:
        """The WAL archive the primary copies every segment into (one directory
        both PostgreSQL hosts reach, as a shared volume would be)."""
        return self.pg_root / "archive"

    @property
    def backup_dir(self) -> Path:
        return self.root / "backups"

    def log(self, service: str) -> Path:
        return self.root / "logs" / f"{service}.log"

    def tail(self, service: str, lines: int = 30) -> str:
        try:
            text = self.log(service).read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            return f"(no log for {service}: {exc.strerror})"
        return f"--- last {len(text)} lines of {self.log(service)}\n" + "\n".join(text)

    # --- state ---------------------------------------------------------------
    def save(self) -> None:
        state = {
            "prefix": self.prefix,
            "passwords": self.passwords,
            "pg_root": str(self.pg_root),
            "image": str(self.image) if self.image is not None else None,
            "pids": self.pids,
            "env": self.env,
        }
        path = self.root / "cluster.json"
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)

    @classmethod
    def load(cls, root: Path) -> Cluster:
        state = json.loads((root / "cluster.json").read_text())
        image = Path(state["image"]) if state.get("image") else None
        return cls(
            root, state["prefix"], state["passwords"], Path(state["pg_root"]), image,
            state["pids"], state.get("env", {}),
        )  # fmt: skip

    # --- processes -----------------------------------------------------------
    def start(self, service: Service) -> None:
        log = self.log(service.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                netns.exec_argv(self.ns(service.host), service.argv, service.user),
                env={"PATH": BASE_PATH, "LANG": "C.UTF-8", **service.env},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=service.cwd or self.root, start_new_session=True,
            )  # fmt: skip
        self.procs[service.name] = proc
        self.pids[service.name] = proc.pid
        self.save()

    def exited(self, service: str) -> int | None:
        """The service's exit status when it has ended, else None."""
        proc = self.procs.get(service)
        return proc.poll() if proc is not None else None

    def run_in(
        self,
        host: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """argv run to its end on `host` (output captured, not checked)."""
        return subprocess.run(
            netns.exec_argv(self.ns(host), argv, user),
            env={"PATH": BASE_PATH, "LANG": "C.UTF-8", **(env or {})},
            capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root,
        )  # fmt: skip

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        """The service's process group (it and what it started) gets `sig`, if its
        leader still runs on one of this cluster's hosts (a recorded pid may have
        been reused since)."""
        pid = self.pids.get(service)
        if pid is not None and self.holds(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)

    def holds(self, pid: int) -> bool:
        """Whether process `pid` lives in one of this cluster's namespaces."""
        try:
            inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            return False
        return inode in netns.inodes([self.ns(h) for h in HOSTS])

    def kill_host(self, host: str) -> list[int]:
        """Every process on `host`, at once, with SIGKILL: the host lost its power."""
        killed = netns.pids(self.ns(host))
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name, proc in self.procs.items():
            if proc.pid in killed:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                self.pids.pop(name, None)
        return killed

    # --- the network -----------------------------------------------------------
    def link_down(self, host: str) -> None:
        netns.set_port(self.net_ns, f"v-{host}", up=False)

    def link_up(self, host: str) -> None:
        netns.set_port(self.net_ns, f"v-{host}", up=True)

    def block(self, host: str, targets: Sequence[str]) -> None:
        """`host` drops what it sends to `targets` (other hosts), the rest flows."""
        for target in targets:
            rule = ["-A", "OUTPUT", "-d", self.address(target), "-j", "DROP"]
            self.run_in(host, ["iptables", *rule], timeout=10).check_returncode()

    def unblock(self, host: str) -> None:
        self.run_in(host, ["iptables", "-F", "OUTPUT"], timeout=10).check_returncode()

    # --- who leads -------------------------------------------------------------
    def primary_pg(self) -> str | None:
        """The PostgreSQL host whose Patroni says it is the writable primary."""
        with netns.entered(self.ns("client")):
            for host in PG_HOSTS:
                with contextlib.suppress(httpx.HTTPError):
                    url = f"http://{self.address(host)}:8008/primary"
                    if httpx.get(url, timeout=1).status_code == 200:
                        return host
        return None

    def redis_master(self) -> str | None:
        """The Redis master's address as the sentinels' majority names it."""
        answers: list[str] = []
        with netns.entered(self.ns("client")):
            for host in REDIS_HOSTS:
                sentinel = Redis(self.address(host), 26379, socket_timeout=1, decode_responses=True)
                with contextlib.suppress(Exception), sentinel:
                    found = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
                    if isinstance(found, tuple):
                        answers.append(str(found[0]))
        best = max(set(answers), key=answers.count, default=None)
        return best if best is not None and answers.count(best) >= 2 else None

    def wait_ready(self, timeout: float = 60) -> None:
        """Every service answers; see deploy/cluster/lifecycle.py."""
        from deploy.cluster.lifecycle import wait_ready

        wait_ready(self, timeout)
