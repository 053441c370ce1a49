"""`xyd check-config`: the production profile's verdict on these settings."""

from __future__ import annotations

import typer

from gateway.settings import Settings


def refuse_unsafe(settings: Settings) -> None:
    """In the production profile, every violation on its own line and exit 2."""
    if settings.profile != "production":
        return
    # Here, not at the top: `xyd serve` imports this before its metrics directory is set.
    from gateway.profile.check import check

    found = check(settings)
    for warning in found.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if found.violations:
        for violation in found.violations:
            typer.echo(f"error: {violation}", err=True)
        raise typer.Exit(2)


def check_config() -> None:
    """Check the settings (XYD_*) as `xyd serve` does: every violation, or "ok"."""
    settings = Settings()
    refuse_unsafe(settings)
    typer.echo(f"ok ({settings.profile} profile)")
