"""The app's resources as `Annotated` dependencies, one alias per resource.

    @router.get("/v1/loans")
    async def loans(engine: EngineDep, caller: ReportReader) -> ...:
        async with engine.connect() as conn:  # a read; begin() for a write
            ...

A route opens its own connection in its body, so a write commits before the
answer is built (a `yield` dependency's exit code may run after the answer has
gone). The direct report route takes none of these: it reads `state_of(request)`
once (`gateway.direct` solves no dependencies).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.dashboard.login import Login
from gateway.identity.service import Identity
from gateway.reports.pdf import Printer
from gateway.settings import Settings
from gateway.state import GatewayState, state_of
from policies.consent import ConsentRules
from policies.risk.base import Rule

# Each is `async`: FastAPI runs a plain `def` dependency in a worker thread.


async def _state(request: Request) -> GatewayState:
    return state_of(request)


async def _settings(request: Request) -> Settings:
    return state_of(request).settings


async def _engine(request: Request) -> AsyncEngine:
    return state_of(request).engine


async def _redis(request: Request) -> Redis | None:
    return state_of(request).redis


async def _identity(request: Request) -> Identity:
    return state_of(request).identity


async def _login(request: Request) -> Login:
    return state_of(request).login


async def _printer(request: Request) -> Printer:
    return state_of(request).printer


async def _consent_rules(request: Request) -> ConsentRules:
    return state_of(request).consent_rules


async def _risk_rules(request: Request) -> list[Rule]:
    return state_of(request).risk_rules


StateDep = Annotated[GatewayState, Depends(_state)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
RedisDep = Annotated[Redis | None, Depends(_redis)]  # None: embedded mode
IdentityDep = Annotated[Identity, Depends(_identity)]
LoginDep = Annotated[Login, Depends(_login)]
PrinterDep = Annotated[Printer, Depends(_printer)]
ConsentRulesDep = Annotated[ConsentRules, Depends(_consent_rules)]
RiskRulesDep = Annotated[list[Rule], Depends(_risk_rules)]
