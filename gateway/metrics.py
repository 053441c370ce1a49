"""Prometheus metrics, correct with several uvicorn worker processes.

With several workers each process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR (set by `xyd serve` before any worker starts) and
`/metrics` aggregates them; in a single process the default registry is used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

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


def prepare_multiprocess_dir(path: Path) -> None:
    """Start a multi-worker server with an empty metrics directory.

    Must run before prometheus_client is imported by the workers, so `xyd serve`
    calls it and exports the variable for the processes it spawns.
    """
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def render_latest() -> tuple[bytes, str]:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
