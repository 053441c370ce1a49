"""`python -m deploy.cluster up|down|status|run|backup|restore`: the cluster from a
shell (`make cluster` runs `run`: up, wait for Ctrl-C, down).

up/run --gateway-from-image   gw2 runs the gateway from the image's exported root
                              (deploy/image: built and exported first, cached)
backup                        a base backup of the current primary
restore --to DIR              the latest backup (or --backup) and the WAL archive
                              restored into a fresh PostgreSQL, then `xyd audit verify`
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from deploy.cluster import backup, lifecycle, netns
from deploy.cluster.topology import HOSTS, IMAGE_HOST, Cluster
from deploy.image.buildah import BuildahError

DEFAULT_DIR = Path(".xyd/cluster")


def _how_to_reach(cluster: Cluster) -> str:
    hosts = "  ".join(f"{h}={cluster.address(h)}" for h in HOSTS)
    return (
        f"cluster {cluster.prefix} up in {cluster.root}\n  {hosts}\n"
        f"  through HAProxy: ip netns exec {cluster.ns('client')} curl {cluster.lb_url}/readyz\n"
        f"  a command on a host: ip netns exec {cluster.ns('mon')} ...\n"
        f"  logs: {cluster.root}/logs/\n"
        f"  HAProxy stats: echo 'show stat' | socat - {cluster.root}/lb/haproxy.sock"
        + (
            f"\n  {IMAGE_HOST} runs from the image's root {cluster.image}/rootfs"
            if cluster.image
            else ""
        )
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


def exported_image() -> Path:
    """The image built and exported (each step reused when its inputs are unchanged)."""
    from deploy.image.base import DEFAULT_CACHE
    from deploy.image.build import REPO, build
    from deploy.image.export import DEFAULT_OUT, export

    built = build(REPO / DEFAULT_CACHE)
    return export(built.image, REPO / DEFAULT_OUT)


def restore(root: Path, to: Path, source: Path | None, target_time: datetime | None) -> int:
    """Restore, print the restored trail and each verify's result; 0 when all pass."""
    cluster = Cluster.load(root)
    if target_time is None:
        # Everything committed so far is in the archive before the restore reads it.
        print(f"archived up to {backup.archive_now(cluster)}")
    with backup.restored(cluster, to, source=source, target_time=target_time) as done:
        trail = backup.trail(cluster, done.url)
        print(f"restored {done.backup} into {done.data_dir} ({done.address}): "
              f"{trail.count} audit entries, last seq {trail.last_seq}")  # fmt: skip
        results = backup.verify(cluster, done)
    for result in results:
        against = (
            f"{result.host}'s witness {result.witness}"
            if result.witness is not None
            else "no witness (no host has exported one yet: the chain alone)"
        )
        verdict = "passed" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"xyd audit verify against {against}: {verdict}")
        print("  " + result.output.replace("\n", "\n  "))
    return 0 if all(r.returncode == 0 for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "run", "backup", "restore"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="its throw-away directory")
    parser.add_argument("--prefix", default="xyd", help="the namespaces' name prefix")
    parser.add_argument(
        "--gateway-from-image",
        action="store_true",
        help=f"up/run: {IMAGE_HOST} runs from the image's root filesystem (read-only, uid 10001)",
    )
    parser.add_argument("--to", type=Path, help="restore: a fresh directory for the data")
    parser.add_argument("--backup", type=Path, help="restore: this backup, not the latest")
    parser.add_argument(
        "--target-time",
        type=datetime.fromisoformat,
        help="restore: stop before the first commit after this (ISO 8601, with offset)",
    )
    args = parser.parse_args(argv)
    if (why := netns.available()) is not None:
        print(f"deploy.cluster: {why}", file=sys.stderr)
        return 2
    if args.command == "status":
        return status(args.dir)
    if args.command in ("backup", "restore"):
        if args.command == "restore" and args.to is None:
            parser.error("restore needs --to DIR (a fresh directory for the restored data)")
        if args.target_time is not None and args.target_time.tzinfo is None:
            parser.error("--target-time needs an offset, e.g. 2026-12-06T08:30:00+00:00")
        try:
            if args.command == "backup":
                print(backup.backup(Cluster.load(args.dir)))
                return 0
            return restore(args.dir, args.to, args.backup, args.target_time)
        except backup.RestoreError as exc:
            print(f"deploy.cluster {args.command}: {exc}", file=sys.stderr)
            return 1
    if args.command == "down":
        found = (args.dir / "cluster.json").exists()
        left = lifecycle.down(Cluster.load(args.dir)) if found else []
        print(f"left over: {left}" if left else "cluster down")
        return 1 if left else 0
    start = time.monotonic()
    try:
        image = exported_image() if args.gateway_from_image else None
        cluster = lifecycle.up(args.dir, args.prefix, image)
    except (lifecycle.ClusterError, BuildahError) as exc:
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
