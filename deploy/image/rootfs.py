"""Run a command of the image from its exported root filesystem, as a runtime would.

No container runtime starts here (crun refuses these machines' cgroups), so a
gateway host runs the image's root the way a pod would see it: in a mount
namespace of its own (`unshare --mount`), the root bind-mounted read-only, a
tmpfs on /tmp and /run, /proc and /dev, the state directory and any key
files bound in, then `chroot` and `setpriv` to the image's user (uid and gid
10001, no supplementary groups, no capabilities, no new privileges). The
environment is the image's own (image.json) with the caller's settings over
it.

The API, for `python -m deploy.image run` and the cluster's gateway hosts:

    out = export(image)                                  # deploy/image/export.py
    argv = command(out, state=Path("/srv/h1/state"),
                   binds={Path("/srv/h1/kek.key"): "/run/xyd/keys/kek.key"},
                   netns="xyd-h1")                      # `xyd serve` by default
    env = environment(out, {"XYD_DATABASE_URL": ..., "XYD_PORT": "8000"})
    subprocess.Popen(argv, env=env)

`command(out, args=["db", "upgrade"], ...)` runs another `xyd` command with the
same mounts. Stopping the Popen'd process (SIGTERM) stops the gateway: every
wrapper execs the next, so its pid is the gateway's. It needs root.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.image.export import ImageConfig

STATE_DIR = "/var/lib/xyd"


def _mount_script(
    root: Path, state: Path, binds: Mapping[Path, str], writable: Mapping[Path, str]
) -> list[str]:
    r = shlex.quote(str(root))
    lines = [
        "set -e",
        # Nothing mounted here leaks back to the host's namespace.
        "mount --make-rprivate /",
        f"mount --bind {r} {r}",
        f"mount -t proc proc {r}/proc",
        f"mount --rbind /dev {r}/dev",
        # The root's own /tmp, a tmpfs as a pod's emptyDir, not a file of the host's /tmp.
        f"mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs {r}/tmp",  # noqa: S108
        f"mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs {r}/run",
        f"mount --bind {shlex.quote(str(state))} {r}{STATE_DIR}",
    ]
    for read_only, mapping in ((True, binds), (False, writable)):
        for host_path, inside in mapping.items():
            target = f"{r}{shlex.quote(inside)}"
            make = "mkdir -p" if host_path.is_dir() else "install -D /dev/null"
            lines.append(f"[ -e {target} ] || {make} {target}")
            options = "--bind -o ro" if read_only else "--bind"
            lines.append(f"mount {options} {shlex.quote(str(host_path))} {target}")
    # Last, so the mount points above could still be made: the root read-only.
    lines.append(f"mount -o remount,bind,ro {r}")
    return lines


def command(
    out: Path,
    *,
    state: Path,
    args: Sequence[str] | None = None,
    binds: Mapping[Path, str] | None = None,
    writable: Mapping[Path, str] | None = None,
    netns: str | None = None,
    entrypoint: Sequence[str] | None = None,
) -> list[str]:
    """The argv that runs the image's entrypoint with `args` (its CMD when None).

    `entrypoint` replaces the image's, and its CMD with it, as
    `podman run --entrypoint` does.
    `state` is bound on /var/lib/xyd (writable; it must belong to uid 10001);
    `binds` map host files or directories onto paths inside, read-only, and
    `writable` the same, writable. Paths inside must be under /tmp or /run,
    or exist in the image. `netns` runs it in that `ip netns` namespace.
    """
    config = ImageConfig.load(out)
    root = (out / "rootfs").resolve()
    uid, _, gid = config.user.partition(":")
    if entrypoint is None:
        program = [*config.entrypoint, *(config.cmd if args is None else args)]
    else:
        program = [*entrypoint, *(args or ())]
    run = [
        "chroot",
        str(root),
        "/usr/bin/setpriv",
        f"--reuid={uid}",
        f"--regid={gid or uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        "/bin/sh",
        "-c",
        'cd "$1" && shift && exec "$@"',
        "sh",
        config.working_dir,
        *program,
    ]
    script = _mount_script(root, state.resolve(), binds or {}, writable or {})
    script.append('exec "$@"')
    argv = ["unshare", "--mount", "--", "/bin/sh", "-c", "\n".join(script), "sh", *run]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def environment(out: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The image's environment with `settings` over it: the env to run `command` with."""
    return {**ImageConfig.load(out).env, **settings}


def healthcheck(out: Path) -> list[str]:
    """The image's HEALTHCHECK as an argv (its "CMD" form) to run inside the root."""
    test = ImageConfig.load(out).healthcheck
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        raise ValueError(f"the image has no runnable health check: {test}")
    return test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", test[1]]
