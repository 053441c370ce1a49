"""The `xyd` command line: one module per command group, wired here in the order
`xyd --help` lists them, then the commands installed kits add (kits.py).

Heavy modules are imported inside each command: `xyd serve` must set the
metrics directory before prometheus_client is first imported.
"""

from __future__ import annotations

import os

import typer

from gateway.cli import (
    adapters,
    audit,
    check_config,
    clients,
    db,
    ingest,
    keys,
    monitor,
    pii,
    serve,
    users,
)
from gateway.cli.kits import add_kits
from gateway.private_files import restrict_umask

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="xyd-gateway operations")
app.command()(serve.serve)
app.command()(ingest.ingest)
app.command()(monitor.monitor)
app.command("check-config")(check_config.check_config)
app.add_typer(db.app, name="db")
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(adapters.app, name="adapters")
app.add_typer(users.app, name="users")
app.add_typer(pii.app, name="pii")
# The demo kit's `xyd demo` and `xyd call`, when installed (kits.py).
add_kits(app)


def main() -> None:
    # Make `python -m gateway.cli` and the console script behave the same.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # Whatever any command or library creates (the SQLite store's WAL, the
    # workers' metric samples, keys, rejects) is the gateway user's alone.
    restrict_umask()
    app()
