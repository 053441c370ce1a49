"""Every production rule at once: `check()` gathers, `enforce()` refuses.

Errors: `ProfileRefused` carries every violation (`violations`), each naming
its setting; warnings (a server that could not be asked) are logged, not refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import make_sync_engine
from gateway.profile.rules import settings_violations
from gateway.profile.servers import NotChecked, demo_accounts, redis_persistence
from gateway.redisconn import RedisUrlError, make_sync_redis
from gateway.settings import Settings

log = logging.getLogger(__name__)


class ProfileRefused(Exception):
    """The production profile's violations, all of them."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = tuple(violations)
        lines = "\n".join(f"  {v}" for v in violations)
        super().__init__(f"the production profile refuses to start:\n{lines}")


@dataclass(frozen=True, slots=True)
class Findings:
    violations: list[str]
    warnings: list[str]


def check(settings: Settings) -> Findings:
    """The settings' rules, then the store's and Redis's (when the settings name them)."""
    found = Findings(settings_violations(settings), [])
    if not settings.is_sqlite:
        _check_store(settings, found)
    if settings.redis_url:
        _check_redis(settings, found)
    return found


def _check_store(settings: Settings, found: Findings) -> None:
    engine = make_sync_engine(settings)
    try:
        with engine.connect() as conn:
            found.violations.extend(demo_accounts(conn))
    except SQLAlchemyError as exc:
        # A database down at start-up is /readyz's to report, not a refusal.
        found.warnings.append(
            f"XYD_DATABASE_URL: demo accounts were not checked: {type(exc).__name__}"
        )
    finally:
        engine.dispose()


def _check_redis(settings: Settings, found: Findings) -> None:
    # Through sentinels, this asks the master they name (a replica's
    # appendonly says nothing of what a failover would keep).
    try:
        client = make_sync_redis(settings, timeout=settings.readiness_timeout_s)
    except RedisUrlError as exc:
        found.violations.append(str(exc))
        return
    assert client is not None
    try:
        if (message := redis_persistence(client)) is not None:
            found.violations.append(message)
    except NotChecked as exc:
        found.warnings.append(str(exc))
    except RedisError as exc:
        found.warnings.append(
            f"XYD_REDIS_URL: Redis's persistence was not checked: {type(exc).__name__} ({exc})"
        )
    finally:
        client.close()


def enforce(settings: Settings) -> None:
    """Nothing in the demo profile; in production, refuse with every violation."""
    if settings.profile != "production":
        return
    found = check(settings)
    for warning in found.warnings:
        log.warning("production profile: %s", warning)
    if found.violations:
        raise ProfileRefused(found.violations)
