"""The one way a configuration file is read: YAML, then built and validated by its model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def load_yaml(path: Path, build: Callable[[Any], T]) -> T:
    """`build` applied to the file's YAML; an unreadable, malformed or invalid file
    (pydantic's errors are ValueErrors) raises ValueError naming it."""
    try:
        return build(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
