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

An image is labelled with a hash of its inputs (the sources, config,
constraints, Containerfile, base image); a build whose inputs hash the same
as the present image's reuses it and stages nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from deploy.image.base import DEFAULT_CACHE, BaseSpec, base_image
from deploy.image.buildah import ISOLATION, buildah, image_exists, inspect_image
from deploy.image.lock import locked

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = Path(__file__).resolve().parent / "Containerfile"
HEALTHCHECK = Path(__file__).resolve().parent / "healthcheck.py"
IMAGE_NAME = "xyd-gateway"
DEBIAN_PYTHON = "/usr/bin/python3"
INPUTS_LABEL = "xyd.inputs"
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
    with locked(cache / "build.lock"):
        return _build(cache, spec)


def _build(cache: Path, spec: BaseSpec | None) -> Built:
    started = time.monotonic()
    log: list[str] = []
    base = base_image(spec or BaseSpec(), cache, log)
    tags = (image_ref(), image_ref("latest"))
    inputs = inputs_hash(base)
    if _label(tags[0]) == inputs:
        log.append(f"image {tags[0]} present, inputs unchanged ({inputs})")
        return Built(image=tags[0], tags=tags, seconds=time.monotonic() - started, log=log)
    replaced = inspect_image(tags[0])["FromImageID"] if image_exists(tags[0]) else None
    with tempfile.TemporaryDirectory(prefix="xyd-image-") as tmp:
        context = Path(tmp)
        _stage(context, log)
        buildah(
            "bud",
            "--quiet",
            f"--isolation={ISOLATION}",
            # Docker's format: OCI's image config has no HEALTHCHECK.
            "--format=docker",
            "--layers=false",
            "--pull=never",
            f"--build-arg=BASE={base}",
            f"--label={INPUTS_LABEL}={inputs}",
            "--file",
            str(context / "Containerfile"),
            *(f"--tag={tag}" for tag in tags),
            str(context),
        )
    if replaced is not None:
        _remove_if_untagged(str(replaced), log)
    seconds = time.monotonic() - started
    log.append(f"image {tags[0]} built in {seconds:.0f} s")
    return Built(image=tags[0], tags=tags, seconds=seconds, log=log)


def inputs_hash(base: str) -> str:
    """A hash of everything the image is built from, bar the wheels' index."""
    digest = hashlib.sha256(base.encode())
    files = [
        CONTAINERFILE,
        HEALTHCHECK,
        REPO / "constraints.txt",
        *sorted((REPO / "config").glob("*.yaml")),
    ]
    for name in _SOURCES:
        origin = REPO / name
        files += (
            sorted(p for p in origin.rglob("*") if _shipped(p)) if origin.is_dir() else [origin]
        )
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _shipped(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"


def _remove_if_untagged(image_id: str, log: list[str]) -> None:
    # Each build replaces the last one's ~200 MB layer; an image nothing names
    # any more is only disk used.
    dangling = buildah("images", "--quiet", "--no-trunc", "--filter", "dangling=true")
    if image_id in dangling:
        buildah("rmi", image_id)
        log.append(f"replaced image {image_id[:12]} removed")


def _label(image: str) -> str | None:
    if not image_exists(image):
        return None
    docker = inspect_image(image)["Docker"]
    assert isinstance(docker, dict)
    labels: dict[str, str] = docker["config"].get("Labels") or {}
    return labels.get(INPUTS_LABEL)


def _stage(context: Path, log: list[str]) -> None:
    started = time.monotonic()
    shutil.copy(CONTAINERFILE, context / "Containerfile")
    shutil.copy(HEALTHCHECK, context / "healthcheck.py")
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
            # Errors only: the index's warnings for each package drown them.
            "-qq",
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
