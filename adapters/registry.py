"""The platform registry: which adapter module serves which platform key.

`config/platforms.yaml` says which platforms a deployment runs and where
their credentials are; each adapter module exposes `build(ctx) -> Adapter`
and validates its own block.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from adapters.base import Adapter, PlatformContext

MODULES = {
    "kechuangtong": "adapters.kechuangtong",
    "nongdaitong": "adapters.nongdaitong",
    "yingchuang": "adapters.yingchuang",
    "tianfu-rongtong": "adapters.tianfu_rongtong",
    "chuangfu-tianfu": "adapters.chuangfu_tianfu",
}


def load_config(path: Path) -> dict[str, dict[str, Any]]:
    """The platforms file; an unknown key or a malformed block stops start-up."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of platform key to settings")
    for key, block in raw.items():
        if key not in MODULES:
            raise ValueError(f"{path}: unknown platform {key!r} (known: {', '.join(MODULES)})")
        if not isinstance(block, dict) or not isinstance(block.get("enabled", False), bool):
            raise ValueError(f"{path}: {key}: expected a mapping with enabled: true|false")
    return raw


def build_all(config: dict[str, dict[str, Any]], base: PlatformContext) -> dict[str, Adapter]:
    """Every enabled platform's adapter, built with its own block of settings."""
    adapters: dict[str, Adapter] = {}
    for key, block in config.items():
        if not block.get("enabled", False):
            continue
        module = importlib.import_module(MODULES[key])
        ctx = PlatformContext(
            app_state=base.app_state,
            consent_rules=base.consent_rules,
            pii_key=base.pii_key,
            state_dir=base.state_dir,
            settings=block,
            clock=base.clock,
            outbound=base.outbound,
        )
        adapter: Adapter = module.build(ctx)
        adapters[key] = adapter
    return adapters


def notified_platforms(config: dict[str, dict[str, Any]]) -> frozenset[str]:
    """Enabled platforms that take risk-alert notifications here: those whose module
    says so (`notifies(block)`), e.g. 科创通 once its callback URL is set. The monitor
    queues nothing for the others: there would be nowhere to deliver it."""
    found = set()
    for key, block in config.items():
        if not block.get("enabled", False):
            continue
        notifies = getattr(importlib.import_module(MODULES[key]), "notifies", None)
        if notifies is not None and notifies(block):
            found.add(key)
    return frozenset(found)
