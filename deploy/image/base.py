"""The base image: a Debian root filesystem made by mmdebstrap, no registry image.

mmdebstrap is the slow step (a minute or two, most of it downloading), so its
tarball is kept in a cache directory under a name that is the hash of
everything that decides its contents (suite, variant, packages, options); a
changed list makes a new tarball, an unchanged one is reused. The tarball is
then imported into buildah's storage as `xyd-gateway-base:<hash>`, itself
reused while present.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.image.buildah import buildah, image_exists

SUITE = "bookworm"
VARIANT = "minbase"
# Python for the venv; the CA bundle for outbound HTTPS (webhooks, OIDC, the
# witness); Pango for WeasyPrint's PDF reports and the CJK font they name.
PACKAGES = (
    "python3",
    "python3-venv",
    "ca-certificates",
    "libpango-1.0-0",
    "libpangoft2-1.0-0",
    "fonts-noto-cjk",
)
# Documentation, manuals and translations nobody reads in a container.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
# The host's apt sources (a dated snapshot on these machines), so the image
# gets the same package versions the host has.
DEFAULT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_CACHE = Path(".xyd/image-cache")
BASE_NAME = "xyd-gateway-base"


@dataclass(frozen=True)
class BaseSpec:
    suite: str = SUITE
    variant: str = VARIANT
    packages: tuple[str, ...] = PACKAGES
    dpkg_options: tuple[str, ...] = DPKG_OPTIONS
    sources: Path = DEFAULT_SOURCES

    def key(self) -> str:
        """The cache key: a hash of everything that decides the tarball."""
        parts = [self.suite, self.variant, *sorted(self.packages), *self.dpkg_options]
        if self.sources.is_file():
            parts.append(self.sources.read_text())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def command(self, target: Path) -> list[str]:
        return [
            "mmdebstrap",
            "--quiet",
            f"--variant={self.variant}",
            f"--include={','.join(self.packages)}",
            *(f"--dpkgopt={option}" for option in self.dpkg_options),
            self.suite,
            str(target),
            *([str(self.sources)] if self.sources.is_file() else []),
        ]


def base_tarball(spec: BaseSpec, cache: Path, log: list[str]) -> Path:
    """The cached tarball for `spec`, made by mmdebstrap when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"base-{spec.key()}.tar"
    if target.is_file():
        log.append(f"base tarball cached: {target}")
        return target
    partial = target.with_suffix(f".{os.getpid()}.partial.tar")
    started = time.monotonic()
    try:
        # stdin closed: with no mirror argument and a non-terminal stdin,
        # mmdebstrap would read its sources from stdin.
        subprocess.run(spec.command(partial), check=True, stdin=subprocess.DEVNULL)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    log.append(f"base tarball made in {time.monotonic() - started:.0f} s: {target}")
    return target


def base_image(spec: BaseSpec, cache: Path, log: list[str]) -> str:
    """The base image's name in buildah's storage, imported when missing."""
    name = f"localhost/{BASE_NAME}:{spec.key()}"
    if image_exists(name):
        log.append(f"base image present: {name}")
        return name
    tarball = base_tarball(spec, cache, log)
    started = time.monotonic()
    container = buildah("from", "scratch")
    try:
        buildah("add", container, str(tarball), "/")
        buildah("config", "--created-by", f"mmdebstrap {spec.variant} {spec.suite}", container)
        buildah("commit", "--quiet", "--format", "docker", container, name)
    finally:
        buildah("rm", container)
    log.append(f"base image imported in {time.monotonic() - started:.0f} s: {name}")
    return name
