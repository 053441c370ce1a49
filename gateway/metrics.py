"""Prometheus metrics, correct with several uvicorn worker processes.

Under `xyd serve` every worker process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR (set by the CLI before prometheus_client is first
imported) and `/metrics` aggregates them; without the variable (tests, an
embedding application) the default in-memory registry is used.
"""

from __future__ import annotations

import asyncio
import os
import resource
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """A metric's labelled children, each made once: `labels()` validates its
    values and takes a lock on every call, which the busiest paths pay per
    request. Only for labels from a small fixed set (routes, statuses, tiers)."""

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self.made: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        found = self.made.get(values)
        if found is None:
            found = self.made[values] = self.metric.labels(*values)
        return found


HTTP_REQUESTS = Counter(
    "xyd_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "xyd_http_request_duration_seconds",
    "Time from request start to response end",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
INGEST_LINES = Counter(
    "xyd_ingest_lines_total",
    "Credit record lines ingested, by category and outcome",
    ["category", "outcome"],
)
RATE_REFUSALS = Counter(
    "xyd_rate_limit_refusals_total", "Requests refused with 429, by limit", ["limit"]
)
RATE_LIMITER_DOWN = Counter(
    "xyd_rate_limiter_unavailable_total",
    "Requests decided without Redis, by the configured mode",
    ["mode"],
)
REPORT_CACHE = Counter(
    "xyd_report_cache_total", "Report lookups by where they were found", ["tier"]
)
CONSENT_COPIES = Counter(
    "xyd_consent_copies_total",
    "Report requests decided from a process's copy of the consent: used, or found changed",
    ["outcome"],
)
REPORT_BUILD = Histogram(
    "xyd_report_build_seconds",
    "Time to build a report from the store (cache misses)",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28),
)
REPORT_PDF = Histogram(
    "xyd_report_pdf_seconds",
    "Time to render a printable report as PDF (in the printer's threads)",
    buckets=(0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
)
PLATFORM_MESSAGES = Counter(
    "xyd_platform_messages_total",
    "Platform messages: received, accepted, duplicate, rejected, dead_lettered",
    ["platform", "outcome"],
)
PLATFORM_LAST_SYNC = Gauge(
    "xyd_platform_last_sync_timestamp_seconds",
    "When a pull platform last synced successfully (lag = now - this)",
    ["platform"],
    multiprocess_mode="max",
)
PLATFORM_SYNC_LAG = Gauge(
    "xyd_platform_sync_lag_seconds",
    "Seconds a pull platform has gone without a successful sync, as of the last round",
    ["platform"],
    multiprocess_mode="max",
)
PLATFORM_DAYS_SKIPPED = Counter(
    "xyd_platform_days_skipped_total",
    "Days a pull platform's scheduled catch-up left behind: older than its backfill limit",
    ["platform"],
)
PLATFORM_SYNCS = Counter(
    "xyd_platform_syncs_total",
    "Scheduled pull syncs: ok, failed, skipped (circuit open)",
    ["platform", "outcome"],
)
OUTBOX_BACKLOG = Gauge(
    "xyd_outbox_backlog",
    "Notifications waiting for delivery, as last counted",
    multiprocess_mode="max",
)
LEASE_HELD = Gauge(
    "xyd_lease_held",
    "1 while this process holds the once-only job's lease (summed over a host's workers)",
    ["name"],
    multiprocess_mode="livesum",
)
OUTBOX_DELIVERIES = Counter(
    "xyd_outbox_deliveries_total", "Notification attempts by outcome", ["destination", "outcome"]
)
MONITOR_EVENTS = Counter(
    "xyd_monitor_events_total",
    "Events the monitor consumed, by kind and outcome",
    ["kind", "outcome"],
)
MONITOR_RULE_EVALUATIONS = Counter(
    "xyd_monitor_rule_evaluations_total",
    "Rule evaluations, by rule and result",
    ["rule", "result"],
)
MONITOR_CONSUMER_LAG = Gauge(
    "xyd_monitor_consumer_lag",
    "Events in the stream not yet delivered to the monitor group, as last read",
    multiprocess_mode="max",
)
OPEN_ALERTS = Gauge(
    "xyd_alerts_open",
    "Unresolved alerts by severity, as last counted",
    ["severity"],
    multiprocess_mode="max",
)
MONITOR_ALERTS = Counter(
    "xyd_monitor_alerts_raised_total", "Alerts raised, by rule and severity", ["rule", "severity"]
)
DASHBOARD_PASSWORD_HASHES = Counter(
    "xyd_dashboard_password_checks_total",
    "Dashboard passwords hashed to check a login (one scrypt each)",
)
DASHBOARD_LOGIN_REFUSALS = Counter(
    "xyd_dashboard_login_throttled_total",
    "Dashboard logins refused with 429 before any hashing, by bucket",
    ["limit"],
)


# prometheus_client's process collector (process_open_fds) does not run in
# multiprocess mode: each worker counts its own, one series per live worker.
OPEN_FDS = Gauge(
    "xyd_process_open_fds",
    "File descriptors this worker process holds open, as last counted",
    multiprocess_mode="liveall",
)
MAX_FDS = Gauge(
    "xyd_process_max_fds",
    "This worker process's descriptor limit (soft RLIMIT_NOFILE)",
    multiprocess_mode="liveall",
)
FDS_EVERY_S = 5.0


def count_descriptors() -> None:
    """Set OPEN_FDS and MAX_FDS for this process (Linux's /proc; elsewhere nothing)."""
    try:
        OPEN_FDS.set(len(os.listdir("/proc/self/fd")))
    except OSError:
        return
    MAX_FDS.set(resource.getrlimit(resource.RLIMIT_NOFILE)[0])


async def count_descriptors_forever() -> None:
    try:
        while True:
            count_descriptors()
            await asyncio.sleep(FDS_EVERY_S)
    finally:
        if os.environ.get(MULTIPROC_ENV):
            # The worker is stopping: its series go with it.
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def render_latest() -> tuple[bytes, str]:
    count_descriptors()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
