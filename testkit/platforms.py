"""Platform adapters built as the app builds them: a block checked by its model."""

from __future__ import annotations

from typing import TypeVar

from adapters.base import Adapter, PlatformContext
from adapters.registry import ADAPTERS, check_block

_A = TypeVar("_A")


def build_adapter(key: str, block: dict[str, object], ctx: PlatformContext, kind: type[_A]) -> _A:
    """The adapter for `block` (ValueError naming the platform if it is refused)."""
    adapter: Adapter = ADAPTERS[key].build(ctx, check_block(key, block))
    assert isinstance(adapter, kind)
    return adapter
