"""The application factory: `create_app(settings)`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.base import PlatformContext, PlatformServices
from adapters.registry import build_all, load_config
from gateway import __version__, heap
from gateway.access.gate import Gate
from gateway.access_log.router import router as audit_router
from gateway.alerts.router import router as alerts_router
from gateway.audit.sealer import Sealer
from gateway.audit.service import AuditWriter
from gateway.background import start_background
from gateway.breaker import CircuitBreaker
from gateway.consents.router import router as consents_router
from gateway.dashboard.login import make_login
from gateway.dashboard.router import router as dashboard_router
from gateway.db import make_async_engine, make_sync_engine
from gateway.direct import Direct
from gateway.enterprises.router import router as enterprises_router
from gateway.errors import install_problem_handlers
from gateway.grants.router import router as grants_router
from gateway.grants.service import CodeFlow
from gateway.health.router import metrics_router
from gateway.health.router import router as health_router
from gateway.identity.router import router as identity_router
from gateway.identity.startup import replica_wait, start_identity
from gateway.keys.pii import load_key_ring
from gateway.loans.router import router as loans_router
from gateway.logs import configure_logging
from gateway.metrics import count_descriptors_forever
from gateway.middleware import GatewayMiddleware
from gateway.monitor.service import load_rules
from gateway.outbound import OutboundPolicy
from gateway.portal.oidc import RelyingParty
from gateway.portal.router import router as portal_router
from gateway.portal.web import LoginRequired, login_redirect
from gateway.private_files import restrict_umask
from gateway.profile.check import enforce as enforce_profile
from gateway.records.binding import load_departments
from gateway.records.router import router as records_router
from gateway.redisconn import make_redis
from gateway.reference import router as reference_router
from gateway.repairs.pages import router as repair_pages_router
from gateway.repairs.router import router as repairs_router
from gateway.reports.build import ReportBuilder
from gateway.reports.cache import ReportCache
from gateway.reports.pdf import Printer
from gateway.reports.router import ROUTE as REPORT_ROUTE
from gateway.reports.router import router as reports_router
from gateway.reports.service import ReportService, rules_fingerprint
from gateway.settings import Settings
from gateway.state import GatewayState, attach
from policies.consent import ConsentRules
from policies.rate import RateConfig


def create_app(settings: Settings | None = None, *, settle_heap: bool = False) -> FastAPI:
    """`settle_heap`: a serving worker's collector settings, once started (`gateway.heap`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # XYD_PROFILE=production: refused here, before anything connects for good.
        await asyncio.to_thread(enforce_profile, settings)
        state.engine = make_async_engine(settings)
        # Bulk ingestion runs in worker threads on the sync engine (COPY, batches).
        state.sync_engine = make_sync_engine(settings)
        state.redis = make_redis(settings)
        state.identity = await start_identity(settings, state.engine, state.redis)
        state.platform_services.bind(state.engine, state.identity.keys)
        sealer = Sealer.configured(settings, state.sync_engine, state.identity.keys)
        state.audit = AuditWriter(
            state.sync_engine,
            state.identity.keys,
            checkpoint_every=settings.audit_checkpoint_every,
            sealer=sealer,
        )
        state.gate = Gate(
            rates,
            state.identity.guard,
            state.redis,
            when_redis_down=settings.rate_limit_redis_down,
            workers=settings.workers,
            breaker=CircuitBreaker(
                "redis", failures=settings.breaker_failures, open_s=settings.breaker_open_s
            ),
            wait=replica_wait(settings),
        )
        await state.gate.start()
        state.code_flow = CodeFlow(
            settings,
            state.engine,
            state.identity,
            state.consent_rules,
            state.audit,
            state.gate,
        )
        state.code_flow.register()
        state.login = make_login(settings, state.engine, state.gate, state.redis, state.pii_key)
        state.reports = ReportService(
            builder,
            ReportCache(state.redis, local_entries=settings.report_cache_entries),
            fingerprint,
            store=state.sync_engine,
            ledger_connected=bool(state.platforms),
            copy_s=settings.consent_copy_s if state.redis is not None else 0.0,
            feeds_refresh_s=settings.report_feeds_refresh_s,
        )
        state.printer = Printer(
            workers=settings.report_pdf_workers, waiting=settings.report_pdf_waiting
        )
        state.relying_party = RelyingParty.configured(settings)
        tasks = [
            asyncio.create_task(state.identity.keys.refresh_forever()),
            asyncio.create_task(sealer.run_forever()),
            asyncio.create_task(count_descriptors_forever()),
        ]
        background = start_background(state, sealer)
        tasks += background.tasks
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            # The leased loops end their round by themselves: cancelled inside a
            # transaction, an aiosqlite call can leave the stop waiting forever.
            background.stop()
            if background.tasks:
                await asyncio.wait(background.tasks, timeout=5)
            for task in tasks:
                task.cancel()
            # Let them unwind (a transaction's rollback) before the engines close
            # under them; an await on a closed aiosqlite connection never returns.
            await asyncio.wait(tasks, timeout=5)
            # The loops stopped: a lease released now is taken over at once.
            await background.release()
            state.identity.guard.close()
            await state.audit.close()
            await sealer.last_round()
            await state.reports.close()
            state.printer.close()
            await state.relying_party.close()
            if state.redis is not None:
                await state.redis.aclose()
            await state.engine.dispose()
            state.sync_engine.dispose()

    app = FastAPI(
        title="xyd-gateway",
        version=__version__,
        summary="Xin Yi Dai credit data-sharing gateway",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: gateway/reference.py
        # renders /docs here instead.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.public_docs is not False else None,
        # Our metrics are Prometheus's (gateway/metrics.py). Left on, FastAPI asks
        # OpenTelemetry for a provider on every request, reading the environment
        # each time: about 2 % of a report request's CPU (profiled).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # The personal-data keys, read once per process: ingestion hashes personal
    # identifiers with the first and seals the clear values with the ring.
    pii_key = settings.pii_key_bytes()
    pii_keys = load_key_ring(settings)
    # A bad rules file stops start-up here, with the field named.
    consent_rules = ConsentRules.load(
        settings.config_dir / "consent.yaml", settings.consent_channels
    )
    rates = RateConfig.load(settings.config_dir / "rates.yaml")
    builder = ReportBuilder.load(settings.config_dir)
    platforms_config = load_config(settings.config_dir / "platforms.yaml")
    risk_rules = load_rules(settings.config_dir)
    departments = load_departments(settings.config_dir)
    fingerprint = rules_fingerprint(settings.config_dir)
    state = GatewayState(
        settings,
        pii_key,
        pii_keys,
        consent_rules,
        risk_rules,
        departments,
        platforms_config,
        PlatformServices(),
    )
    attach(app, state)
    # Adapters' routes must exist before the app starts; their engine and keys are
    # bound when the lifespan has made them.
    state.platforms = build_all(
        state.platforms_config,
        PlatformContext(
            services=state.platform_services,
            consent_rules=state.consent_rules,
            pii_key=state.pii_key,
            state_dir=settings.state_dir,
            outbound=OutboundPolicy.of(settings.outbound_allowed_hosts),
        ),
    )
    install_problem_handlers(app)
    app.add_exception_handler(LoginRequired, login_redirect)
    # Routes are matched in order: the busiest first (each route tried costs).
    # The platforms' few push routes come next to the report's (which the
    # direct path answers anyway): behind all the others, matching a pushed
    # message tried about 140 routes first, 13 % of the gateway's CPU a message.
    app.include_router(reports_router)
    for adapter in state.platforms.values():
        router = adapter.router()
        if router is not None:
            app.include_router(router)
    app.include_router(health_router)
    if settings.public_metrics is not False:
        app.include_router(metrics_router)
    app.include_router(identity_router)
    app.include_router(grants_router)
    app.include_router(enterprises_router)
    app.include_router(records_router)
    app.include_router(repairs_router)
    app.include_router(consents_router)
    app.include_router(audit_router)
    app.include_router(loans_router)
    app.include_router(alerts_router)
    app.include_router(dashboard_router)
    app.include_router(portal_router)
    app.include_router(repair_pages_router)
    if settings.public_docs is not False:
        app.include_router(reference_router)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.max_body_bytes,
        https=settings.issuer.startswith("https://"),
        direct=Direct(app, "GET", REPORT_ROUTE),
        body_timeout_s=settings.body_timeout_s,
        max_concurrency=settings.max_concurrency,
    )
    _check_route_costs(app, rates)
    return app


def _check_route_costs(app: FastAPI, rates: RateConfig) -> None:
    """A cost for a route that does not exist is a typo: refuse to start."""
    known = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    unknown = sorted(set(rates.routes) - known)
    if unknown:
        raise ValueError(f"rates.yaml routes: no such route {', '.join(unknown)}")


def create_served_app() -> FastAPI:
    """The app as `xyd serve` runs it in each worker process."""
    restrict_umask()  # as `xyd serve` does, when uvicorn is run on its own
    return create_app(settle_heap=True)
