"""The `xyd` command line.

Heavy modules are imported inside each command: `xyd serve` must set the
metrics directory before prometheus_client is first imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gateway.private_files import private_dir, restrict_umask
from gateway.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from gateway.audit.checkpoints import Checkpoint
    from gateway.client import GatewayClient
    from gateway.identity.jose import PublicKey

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="xyd-gateway operations")
db_app = typer.Typer(no_args_is_help=True, help="The credit store's schema")
demo_app = typer.Typer(no_args_is_help=True, help="Demo data")
clients_app = typer.Typer(no_args_is_help=True, help="The OAuth client registry")
keys_app = typer.Typer(no_args_is_help=True, help="The gateway's signing keys")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail")
app.add_typer(audit_app, name="audit")
adapters_app = typer.Typer(no_args_is_help=True, help="The financing platforms")
app.add_typer(adapters_app, name="adapters")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (XYD_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (XYD_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (XYD_WORKERS)")] = None,
) -> None:
    """Serve the gateway until interrupted."""
    settings = Settings()
    workers = workers or settings.workers
    if workers > 1 and not settings.redis_url:
        # Embedded mode keeps rate limits, replay guards and the monitor in each
        # process's memory: two workers would each grant a client its whole limit.
        raise _fail(f"{workers} workers need XYD_REDIS_URL (shared limits); embedded mode runs one")
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
    engine = make_sync_engine(settings)
    with engine.begin() as conn:
        from gateway.demo.clients import register_demo_clients
        from gateway.records.binding import load_departments

        departments = load_departments(settings.config_dir)
        jwk_files = register_demo_clients(conn, out_dir / "clients", departments)
        from gateway.demo.users import ensure_demo_officer

        officer_file = ensure_demo_officer(conn, out_dir / "users")
    engine.dispose()
    total = sum(summary.records.values())
    typer.echo(
        f"seeded {summary.enterprises} enterprises and {total} records "
        f"in {summary.seconds:.1f} s; sample codes in {out_dir / 'enterprises.csv'}"
    )
    typer.echo(f"demo clients' private keys: {', '.join(str(p) for p in jwk_files)}")
    typer.echo(f"dashboard: /dashboard as demo-officer, password in {officer_file}")
    from gateway.demo.platforms import write_credentials

    written = write_credentials(settings.state_dir)
    if written:
        typer.echo(f"platform demo credentials: {settings.state_dir / 'demo' / 'platforms'}")
    typer.echo(_next_steps(settings))


def _next_steps(settings: Settings) -> str:
    from gateway.demo.try_commands import render

    commands = render(settings.host, settings.port)
    return f"\nThen try, in another terminal once the gateway is up:\n\n{commands}"


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    category: Annotated[str, typer.Option(help="Catalogue category, e.g. penalty")],
    department: Annotated[
        str,
        typer.Option(
            help="The department delivering the file (name or code in departments.yaml): "
            "every line is stored as its own"
        ),
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson; default from the file suffix")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected lines go; default FILE.rejects.ndjson")
    ] = None,
) -> None:
    """Ingest a department's file of credit records, line by line; print a summary.

    The lines are bound to --department as a department client's are to its
    registration: a line naming another department, or a category the department
    may not deliver, is rejected; every line written is audited for its enterprise.
    """
    from gateway.records.ingest_file import ingest_file

    code = ingest_file(Settings(), file, category, fmt, rejects, department)
    raise typer.Exit(code)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@clients_app.command("create")
def clients_create(
    client_id: str,
    client_type: Annotated[str, typer.Option("--type", help="bank, platform, department, ...")],
    jwks: Annotated[str, typer.Option(help="JWKS (or one JWK): inline JSON or a file path")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    org_code: Annotated[str | None, typer.Option(help="Bank or platform code")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Allowed scope (repeat)")] = None,
    rate_plan: str = "standard",
    fapi2_strict: bool = False,
    department: Annotated[
        str | None,
        typer.Option(help="A department client's department: name or code in departments.yaml"),
    ] = None,
    categories: Annotated[
        str | None,
        typer.Option(help="The record categories a department client delivers, comma-separated"),
    ] = None,
) -> None:
    """Register a client with its public keys (a department with what it delivers)."""
    from gateway.db import make_sync_engine
    from gateway.errors import ProblemError
    from gateway.identity import clients
    from gateway.records.binding import load_departments

    settings = Settings()
    bound = None
    if department is not None:
        bound = load_departments(settings.config_dir).find(department)
        if bound is None:
            raise _fail(f"department {department!r} is not in config/departments.yaml")
    chosen = [c.strip() for c in categories.split(",") if c.strip()] if categories else None
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as conn:
            client = clients.create_client(
                conn,
                client_id=client_id,
                display_name=name or client_id,
                client_type=client_type,
                jwks=clients.load_jwks(jwks),
                org_code=org_code,
                scopes=scope,
                rate_plan=rate_plan,
                fapi2_strict=fapi2_strict,
                department=bound,
                categories=chosen,
            )
    except (ProblemError, OSError, ValueError) as exc:
        raise _fail(getattr(exc, "detail", str(exc))) from None
    finally:
        engine.dispose()
    typer.echo(f"registered {client.client_id} ({client.client_type}): {' '.join(client.scopes)}")
    if client.department:
        delivers = ", ".join(sorted(client.categories))
        typer.echo(f"  department {client.department} ({client.department_code}): {delivers}")


@clients_app.command("set-department")
def clients_set_department(
    client_id: str,
    department: Annotated[str, typer.Option(help="Name or code in config/departments.yaml")],
    categories: Annotated[str, typer.Option(help="Record categories it delivers, comma-separated")],
) -> None:
    """Bind a department client to its department and the categories it delivers."""
    from gateway.db import make_sync_engine
    from gateway.errors import ProblemError
    from gateway.identity import clients
    from gateway.records.binding import load_departments

    settings = Settings()
    bound = load_departments(settings.config_dir).find(department)
    if bound is None:
        raise _fail(f"department {department!r} is not in config/departments.yaml")
    chosen = [c.strip() for c in categories.split(",") if c.strip()]
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as conn:
            clients.set_department(conn, client_id, bound, chosen)
    except ProblemError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()
    typer.echo(f"{client_id}: delivers {', '.join(sorted(set(chosen)))} for {bound.name}")


@clients_app.command("list")
def clients_list() -> None:
    """List registered clients."""
    from gateway.db import make_sync_engine
    from gateway.identity.clients import list_clients

    engine = make_sync_engine(Settings())
    with engine.connect() as conn:
        for c in list_clients(conn):
            state = "DISABLED" if c.disabled else "active"
            kids = ",".join(str(k.get("kid")) for k in c.jwks["keys"])
            typer.echo(f"{c.client_id}\t{c.client_type}\t{c.org_code or '-'}\t{state}\t"
                       f"{' '.join(sorted(c.scopes))}\tkeys={kids}"
                       + (f"\t{c.department}: {','.join(sorted(c.categories))}"
                          if c.department else ""))  # fmt: skip
    engine.dispose()


def _client_change(client_id: str, change: str, argument: str | None = None) -> None:
    from gateway.db import make_sync_engine
    from gateway.errors import ProblemError
    from gateway.identity import clients
    from gateway.identity.sync_mirror import mirror_client_state

    settings = Settings()
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as conn:
            if change in ("disable", "enable"):
                clients.set_disabled(conn, client_id, change == "disable")
            elif change == "add-key":
                assert argument is not None
                for jwk in clients.load_jwks(argument)["keys"]:
                    clients.add_key(conn, client_id, jwk)
            else:
                assert argument is not None
                clients.remove_key(conn, client_id, argument)
        if change in ("disable", "enable"):
            mirror_client_state(settings, client_id, disabled=change == "disable")
    except (ProblemError, OSError, ValueError) as exc:
        raise _fail(getattr(exc, "detail", str(exc))) from None
    finally:
        engine.dispose()
    typer.echo(f"{client_id}: {change} done")


@clients_app.command("set-secret")
def clients_set_secret(client_id: str) -> None:
    """Give a client a secret for client_secret_basic (only where a deployment enables it)."""
    from gateway.db import make_sync_engine
    from gateway.errors import ProblemError
    from gateway.identity.clients import set_secret

    settings = Settings()
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as conn:
            secret = set_secret(conn, client_id)
    except ProblemError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()
    if not settings.allow_client_secret_basic:
        typer.echo("note: XYD_ALLOW_CLIENT_SECRET_BASIC is off; the secret is refused", err=True)
    typer.echo(secret)


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Disable a client: its next request is refused, even with a live token."""
    _client_change(client_id, "disable")


@clients_app.command("enable")
def clients_enable(client_id: str) -> None:
    """Enable a disabled client again."""
    _client_change(client_id, "enable")


@clients_app.command("add-key")
def clients_add_key(client_id: str, jwk: str) -> None:
    """Add a public key (inline JSON or file) to a client."""
    _client_change(client_id, "add-key", jwk)


@clients_app.command("remove-key")
def clients_remove_key(client_id: str, kid: str) -> None:
    """Remove a client's key by kid."""
    _client_change(client_id, "remove-key", kid)


@keys_app.command("rotate")
def keys_rotate(
    purpose: Annotated[
        str, typer.Option(help="access_token, report, audit or platform_ack")
    ] = "access_token",
) -> None:
    """Add a new signing key: published now, signing after the activation delay."""
    from datetime import timedelta

    from gateway.db import make_sync_engine
    from gateway.identity.keys import FIXED_ALG, PURPOSES, rotate

    if purpose not in PURPOSES:
        raise _fail(f"purpose must be one of {', '.join(PURPOSES)}")
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


BaseUrl = Annotated[
    str | None,
    typer.Option(
        help="The gateway's URL. Default: XYD_PORT if set, else the running gateway's "
        "(STATE_DIR/serve.json, written by xyd serve), else http://127.0.0.1:8000"
    ),
]


@demo_app.command("token")
def demo_token(client_id: str, scope: str | None = None, base_url: BaseUrl = None) -> None:
    """Print a fresh access token for a demo client (the gateway must be running)."""
    with _demo_client(client_id, base_url) as client:
        typer.echo(client.token(scope))


@contextlib.contextmanager
def _demo_client(client_id: str, base_url: str | None) -> Iterator[GatewayClient]:
    """A demo client of the gateway found as gateway/address.py says; a failure to reach
    it, or a refused token, ends the command with one line naming the URL tried."""
    from gateway.address import Unreachable, connect, find, reaching
    from gateway.client import RefusedToken

    settings = Settings()
    key_file = settings.state_dir / "demo" / "clients" / f"{client_id}.jwk"
    if not key_file.exists():
        raise _fail(f"no demo key at {key_file}; run `make demo` (or xyd demo seed) first")
    where = find(settings, base_url)
    try:
        with reaching(where):
            yield connect(where, key_file)
    except Unreachable as exc:
        raise _fail(str(exc)) from None
    except RefusedToken as exc:
        raise _fail(f"{where.url}: {exc}") from None


@demo_app.command("consent")
def demo_consent(
    client_id: str,
    credit_code: str,
    purpose: str = "credit_review",
    days: Annotated[int, typer.Option(min=1, max=365)] = 30,
    base_url: BaseUrl = None,
) -> None:
    """Register a consent (every section) for a demo bank; print its id."""
    from datetime import UTC, datetime, timedelta

    from policies.consent import ConsentRules

    body = {
        "credit_code": credit_code,
        "grantee": client_id,
        "purpose": purpose,
        "scopes": sorted(ConsentRules.load(Settings().config_dir / "consent.yaml").sections),
        "valid_until": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        "evidence": {
            "document_sha256": hashlib.sha256(f"demo {credit_code}".encode()).hexdigest(),
            "signer": "法定代表人（演示）",
            "channel": "direct",
        },
    }
    with _demo_client(client_id, base_url) as client:
        answer = client.request("POST", "/v1/consents", json=body)
    if answer.status_code != 201:
        raise _fail(f"{answer.status_code}: {answer.text}")
    typer.echo(answer.json()["id"])


@app.command()
def call(
    client_id: str,
    method: str,
    path: str,
    data: Annotated[str | None, typer.Option(help="Request body (JSON)")] = None,
    header: Annotated[
        list[str] | None, typer.Option(help="Extra header, 'Name: value' (repeatable)")
    ] = None,
    base_url: BaseUrl = None,
) -> None:
    """Call the gateway as a demo client: token handling included."""
    headers = {"Content-Type": "application/json"} if data else {}
    for line in header or []:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _fail(f"--header wants 'Name: value', not {line!r}")
        headers[name.strip()] = value.strip()
    with _demo_client(client_id, base_url) as client:
        answer = client.request(method.upper(), path, content=data, headers=headers)
    typer.echo(f"{answer.status_code} {answer.reason_phrase}", err=True)
    typer.echo(answer.text)
    raise typer.Exit(0 if answer.is_success else 1)


@audit_app.command("verify")
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
            raise _fail("--witness is a file: ask the witness's keeper for its copy")
        typer.echo(f"the witness is {target}: the store checked alone", err=True)
        return []
    path = Path(target)
    if not path.exists():
        if given:
            raise _fail(f"no witness at {path}")
        typer.echo(f"nothing exported to {path} yet: the store checked alone", err=True)
        return []
    try:
        return read(path, keys)
    except WitnessError as exc:
        typer.echo(f"witness {path} broken: {exc}", err=True)
        raise typer.Exit(1) from exc


@audit_app.command("pin-keys")
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


@audit_app.command("purge-reports")
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


def main() -> None:
    # Make `python -m gateway.cli` and the console script behave the same.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # Whatever any command or library creates (the SQLite store's WAL, the
    # workers' metric samples, keys, rejects) is the gateway user's alone.
    restrict_umask()
    app()


@adapters_app.command("sync")
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

    if date and since:
        raise _fail("give --date or --since, not both")
    try:
        day = Date.fromisoformat(date) if date else None
        start = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if start is not None and start.tzinfo is None:
        raise _fail("--since needs an offset, e.g. 2026-11-01T00:00:00+08:00")
    settings = Settings(run_background=False)
    gateway = create_app(settings)
    adapter = gateway.state.platforms.get(platform)
    if adapter is None:
        raise _fail(f"{platform} is not enabled (config/platforms.yaml)")

    async def run() -> Any:
        async with gateway.router.lifespan_context(gateway):
            return await adapter.sync(day=day, since=start)

    try:
        report = asyncio.run(run())
    except Exception as exc:  # show the operator why, not a traceback
        raise _fail(f"{platform} sync failed: {exc}") from None
    if report is None:
        raise _fail(f"{platform} is a push platform: it has nothing to pull")
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))


@demo_app.command("platforms")
def demo_platforms(
    messages: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    serve: Annotated[bool, typer.Option(help="Keep the pull simulators up")] = True,
) -> None:
    """Serve the pull platforms' simulators and send each push platform's demo stream
    to the running gateway; with --serve, keep the simulators up until interrupted."""
    import time

    from gateway.demo.platforms import borrowers, push_traffic, serve_simulators
    from gateway.logs import configure_logging

    configure_logging()  # 科创通's callbacks, as the simulator receives them, are log lines
    settings = Settings()
    lenders = borrowers(settings.state_dir)
    served = serve_simulators(settings.state_dir, lenders) if serve else []
    for one in served:
        typer.echo(f"{one.platform} simulator: {one.url}")
    sent = push_traffic(settings.issuer, settings.state_dir, messages, lenders)
    for platform, statuses in sent.items():
        typer.echo(f"{platform}: {dict(sorted(statuses.items()))}", err=False)
    if served:
        typer.echo(
            "simulators serving (GET the kechuangtong URL lists its callbacks); Ctrl-C to stop"
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            for one in served:
                one.server.should_exit = True


@app.command()
def monitor(
    consumer: Annotated[str | None, typer.Option(help="This worker's name in the group")] = None,
) -> None:
    """Run a sandbox monitor worker: relay committed events, apply the risk rules, raise alerts.

    With XYD_REDIS_URL, any number of workers share the Redis stream; without
    it the gateway runs the monitor in process and this command is not needed.
    """
    import asyncio
    import signal
    import socket

    from adapters.registry import load_config, notified_platforms
    from gateway.app import make_redis
    from gateway.db import make_sync_engine
    from gateway.monitor.bus import RedisStreamBus
    from gateway.monitor.service import load_rules, run

    settings = Settings()
    redis = make_redis(settings)
    if redis is None:
        raise _fail("set XYD_REDIS_URL: without Redis the gateway runs the monitor itself")
    try:
        rules = load_rules(settings.config_dir)
        notified = notified_platforms(load_config(settings.config_dir / "platforms.yaml"))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine = make_sync_engine(settings)
        try:
            bus = RedisStreamBus(redis, claim_idle_ms=settings.monitor_claim_idle_ms)
            try:
                await run(
                    engine, bus, rules, name, stop,
                    notified=notified, max_deliveries=settings.monitor_max_deliveries,
                )  # fmt: skip
            finally:
                await bus.aclose()
        finally:
            engine.dispose()
            await redis.aclose()

    typer.echo(f"monitor {name}: {len(rules)} rules; Ctrl-C to stop")
    asyncio.run(main())


users_app = typer.Typer(no_args_is_help=True, help="The risk dashboard's local accounts")
app.add_typer(users_app, name="users")


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin's first line")
]


def _read_password(from_stdin: bool) -> str:
    from gateway.dashboard.passwords import new_password

    # stdin rather than an argument: a password on the command line lands in shell history.
    return sys.stdin.readline().rstrip("\r\n") if from_stdin else new_password()


def _users_change(change: Callable[[Connection], T]) -> T:
    """Run one change to the dashboard's accounts in its own transaction; a refused
    one (unknown name, a password the policy refuses) exits 2 with why."""
    from gateway.db import make_sync_engine
    from gateway.errors import ProblemError

    engine = make_sync_engine(Settings())
    try:
        with engine.begin() as conn:
            return change(conn)
    except ProblemError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="risk_officer or auditor")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a dashboard account; without --password-stdin, print a generated password once.
    A password: 12+ characters, not all whitespace, not a common one, not containing the name."""
    from gateway.dashboard import accounts

    password = _read_password(password_stdin)
    _users_change(lambda conn: accounts.create_user(conn, name, role, password))
    typer.echo(f"created {name} ({role})", err=True)
    if not password_stdin:
        typer.echo(password)


@users_app.command("reset-password")
def users_reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Give an account a new password (printed once unless read from stdin); its sessions end."""
    from gateway.dashboard import accounts

    password = _read_password(password_stdin)
    ended = _users_change(lambda conn: accounts.set_password(conn, name, password))
    typer.echo(f"new password for {name}; {ended} session(s) ended", err=True)
    if not password_stdin:
        typer.echo(password)


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Refuse an account's logins from now on and end its sessions at once."""
    from gateway.dashboard import accounts

    now = datetime.now(UTC)
    ended = _users_change(lambda conn: accounts.set_disabled(conn, name, True, now))
    typer.echo(f"disabled {name}; {ended} session(s) ended")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Let a disabled account log in again."""
    from gateway.dashboard import accounts

    now = datetime.now(UTC)
    _users_change(lambda conn: accounts.set_disabled(conn, name, False, now))
    typer.echo(f"enabled {name}")


@users_app.command("logout-all")
def users_logout_all(
    name: Annotated[str | None, typer.Argument(help="One account; omitted, every account")] = None,
) -> None:
    """End dashboard sessions at once: one account's, or everyone's."""
    from gateway.dashboard import accounts

    ended = _users_change(lambda conn: accounts.end_sessions(conn, name))
    typer.echo(f"{ended} session(s) ended")


pii_app = typer.Typer(no_args_is_help=True, help="Personal fields encrypted at rest")
app.add_typer(pii_app, name="pii")


def _pii_counts(per_version: dict[int, int], active: int) -> str:
    if not per_version:
        return "no sealed rows"
    return ", ".join(
        f"v{v}: {n}{' (active)' if v == active else ''}" for v, n in sorted(per_version.items())
    )


@pii_app.command("status")
def pii_status() -> None:
    """The key versions, the active one, and how many record versions each seals."""
    from gateway.db import make_sync_engine
    from gateway.pii_keys import PersonalDataError, load_key_ring
    from gateway.records.personal import rows_per_key_version

    settings = Settings()
    try:
        keys = load_key_ring(settings)
    except PersonalDataError as exc:
        raise _fail(str(exc)) from None
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
        raise _fail(f"no key for {', '.join(f'v{v}' for v in missing)}: those rows cannot be read")


@pii_app.command("rotate")
def pii_rotate() -> None:
    """Add a key version under the state dir; it seals from now on, older ones still open."""
    from gateway.pii_keys import PersonalDataError, rotate_key_ring

    try:
        version = rotate_key_ring(Settings())
    except PersonalDataError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"v{version} is active for processes started from now on (restart the gateway); "
        "`xyd pii reencrypt` moves stored rows onto it"
    )


@pii_app.command("reencrypt")
def pii_reencrypt(
    batch_size: Annotated[int, typer.Option(min=1, max=50_000, help="Rows per transaction")] = 500,
) -> None:
    """Re-seal rows under older key versions with the active one; safe to stop and run again."""
    from gateway.db import make_sync_engine
    from gateway.pii_keys import PersonalDataError, load_key_ring
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
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    typer.echo(
        f"re-encrypted {summary.reencrypted} rows in {summary.batches} batches onto "
        f"v{summary.active}; rows per key version: {_pii_counts(summary.remaining, summary.active)}"
    )


if __name__ == "__main__":
    main()
