"""What every adapter is given: services bound when the app starts, not before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.base import NotStarted, PlatformContext, PlatformServices
from policies.consent import ConsentRules

CONFIG = Path(__file__).resolve().parents[2] / "config"


async def test_services_read_before_the_lifespan_binds_them_say_so() -> None:
    services = PlatformServices()
    ctx = PlatformContext(services, ConsentRules.load(CONFIG / "consent.yaml"), b"k", Path("."))
    with pytest.raises(NotStarted, match="before the app started"):
        _ = ctx.engine
    with pytest.raises(NotStarted, match="signing keys"):
        _ = services.keys
    engine = create_async_engine("sqlite+aiosqlite://")
    services.bind(engine)
    assert ctx.engine is engine
    await engine.dispose()


def test_the_registry_refuses_an_unknown_platform() -> None:
    from adapters.registry import check_block

    with pytest.raises(ValueError, match="unknown platform 'kechuangtng'"):
        check_block("kechuangtng", {"enabled": True})
