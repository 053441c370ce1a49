"""`xyd keys`: the gateway's signing keys."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The gateway's signing keys")


@app.command("rotate")
def keys_rotate(
    purpose: Annotated[
        str, typer.Option(help="access_token, report, audit, platform_ack or webhook")
    ] = "access_token",
) -> None:
    """Add a new signing key: published now, signing after the activation delay."""
    from datetime import timedelta

    from gateway.db import make_sync_engine
    from gateway.keys.store import FIXED_ALG, PURPOSES, rotate

    if purpose not in PURPOSES:
        raise fail(f"purpose must be one of {', '.join(PURPOSES)}")
    settings = Settings()
    engine = make_sync_engine(settings)
    with engine.begin() as conn:
        kid = rotate(
            conn,
            settings.kek_bytes(),
            purpose,
            FIXED_ALG.get(purpose, settings.access_token_alg),
            delay=timedelta(seconds=settings.key_activation_delay_s),
            outlives=timedelta(seconds=900 + settings.clock_leeway_s),
        )
    engine.dispose()
    typer.echo(
        f"new {purpose} key {kid}: published now, signing in {settings.key_activation_delay_s} s; "
        "older keys retire once their last token has expired"
    )
