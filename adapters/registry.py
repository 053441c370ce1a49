"""The platform registry: which adapter class serves which platform key.

`config/platforms.yaml` says which platforms a deployment runs and where their
credentials are; each class's `config_model` checks its own block, so an
unknown or misspelled key stops start-up naming the platform and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import yaml
from pydantic import ValidationError

from adapters.base import Adapter, PlatformContext
from adapters.chuangfu_tianfu.adapter import ChuangfuTianfu
from adapters.config import PlatformConfig
from adapters.kechuangtong.adapter import KechuangtongAdapter
from adapters.nongdaitong.adapter import NongdaitongAdapter
from adapters.tianfu_rongtong.adapter import TianfuRongtongAdapter
from adapters.yingchuang.adapter import YingchuangAdapter


class AdapterClass(Protocol):
    """An adapter class as the registry uses it: its config model, and a builder."""

    config_model: ClassVar[type[PlatformConfig]]

    @classmethod
    def build(cls, ctx: PlatformContext, config: PlatformConfig) -> Adapter:
        """The adapter for a checked block; ValueError stops start-up."""


ADAPTERS: dict[str, type[AdapterClass]] = {
    "kechuangtong": KechuangtongAdapter,
    "nongdaitong": NongdaitongAdapter,
    "yingchuang": YingchuangAdapter,
    "tianfu-rongtong": TianfuRongtongAdapter,
    "chuangfu-tianfu": ChuangfuTianfu,
}


def load_config(path: Path) -> dict[str, PlatformConfig]:
    """The platforms file, each block checked by its platform's model; an unknown
    platform, an unknown key or a malformed value stops start-up."""
    try:
        raw: object = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of platform key to settings")
    try:
        return {str(key): check_block(str(key), block) for key, block in raw.items()}
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def check_block(key: str, block: object) -> PlatformConfig:
    """One platform's block as its config model; ValueError naming the platform and
    what is wrong (an unknown setting by its name)."""
    adapter = ADAPTERS.get(key)
    if adapter is None:
        raise ValueError(f"unknown platform {key!r} (known: {', '.join(ADAPTERS)})")
    if not isinstance(block, dict):
        raise ValueError(f"{key}: expected a mapping with enabled: true|false")
    try:
        return adapter.config_model.model_validate(block)
    except ValidationError as exc:
        raise ValueError(f"{key}: {_explain(exc)}") from None


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {where!r}")
        else:
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(problems)


def build_all(config: dict[str, PlatformConfig], ctx: PlatformContext) -> dict[str, Adapter]:
    """Every enabled platform's adapter, built from its checked block."""
    return {key: ADAPTERS[key].build(ctx, block) for key, block in config.items() if block.enabled}


def notified_platforms(config: dict[str, PlatformConfig]) -> frozenset[str]:
    """Enabled platforms that take risk-alert notifications here (e.g. 科创通 once its
    callback URL is set). The monitor queues nothing for the others: there would be
    nowhere to deliver it."""
    return frozenset(key for key, block in config.items() if block.enabled and block.notifies())
