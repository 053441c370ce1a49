"""`xyd db`: the credit store's schema."""

from __future__ import annotations

import typer

from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The credit store's schema")


@app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations to the configured database (XYD_DATABASE_URL)."""
    from gateway.db import make_sync_engine
    from gateway.store.migrate import upgrade

    settings = Settings()
    engine = make_sync_engine(settings)
    upgrade(engine, revision)
    engine.dispose()
    typer.echo(f"database at {engine.url.render_as_string(hide_password=True)} is at {revision}")
