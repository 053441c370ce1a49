"""`xyd audit`: the tamper-evident audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.audit.checkpoints import Checkpoint
    from gateway.keys.jose import PublicKey

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail")


@app.command("verify")
def audit_verify(
    witness: Annotated[
        str | None,
        typer.Option(
            help="The witness file to check the store against. Default: XYD_AUDIT_WITNESS "
            "(STATE_DIR/audit-witness.jsonl)"
        ),
    ] = None,
) -> None:
    """Walk the hash chain and its checkpoints, with the pinned keys, against the
    witness; exit 1 on the first break."""
    from gateway.audit import pinned
    from gateway.audit.chain import verify
    from gateway.db import make_sync_engine

    settings = Settings()
    keys = pinned.trusted(settings)
    if not keys:
        where = pinned.path_of(settings)
        typer.echo(f"no pinned audit keys at {where}: no checkpoint can be trusted "
                   "(`xyd audit pin-keys` pins the store's own)", err=True)  # fmt: skip
    witnessed = _witnessed(witness, settings, keys)
    engine = make_sync_engine(settings)
    with engine.connect() as conn:
        count, breaks = verify(
            conn, keys, every=settings.audit_checkpoint_every, witnessed=witnessed
        )
    engine.dispose()
    if not breaks:
        last = max((c.seq for c in witnessed), default=0)
        typer.echo(f"audit chain intact: {count} entries; the witness's {len(witnessed)} "
                   f"checkpoints match, the last at seq {last}")  # fmt: skip
        return
    first = breaks[0]
    typer.echo(f"audit chain broken at seq {first.seq}: {first.kind}: {first.detail}", err=True)
    for extra in breaks[1:]:
        typer.echo(f"  also seq {extra.seq}: {extra.kind}: {extra.detail}", err=True)
    raise typer.Exit(1)


def _witnessed(
    given: str | None, settings: Settings, keys: dict[str, PublicKey]
) -> list[Checkpoint]:
    """The witness's checkpoints; none (said on stderr) when the configured
    witness is a URL or holds nothing yet. A witness given that is not there,
    or that does not read as written, ends the command."""
    from gateway.audit.witness import WitnessError, read

    target = given or settings.audit_witness_target
    if target.startswith(("https://", "http://")):
        if given:
            raise fail("--witness is a file: ask the witness's keeper for its copy")
        typer.echo(f"the witness is {target}: the store checked alone", err=True)
        return []
    path = Path(target)
    if not path.exists():
        if given:
            raise fail(f"no witness at {path}")
        typer.echo(f"nothing exported to {path} yet: the store checked alone", err=True)
        return []
    try:
        return read(path, keys)
    except WitnessError as exc:
        typer.echo(f"witness {path} broken: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("pin-keys")
def audit_pin_keys() -> None:
    """Pin the store's audit keys that this KEK decrypts, for `xyd audit verify`
    (the gateway pins each key it signs with; this is for keys made before)."""
    from gateway.audit import pinned
    from gateway.db import make_sync_engine

    settings = Settings()
    engine = make_sync_engine(settings)
    with engine.connect() as conn:
        added = pinned.pin_store_keys(conn, settings)
    engine.dispose()
    typer.echo(f"pinned {len(added)} audit keys in {pinned.path_of(settings)}")


@app.command("purge-reports")
def audit_purge_reports() -> None:
    """Delete issued reports past XYD_REPORT_RETENTION_DAYS (they already answer 404)."""
    from datetime import UTC, datetime, timedelta

    from gateway.audit.kept import purge
    from gateway.db import make_sync_engine

    settings = Settings()
    engine = make_sync_engine(settings)
    before = datetime.now(UTC) - timedelta(days=settings.report_retention_days)
    with engine.begin() as conn:
        reports, cuts = purge(conn, before)
    engine.dispose()
    typer.echo(f"purged {reports} reports issued before {before.isoformat()} and {cuts} cuts")
