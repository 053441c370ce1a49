"""`xyd adapters`: the financing platforms."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The financing platforms")


@app.command("sync")
def adapters_sync(
    platform: str,
    date: Annotated[str | None, typer.Option("--date", help="One day, YYYY-MM-DD")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339) on")] = None,
) -> None:
    """Run one pull platform's sync now; print its report; exit 1 if it failed."""
    import asyncio
    import json
    from datetime import date as Date
    from datetime import datetime

    from gateway.app import create_app
    from gateway.state import state_of

    if date and since:
        raise fail("give --date or --since, not both")
    try:
        day = Date.fromisoformat(date) if date else None
        start = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    if start is not None and start.tzinfo is None:
        raise fail("--since needs an offset, e.g. 2026-11-01T00:00:00+08:00")
    settings = Settings(run_background=False)
    gateway = create_app(settings)
    adapter = state_of(gateway).platforms.get(platform)
    if adapter is None:
        raise fail(f"{platform} is not enabled (config/platforms.yaml)")

    async def run() -> Any:
        async with gateway.router.lifespan_context(gateway):
            return await adapter.sync(day=day, since=start)

    try:
        report = asyncio.run(run())
    except Exception as exc:  # show the operator why, not a traceback
        raise fail(f"{platform} sync failed: {exc}") from None
    if report is None:
        raise fail(f"{platform} is a push platform: it has nothing to pull")
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
