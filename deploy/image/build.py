"""Build the gateway's image: base image, then the production distribution on it.

The build context is a fresh directory holding only what goes in: the
Containerfile, the wheels of the production distribution and its pinned
dependencies (`pip wheel` of a copy of the packages pyproject.toml ships:
gateway, adapters, policies; the demo kit and the tests are not there to
copy), and config/*.yaml. The wheels are built on the host, where pip's
indexes and cache are, by Debian's python3: the same package, from the same
apt sources, as the image's, so environment markers (`python_full_version <
"3.11.3"` pulls async-timeout in) resolve as they will in the image, which
the project's venv (another Python) would not. The image installs them with
no index at all.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from deploy.image.base import DEFAULT_CACHE, BaseSpec, base_image
from deploy.image.buildah import ISOLATION, buildah

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = Path(__file__).resolve().parent / "Containerfile"
IMAGE_NAME = "xyd-gateway"
DEBIAN_PYTHON = "/usr/bin/python3"
# The distribution's own files; `packages.find` in pyproject.toml picks the
# packages among them, so a directory here it does not include stays out.
_SOURCES = ("pyproject.toml", "README.md", "gateway", "adapters", "policies")


@dataclass(frozen=True)
class Built:
    image: str
    tags: tuple[str, ...]
    seconds: float
    log: list[str] = field(default_factory=list)


def version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        project: dict[str, str] = tomllib.load(f)["project"]
    return project["version"]


def image_ref(tag: str | None = None) -> str:
    return f"localhost/{IMAGE_NAME}:{tag or version()}"


def build(cache: Path = DEFAULT_CACHE, spec: BaseSpec | None = None) -> Built:
    """Build `xyd-gateway:<version>` (also tagged `latest`); BuildahError on failure."""
    started = time.monotonic()
    log: list[str] = []
    base = base_image(spec or BaseSpec(), cache, log)
    tags = (image_ref(), image_ref("latest"))
    with tempfile.TemporaryDirectory(prefix="xyd-image-") as tmp:
        context = Path(tmp)
        _stage(context, log)
        buildah(
            "bud",
            "--quiet",
            f"--isolation={ISOLATION}",
            "--format=docker",
            "--layers=false",
            "--pull=never",
            f"--build-arg=BASE={base}",
            "--file",
            str(context / "Containerfile"),
            *(f"--tag={tag}" for tag in tags),
            str(context),
        )
    seconds = time.monotonic() - started
    log.append(f"image {tags[0]} built in {seconds:.0f} s")
    return Built(image=tags[0], tags=tags, seconds=seconds, log=log)


def _stage(context: Path, log: list[str]) -> None:
    started = time.monotonic()
    shutil.copy(CONTAINERFILE, context / "Containerfile")
    config = context / "config"
    config.mkdir()
    for path in sorted((REPO / "config").glob("*.yaml")):
        shutil.copy(path, config / path.name)
    source = context / "source"
    source.mkdir()
    for name in _SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(origin, source / name)
    subprocess.run(
        [
            DEBIAN_PYTHON,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--constraint",
            str(REPO / "constraints.txt"),
            "--wheel-dir",
            str(context / "wheels"),
            str(source),
        ],
        check=True,
    )
    shutil.rmtree(source)
    log.append(f"context staged (wheels, config) in {time.monotonic() - started:.0f} s")
