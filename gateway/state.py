"""What the app runs on, in one typed object: `GatewayState`.

`create_app` builds it from the settings and config files (nothing connects
then); the lifespan adds what connects (engines, Redis) and what is built on
those. Reading one of the latter before the app has started raises
`NotStarted` naming it, rather than handing out a half-made resource.

This module alone reads and writes `app.state`, under one attribute; every
other module asks `state_of(app or request)`, or takes a dependency from
`gateway.deps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from adapters.base import Adapter, PlatformServices
    from adapters.config import PlatformConfig
    from gateway.access.gate import Gate
    from gateway.audit.service import AuditWriter
    from gateway.dashboard.login import Login
    from gateway.grants.service import CodeFlow
    from gateway.identity.service import Identity
    from gateway.keys.pii import KeyRing
    from gateway.portal.oidc import RelyingParty
    from gateway.reports.pdf import Printer
    from gateway.reports.service import ReportService
    from gateway.settings import Settings
    from policies.consent import ConsentRules
    from policies.departments import Departments
    from policies.risk.base import Rule


class NotStarted(RuntimeError):
    """A resource the lifespan makes, read before the app started."""


@dataclass(eq=False, slots=True)
class GatewayState:
    # Built by create_app, before anything connects.
    settings: Settings
    pii_key: bytes  # personal identifiers are hashed with it
    pii_keys: KeyRing  # the clear values are sealed with it
    consent_rules: ConsentRules
    risk_rules: list[Rule]
    departments: Departments
    platforms_config: dict[str, PlatformConfig]
    # What adapters reach once the lifespan has bound it (engine, signing keys).
    platform_services: PlatformServices
    # Filled by create_app just after: each adapter is given this object.
    platforms: dict[str, Adapter] = field(default_factory=dict)
    reference_page: str | None = None  # /docs, rendered on its first request

    # Made in the lifespan (see _LIFESPAN).
    engine: AsyncEngine = field(init=False, repr=False)
    sync_engine: Engine = field(init=False, repr=False)  # CLI-like bulk work in threads
    redis: Redis | None = field(init=False, repr=False)
    identity: Identity = field(init=False, repr=False)
    code_flow: CodeFlow = field(init=False, repr=False)
    audit: AuditWriter = field(init=False, repr=False)
    gate: Gate = field(init=False, repr=False)
    login: Login = field(init=False, repr=False)
    reports: ReportService = field(init=False, repr=False)
    printer: Printer = field(init=False, repr=False)
    relying_party: RelyingParty = field(init=False, repr=False)  # the enterprise login

    if not TYPE_CHECKING:
        # Only reached when the attribute is unset: no cost once started. Hidden
        # from mypy, which would otherwise accept any attribute name.
        def __getattr__(self, name: str) -> Any:
            if name in _LIFESPAN:
                raise NotStarted(f"{name} is made when the app starts; it has not started")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_LIFESPAN = frozenset(
    (
        "engine",
        "sync_engine",
        "redis",
        "identity",
        "code_flow",
        "audit",
        "gate",
        "login",
        "reports",
        "printer",
        "relying_party",
    )
)


def attach(app: Starlette, state: GatewayState) -> None:
    app.state.xyd = state


def state_of(holder: Starlette | HTTPConnection) -> GatewayState:
    """The app's state, from the app or from one of its requests."""
    app = holder.app if isinstance(holder, HTTPConnection) else holder
    state: GatewayState = app.state.xyd
    return state
