"""The `xyd` command line.

Heavy modules are imported inside each command: `xyd serve` must set the
metrics directory before prometheus_client is first imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="xyd-gateway operations")
db_app = typer.Typer(no_args_is_help=True, help="The credit store's schema")
demo_app = typer.Typer(no_args_is_help=True, help="Demo data")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (XYD_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (XYD_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (XYD_WORKERS)")] = None,
) -> None:
    """Serve the gateway until interrupted."""
    settings = Settings()
    _prepare_metrics_dir((settings.state_dir / "metrics").resolve())
    import uvicorn

    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
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
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations to the configured database (XYD_DATABASE_URL)."""
    from gateway.db import make_sync_engine
    from gateway.store.migrate import upgrade

    settings = Settings()
    engine = make_sync_engine(settings)
    upgrade(engine, revision)
    engine.dispose()
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")


@demo_app.command("seed")
def demo_seed(
    enterprises: Annotated[int, typer.Option(min=1, max=5_000_000)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data")] = 42,
    reset: Annotated[bool, typer.Option(help="Delete existing credit data first")] = False,
) -> None:
    """Generate a deterministic Chengdu data set in the configured store."""
    from gateway.db import make_sync_engine
    from gateway.demo.seed import SeedError, seed_demo

    settings = Settings()
    engine = make_sync_engine(settings)
    out_dir = settings.state_dir / "demo"
    try:
        summary = seed_demo(
            engine,
            settings.pii_key_bytes(),
            enterprises=enterprises,
            seed=seed,
            out_dir=out_dir,
            reset=reset,
            progress=sys.stderr.isatty(),
        )
    except SeedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    total = sum(summary.records.values())
    typer.echo(
        f"seeded {summary.enterprises} enterprises and {total} records "
        f"in {summary.seconds:.1f} s; sample codes in {out_dir / 'enterprises.csv'}"
    )
    typer.echo(_next_steps(settings, out_dir / "enterprises.csv"))


def _next_steps(settings: Settings, samples: Path) -> str:
    base = f"http://{settings.host}:{settings.port}"
    return "\n".join(
        (
            "",
            "Next, once the gateway is up:",
            f"  curl -s {base}/healthz",
            f"  curl -s {base}/readyz",
            f"  curl -s {base}/metrics | grep xyd_",
            f"  open {base}/docs for the API reference",
            f"  column -s, -t < {samples} | head   # demo credit codes by profile",
            "  .venv/bin/xyd ingest FEED.csv --category penalty   # add your own records",
            "",
        )
    )


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    category: Annotated[str, typer.Option(help="Catalogue category, e.g. penalty")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson; default from the file suffix")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected lines go; default FILE.rejects.ndjson")
    ] = None,
) -> None:
    """Ingest a file of credit records, line by line; print a summary."""
    from gateway.records.ingest_file import ingest_file

    code = ingest_file(Settings(), file, category, fmt, rejects)
    raise typer.Exit(code)


def main() -> None:
    # Make `python -m gateway.cli` and the console script behave the same.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
