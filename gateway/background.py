"""Work the gateway does off the request path: the pull platforms' schedules, the
outbox (platforms' notifications and banks' webhooks), the webhook sweeps, the
code flow's purge and the audit checkpoints' export. Each must run once across
hosts and workers, so each runs only in the process holding its lease
(`pull:<platform>`, `outbox`, `sweeps`, `audit-export`; gateway/leases.py); every
other process tries to take it over every third of XYD_LEASE_TTL_S. Every loop
survives its own errors (logged) and stops when the app stops, releasing its
leases so another host takes over at once."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.base import Adapter, Notifier
from adapters.config import PlatformConfig, Schedule
from adapters.pull import PullAdapter
from adapters.registry import notified_platforms
from gateway.audit.sealer import Sealer
from gateway.breaker import CircuitBreaker
from gateway.grants.purge import Purged, purge_spent
from gateway.leases import Fence, Lease, default_holder
from gateway.metrics import PLATFORM_LAST_SYNC, PLATFORM_SYNC_LAG, PLATFORM_SYNCS
from gateway.monitor.bus import MemoryBus
from gateway.monitor.service import run as run_monitor
from gateway.outbound import OutboundPolicy
from gateway.outbox import Notify, deliver_due
from gateway.state import GatewayState
from gateway.webhooks.delivery import WebhookSender
from gateway.webhooks.events import DESTINATION as WEBHOOK
from gateway.webhooks.sweeps import sweep_changed, sweep_expired

log = logging.getLogger("xyd.background")
FIRST_SYNC_DELAY_S = 5.0


@dataclass
class Background:
    """The loops started and the leases they run under. On a clean stop, once
    the loops have stopped and before the engine closes, the leases are
    released, so another host takes the work over at once rather than after a
    ttl. Not on SQLite: one machine, where a successor waits one ttl at most,
    and a release cut short there (aiosqlite) can leave the stop waiting forever."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    leases: list[Lease] = field(default_factory=list)
    release_on_stop: bool = True
    # Set on a clean stop: the embedded monitor watches it as the leases do theirs.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """The loops finish the round they are in and return."""
        self.stopping.set()
        for lease in self.leases:
            lease.stop()

    async def release(self) -> None:
        if not self.release_on_stop:
            return
        for lease in self.leases:
            try:
                await asyncio.wait_for(lease.release(), timeout=2)
            except Exception:  # the database away: the lease then expires after its ttl
                log.warning("lease not released", extra={"lease": lease.name}, exc_info=True)


def start_background(state: GatewayState, sealer: Sealer) -> Background:
    settings = state.settings
    started = Background(release_on_stop=not settings.is_sqlite)
    if not settings.run_background:
        sealer.exports = False  # a process doing no once-only work leaves it to those that do
        return started
    holder = default_holder(settings.lease_holder)
    tasks = started.tasks

    def held(name: str) -> Lease:
        lease = Lease(state.engine, name, holder, settings.lease_ttl_s)
        tasks.append(asyncio.create_task(_hold(lease)))
        started.leases.append(lease)
        return lease

    notifiers: dict[str, Notify] = {
        key: adapter.notify
        for key, adapter in state.platforms.items()
        if isinstance(adapter, Notifier)
    }
    notifiers[WEBHOOK] = webhook_sender(state).notify
    outbox = held("outbox")
    tasks.append(
        asyncio.create_task(_outbox_forever(state, notifiers, settings.outbox_poll_s, outbox))
    )
    sweeps = held("sweeps")  # both cheap: one lease for the two
    tasks.append(asyncio.create_task(_sweep_forever(state, settings.webhook_sweep_s, sweeps)))
    tasks.append(asyncio.create_task(_purge_forever(state, settings.oauth_purge_s, sweeps)))
    sealer.lease = held("audit-export")  # the sealer's own loop exports while it is held
    if settings.redis_url is None and settings.run_embedded_monitor:
        # Embedded mode: no Redis stream to share, so the gateway watches itself.
        tasks.append(asyncio.create_task(_embedded_monitor(state, started.stopping)))
    for key, adapter in state.platforms.items():
        schedule = adapter_schedule(state, key)
        if schedule is not None:
            breaker = platform_breaker(key, schedule)
            lease = held(f"pull:{key}")
            if isinstance(adapter, PullAdapter):
                adapter.fence = lease.fence  # each page's transaction checks the lease
            tasks.append(
                asyncio.create_task(_sync_forever(key, adapter, schedule.every_s, breaker, lease))
            )
    return started


async def _hold(lease: Lease) -> None:
    # Returns on the stop (Lease.stop); the lifespan then releases the lease
    # (Background.release), not this task: cancelled while the engine is
    # disposed, a release here hung the stop.
    await lease.keep()


def webhook_sender(state: GatewayState) -> WebhookSender:
    return WebhookSender(
        state.engine,
        state.identity.keys,
        OutboundPolicy.of(state.settings.outbound_allowed_hosts),
        state.settings.issuer,
    )


def adapter_schedule(state: GatewayState, key: str) -> Schedule | None:
    config: PlatformConfig | None = state.platforms_config.get(key)
    return None if config is None else config.schedule()


def platform_breaker(key: str, schedule: Schedule) -> CircuitBreaker:
    """After `breaker_failures` failed syncs in a row (default 3), scheduled syncs
    skip the platform for `breaker_open_s` (default 60 s), then one is tried."""
    return CircuitBreaker(f"platform {key}", failures=schedule.failures, open_s=schedule.open_s)


async def _embedded_monitor(state: GatewayState, stop: asyncio.Event) -> None:
    settings = state.settings
    try:
        await run_monitor(
            state.sync_engine, MemoryBus(claim_idle_ms=settings.monitor_claim_idle_ms),
            state.risk_rules, "embedded", stop,
            notified=notified_platforms(state.platforms_config),
            max_deliveries=settings.monitor_max_deliveries,
        )  # fmt: skip
    finally:
        stop.set()


async def _outbox_forever(
    state: GatewayState, notifiers: dict[str, Notify], every_s: float, lease: Lease
) -> None:
    while not lease.stopping:
        await lease.wait_held()
        if lease.stopping:
            return
        try:
            await deliver_due(state.engine, notifiers, lease.fence)
        except Exception:  # the loop must outlive a bad round (database away, bug)
            log.exception("outbox round failed")
        await lease.pause(every_s)


async def sweep_webhooks(state: GatewayState, fence: Fence | None = None) -> int:
    """One round of both sweeps, each in its own transaction; events enqueued."""
    batch = state.settings.webhook_sweep_batch
    queued = 0
    for sweep in (sweep_expired, sweep_changed):
        async with state.engine.begin() as conn:
            if fence is not None:
                await conn.run_sync(fence)
            queued += await conn.run_sync(sweep, batch)
    return queued


async def _sweep_forever(state: GatewayState, every_s: float, lease: Lease) -> None:
    while not lease.stopping:
        await lease.wait_held()
        if lease.stopping:
            return
        try:
            await sweep_webhooks(state, lease.fence)
        except Exception:  # the lease lost mid-round, or the database away
            log.warning("webhook sweep round failed", exc_info=True)
        await lease.pause(every_s)


async def purge_grants(state: GatewayState, fence: Fence | None = None) -> Purged:
    """One round of the code flow's purge, in one transaction."""
    settings = state.settings
    retention = timedelta(seconds=settings.oauth_spent_retention_s)
    async with state.engine.begin() as conn:
        if fence is not None:
            await conn.run_sync(fence)
        purged: Purged = await conn.run_sync(purge_spent, settings.oauth_purge_batch, retention)
    return purged


async def _purge_forever(state: GatewayState, every_s: float, lease: Lease) -> None:
    while not lease.stopping:
        await lease.wait_held()
        if lease.stopping:
            return
        try:
            purged = await purge_grants(state, lease.fence)
            if any(purged):
                log.info("spent OAuth secrets purged", extra=purged._asdict())
        except Exception:  # the lease lost mid-round, or the database away
            log.warning("OAuth purge round failed", exc_info=True)
        await lease.pause(every_s)


async def _sync_forever(
    key: str, adapter: Adapter, every_s: float, breaker: CircuitBreaker, lease: Lease
) -> None:
    # A short first wait: the platform (or the demo's simulator) may start with us.
    await lease.pause(min(every_s, FIRST_SYNC_DELAY_S))
    # Lag: how long the holder has gone without a successful sync (from taking over).
    last_ok: float | None = None
    while not lease.stopping:
        if not lease.held:
            # Another process syncs (or none can reach the database): its lag is its own.
            last_ok = None
            PLATFORM_SYNC_LAG.labels(key).set(0)
            await lease.wait_held()
            if lease.stopping:
                return
        last_ok = last_ok or time.time()
        if breaker.allow():
            try:
                report = await adapter.sync()
            except Exception:
                breaker.failure()
                PLATFORM_SYNCS.labels(key, "failed").inc()
                log.exception("platform sync failed", extra={"platform": key})
            else:
                breaker.success()
                last_ok = time.time()
                PLATFORM_SYNCS.labels(key, "ok").inc()
                if report is not None:
                    PLATFORM_LAST_SYNC.labels(key).set(last_ok)
                    log.info("platform synced", extra={"platform": key, **report.as_dict()})
        else:
            PLATFORM_SYNCS.labels(key, "skipped").inc()
        PLATFORM_SYNC_LAG.labels(key).set(time.time() - last_ok)
        await lease.pause(every_s)
