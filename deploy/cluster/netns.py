"""Hosts as Linux network namespaces: one namespace per host, each with an `eth0`
whose peer sits on a bridge in a namespace of its own, so no address, link or rule
is added to the machine's own network (the root namespace is left untouched).

`entered(ns)` moves the calling thread (only it) into a namespace for a while:
sockets made there stay there, so a test talks to the hosts from its own process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence

CLONE_NEWNET = 0x40000000
BRIDGE = "br0"
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


def available() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns add, veth pairs)"
    try:
        ip("netns", "list")
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"`ip netns` is unavailable: {exc}"
    return None


def existing() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def make_network(net_ns: str) -> None:
    """The namespace holding the bridge every host's link is plugged into."""
    ip("netns", "add", net_ns)
    ip("-n", net_ns, "link", "set", "lo", "up")
    ip("-n", net_ns, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", net_ns, "link", "set", BRIDGE, "up")


def add_host(net_ns: str, host_ns: str, port: str, address: str) -> None:
    """A host namespace with `eth0` at `address` (CIDR), its peer `port` on the bridge."""
    ip("netns", "add", host_ns)
    ip("-n", host_ns, "link", "set", "lo", "up")
    ip("-n", net_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host_ns)
    ip("-n", net_ns, "link", "set", port, "master", BRIDGE)
    ip("-n", net_ns, "link", "set", port, "up")
    ip("-n", host_ns, "addr", "add", address, "dev", "eth0")
    ip("-n", host_ns, "link", "set", "eth0", "up")


def set_port(net_ns: str, port: str, up: bool) -> None:
    """A host's cable: its bridge port down cuts it off from every other host."""
    ip("-n", net_ns, "link", "set", port, "up" if up else "down")


def pids(ns: str) -> list[int]:
    found = ip("netns", "pids", ns, check=False)
    return [int(p) for p in found.stdout.split()] if found.returncode == 0 else []


def inodes(spaces: Sequence[str]) -> set[int]:
    """The namespaces' identities, to compare with /proc/PID/ns/net's."""
    found = set()
    for ns in spaces:
        with contextlib.suppress(OSError):
            found.add(os.stat(f"/run/netns/{ns}").st_ino)
    return found


def delete(ns: str) -> None:
    ip("netns", "delete", ns, check=False)


def exec_argv(ns: str, argv: Sequence[str], user: str | None = None) -> list[str]:
    """argv run inside `ns`, as `user` when given (setpriv execs, so the pid is argv's)."""
    prefix = ["ip", "netns", "exec", ns]
    if user is not None:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
    return [*prefix, *argv]


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """The calling thread inside network namespace `ns` until the block ends."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
