"""`python -m deploy.cluster up|down|status|run`: the cluster from a shell
(`make cluster` runs `run`: up, wait for Ctrl-C, down)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from deploy.cluster import lifecycle, netns
from deploy.cluster.topology import HOSTS, Cluster

DEFAULT_DIR = Path(".xyd/cluster")


def _how_to_reach(cluster: Cluster) -> str:
    hosts = "  ".join(f"{h}={cluster.address(h)}" for h in HOSTS)
    return (
        f"cluster {cluster.prefix} up in {cluster.root}\n  {hosts}\n"
        f"  through HAProxy: ip netns exec {cluster.ns('client')} curl {cluster.lb_url}/readyz\n"
        f"  a command on a host: ip netns exec {cluster.ns('mon')} ...\n"
        f"  logs: {cluster.root}/logs/\n"
        f"  HAProxy stats: echo 'show stat' | socat - {cluster.root}/lb/haproxy.sock"
    )


def status(root: Path) -> int:
    cluster = Cluster.load(root)
    alive = {name: cluster.exited(name) is None and Path(f"/proc/{pid}").exists()
             for name, pid in cluster.pids.items()}  # fmt: skip
    for name, pid in cluster.pids.items():
        print(f"{name:10} pid {pid:7}  {'running' if alive[name] else 'gone'}")
    print(f"PostgreSQL primary: {cluster.primary_pg()}  Redis master: {cluster.redis_master()}")
    print(f"HAProxy: {lifecycle.lb_servers(cluster)}")
    return 0 if all(alive.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "run"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="its throw-away directory")
    parser.add_argument("--prefix", default="xyd", help="the namespaces' name prefix")
    args = parser.parse_args(argv)
    if (why := netns.available()) is not None:
        print(f"deploy.cluster: {why}", file=sys.stderr)
        return 2
    if args.command == "status":
        return status(args.dir)
    if args.command == "down":
        found = (args.dir / "cluster.json").exists()
        left = lifecycle.down(Cluster.load(args.dir)) if found else []
        print(f"left over: {left}" if left else "cluster down")
        return 1 if left else 0
    start = time.monotonic()
    try:
        cluster = lifecycle.up(args.dir, args.prefix)
    except lifecycle.ClusterError as exc:
        print(f"deploy.cluster up failed: {exc}", file=sys.stderr)
        return 1
    print(f"{_how_to_reach(cluster)}\n  up in {time.monotonic() - start:.1f} s")
    if args.command == "up":
        return 0
    # Also when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print("Ctrl-C tears it down", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        print("tearing down", flush=True)
    left = lifecycle.down(cluster)
    print(f"left over: {left}" if left else "cluster down")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
