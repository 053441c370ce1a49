"""`xyd pii`: personal fields encrypted at rest."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Personal fields encrypted at rest")


def _pii_counts(per_version: dict[int, int], active: int) -> str:
    if not per_version:
        return "no sealed rows"
    return ", ".join(
        f"v{v}: {n}{' (active)' if v == active else ''}" for v, n in sorted(per_version.items())
    )


@app.command("status")
def pii_status() -> None:
    """The key versions, the active one, and how many record versions each seals."""
    from gateway.db import make_sync_engine
    from gateway.keys.pii import PersonalDataError, load_key_ring
    from gateway.records.personal import rows_per_key_version

    settings = Settings()
    try:
        keys = load_key_ring(settings)
    except PersonalDataError as exc:
        raise fail(str(exc)) from None
    engine = make_sync_engine(settings)
    try:
        with engine.connect() as conn:
            per_version = rows_per_key_version(conn)
    finally:
        engine.dispose()
    typer.echo(
        f"key versions {', '.join(f'v{v}' for v in sorted(keys.keys))}; active v{keys.active}"
    )
    typer.echo(f"rows per key version: {_pii_counts(per_version, keys.active)}")
    if missing := sorted(set(per_version) - set(keys.keys)):
        raise fail(f"no key for {', '.join(f'v{v}' for v in missing)}: those rows cannot be read")


@app.command("rotate")
def pii_rotate() -> None:
    """Add a key version under the state dir; it seals from now on, older ones still open."""
    from gateway.keys.pii import PersonalDataError, rotate_key_ring

    try:
        version = rotate_key_ring(Settings())
    except PersonalDataError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"v{version} is active for processes started from now on (restart the gateway); "
        "`xyd pii reencrypt` moves stored rows onto it"
    )


@app.command("reencrypt")
def pii_reencrypt(
    batch_size: Annotated[int, typer.Option(min=1, max=50_000, help="Rows per transaction")] = 500,
) -> None:
    """Re-seal rows under older key versions with the active one; safe to stop and run again."""
    from gateway.db import make_sync_engine
    from gateway.keys.pii import PersonalDataError, load_key_ring
    from gateway.records.personal import reencrypt

    settings = Settings()
    engine = make_sync_engine(settings)
    done = 0

    def progress(rows: int) -> None:
        nonlocal done
        done += rows
        typer.echo(f"  {done} rows re-encrypted", err=True)

    try:
        keys = load_key_ring(settings)
        summary = reencrypt(engine, keys, batch_size, before_commit=progress)
    except PersonalDataError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    typer.echo(
        f"re-encrypted {summary.reencrypted} rows in {summary.batches} batches onto "
        f"v{summary.active}; rows per key version: {_pii_counts(summary.remaining, summary.active)}"
    )
