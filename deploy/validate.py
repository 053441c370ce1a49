"""Every object the kustomizations render, and the example Secrets, checked
strictly (no unknown field) against one Kubernetes version's schemas.

    python -m deploy.validate --kubernetes-version 1.37.0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import yaml

from deploy.render import Manifest, render

__all__ = ["KUSTOMIZATIONS", "failures", "main"]

ROOT = Path(__file__).resolve().parent / "kubernetes"
KUSTOMIZATIONS = (ROOT / "base", ROOT / "overlays" / "production")
EXAMPLES = ROOT / "examples"


def rendered() -> Iterator[tuple[str, Manifest]]:
    """(where it comes from, object) for everything the deployment is made of."""
    for directory in KUSTOMIZATIONS:
        for obj in render(directory):
            yield str(directory.relative_to(ROOT)), obj
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                yield str(path.relative_to(ROOT)), document


def failures(version: str) -> list[str]:
    """One line per object that fails its schema; empty when all pass."""
    found = []
    for source, obj in rendered():
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            found.append(f"{source}: {obj.get('kind')} {name}: {path}: {exc.message}")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubernetes-version", default="1.37.0")
    args = parser.parse_args(argv)
    problems = failures(args.kubernetes_version)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        sys.exit(1)
    count = sum(1 for _ in rendered())
    print(f"{count} objects valid against Kubernetes {args.kubernetes_version} (strict)")


if __name__ == "__main__":
    main()
