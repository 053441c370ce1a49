"""Export an image as a directory a host can run without a container runtime.

`OUT/rootfs/` is the image's root filesystem (copied out of `buildah mount`
with owners and modes kept); `OUT/image.json` is the part of the image's
config a runtime acts on (user, environment, entrypoint, command, working
directory, health check), which deploy/image/rootfs.py runs it by. An export
of the same image id is kept and reused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.image.buildah import buildah, inspect_image
from deploy.image.lock import locked

DEFAULT_OUT = Path(".xyd/image")


@dataclass(frozen=True)
class ImageConfig:
    image_id: str
    user: str
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    working_dir: str
    healthcheck: list[str]

    @classmethod
    def load(cls, out: Path) -> ImageConfig:
        raw = json.loads((out / "image.json").read_text())
        return cls(**raw)


def image_config(image: str) -> ImageConfig:
    """The runtime-relevant config of `image` (its Docker-format config, which
    keeps the HEALTHCHECK the OCI format has no field for)."""
    found = inspect_image(image)
    docker = found["Docker"]
    assert isinstance(docker, dict)
    config = docker["config"]
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    health = config.get("Healthcheck") or {}
    return ImageConfig(
        image_id=str(found["FromImageID"]),
        user=config.get("User") or "",
        env=env,
        entrypoint=list(config.get("Entrypoint") or []),
        cmd=list(config.get("Cmd") or []),
        working_dir=config.get("WorkingDir") or "/",
        healthcheck=list(health.get("Test") or []),
    )


def export(image: str, out: Path = DEFAULT_OUT) -> Path:
    """Write `out/rootfs` and `out/image.json` for `image`; returns `out`."""
    with locked(out / "export.lock"):
        return _export(image, out)


def _export(image: str, out: Path) -> Path:
    config = image_config(image)
    marker = out / "image.json"
    if marker.is_file() and ImageConfig.load(out).image_id == config.image_id:
        return out
    rootfs = out / "rootfs"
    if rootfs.exists():
        # Exported files are owned by the image's users and some are read-only.
        shutil.rmtree(rootfs)
    marker.unlink(missing_ok=True)
    rootfs.mkdir(parents=True)
    container = buildah("from", "--pull-never", "--quiet", image)
    try:
        mounted = buildah("mount", container)
        tar = subprocess.Popen(
            ["tar", "-C", mounted, "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
        )
        subprocess.run(
            ["tar", "-C", str(rootfs), "--numeric-owner", "--same-permissions", "-xf", "-"],
            stdin=tar.stdout,
            check=True,
        )
        if tar.wait() != 0:
            raise RuntimeError(f"tar of {mounted} failed")
    finally:
        buildah("umount", container)
        buildah("rm", container)
    marker.write_text(json.dumps(asdict(config), indent=2))
    return out
