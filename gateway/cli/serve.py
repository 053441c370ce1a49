"""`xyd serve`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.check_config import refuse_unsafe
from gateway.cli.common import fail
from gateway.private_files import private_dir
from gateway.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (XYD_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (XYD_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (XYD_WORKERS)")] = None,
) -> None:
    """Serve the gateway until interrupted."""
    settings = Settings()
    refuse_unsafe(settings)
    workers = workers or settings.workers
    if workers > 1 and not settings.redis_url:
        # Embedded mode keeps rate limits, replay guards and the monitor in each
        # process's memory: two workers would each grant a client its whole limit.
        raise fail(f"{workers} workers need XYD_REDIS_URL (shared limits); embedded mode runs one")
    _prepare_metrics_dir((settings.state_dir / "metrics").resolve())

    from gateway.connections import ServeConfig, raise_descriptor_limit
    from gateway.serving import serve as serve_workers

    serve_workers(
        ServeConfig(
            "gateway.app:create_served_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            header_timeout_s=settings.header_timeout_s,
            # Workers inherit the raised limit; the cap stays inside it.
            max_connections=raise_descriptor_limit(settings.max_connections),
        ),
        state_dir=settings.state_dir,
    )


def _prepare_metrics_dir(path: Path) -> None:
    """Give the workers one fresh directory for their samples; /metrics sums them.

    prometheus_client picks its storage when first imported, so this runs
    before anything imports it: in this process (a single worker runs here)
    and in the workers uvicorn spawns (they inherit the variable).
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its directory was set")
    shutil.rmtree(path, ignore_errors=True)
    private_dir(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
