"""buildah, called as a subprocess: the one place its command line is spelt.

Every build step runs with `--isolation chroot`: the machines this is built
on have no working OCI runtime (crun refuses their cgroups), and chroot
isolation needs none.
"""

from __future__ import annotations

import json
import subprocess

ISOLATION = "chroot"


class BuildahError(RuntimeError):
    """A buildah command failed; the message carries its command and stderr."""


def buildah(*args: str) -> str:
    """Run `buildah ARGS`, returning its stdout stripped; BuildahError on failure."""
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildahError(f"buildah {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def image_exists(name: str) -> bool:
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", name], capture_output=True, check=False
    )
    return done.returncode == 0


def inspect_image(name: str) -> dict[str, object]:
    """`buildah inspect` of an image: its ids, OCI and Docker configs."""
    found: dict[str, object] = json.loads(buildah("inspect", "--type", "image", name))
    return found
