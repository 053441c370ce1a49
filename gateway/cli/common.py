"""What every command group shares."""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    """One line on stderr and exit code 2: the command was refused, not broken."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)
