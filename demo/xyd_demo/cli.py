"""`xyd demo`: demo data and the platforms' simulators; `xyd call` as a demo client.
Added to `xyd` by the `xyd.cli` entry point (gateway/cli/kits.py)."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.client import GatewayClient

app = typer.Typer(no_args_is_help=True, help="Demo data")


def register(xyd: typer.Typer) -> None:
    """The demo kit's commands on the `xyd` app: `xyd call` and the `demo` group."""
    xyd.command()(call)
    xyd.add_typer(app, name="demo")


@app.command("seed")
def demo_seed(
    enterprises: Annotated[int, typer.Option(min=1, max=5_000_000)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data")] = 42,
    reset: Annotated[bool, typer.Option(help="Delete existing credit data first")] = False,
) -> None:
    """Generate a deterministic Chengdu data set in the configured store."""
    from gateway.db import make_sync_engine
    from xyd_demo.seed import SeedError, seed_demo

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
        from gateway.records.binding import load_departments
        from xyd_demo.clients import register_demo_clients

        departments = load_departments(settings.config_dir)
        jwk_files = register_demo_clients(conn, out_dir / "clients", departments)
        from xyd_demo.users import ensure_demo_officer

        officer_file = ensure_demo_officer(conn, out_dir / "users")
        from xyd_demo.repairs import DEMO_REVIEWER, write_repair_sample

        repair_sample = write_repair_sample(conn, settings.config_dir, out_dir)
    engine.dispose()
    total = sum(summary.records.values())
    typer.echo(
        f"seeded {summary.enterprises} enterprises and {total} records "
        f"in {summary.seconds:.1f} s; sample codes in {out_dir / 'enterprises.csv'}"
    )
    typer.echo(f"demo clients' private keys: {', '.join(str(p) for p in jwk_files)}")
    typer.echo(f"dashboard: /dashboard as demo-officer, password in {officer_file}")
    if repair_sample is not None:
        typer.echo(
            f"credit repair: a repairable penalty in {repair_sample}; reviewed at "
            f"/dashboard/repairs as {DEMO_REVIEWER}, password in "
            f"{out_dir / 'users' / (DEMO_REVIEWER + '.password')}"
        )
    from xyd_demo.platforms import write_credentials

    written = write_credentials(settings.state_dir)
    if written:
        typer.echo(f"platform demo credentials: {settings.state_dir / 'demo' / 'platforms'}")
    typer.echo(_next_steps(settings))


def _next_steps(settings: Settings) -> str:
    from xyd_demo.try_commands import render

    commands = render(settings.host, settings.port)
    return f"\nThen try, in another terminal once the gateway is up:\n\n{commands}"


BaseUrl = Annotated[
    str | None,
    typer.Option(
        help="The gateway's URL. Default: XYD_PORT if set, else the running gateway's "
        "(STATE_DIR/serve.json, written by xyd serve), else http://127.0.0.1:8000"
    ),
]


@app.command("token")
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
        raise fail(f"no demo key at {key_file}; run `make demo` (or xyd demo seed) first")
    where = find(settings, base_url)
    try:
        with reaching(where):
            yield connect(where, key_file)
    except Unreachable as exc:
        raise fail(str(exc)) from None
    except RefusedToken as exc:
        raise fail(f"{where.url}: {exc}") from None


@app.command("consent")
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
        raise fail(f"{answer.status_code}: {answer.text}")
    typer.echo(answer.json()["id"])


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
            raise fail(f"--header wants 'Name: value', not {line!r}")
        headers[name.strip()] = value.strip()
    with _demo_client(client_id, base_url) as client:
        answer = client.request(method.upper(), path, content=data, headers=headers)
    typer.echo(f"{answer.status_code} {answer.reason_phrase}", err=True)
    typer.echo(answer.text)
    raise typer.Exit(0 if answer.is_success else 1)


@app.command("platforms")
def demo_platforms(
    messages: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    serve: Annotated[bool, typer.Option(help="Keep the pull simulators up")] = True,
) -> None:
    """Serve the pull platforms' simulators and send each push platform's demo stream
    to the running gateway; with --serve, keep the simulators up until interrupted."""
    import time

    from gateway.logs import configure_logging
    from xyd_demo.platforms import borrowers, push_traffic, serve_simulators

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


@app.command("oidc")
def demo_oidc(
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, envvar="XYD_DEMO_OIDC_PORT", help="0: one picked now"),
    ] = 0,
) -> None:
    """Serve the demo identity provider the gateway logs enterprises' people in
    with (issuer written to STATE_DIR/demo/oidc/issuer), until interrupted."""
    import signal
    import time

    from xyd_demo.oidc.serve import serve

    settings = Settings()
    if not (settings.state_dir / "demo" / "enterprises.csv").exists():
        raise fail("no demo enterprises: run `xyd demo seed` (or make demo) first")
    try:
        serving = serve(settings.state_dir, settings.host, settings.port, port)
    except OSError as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    # Started in the background (make demo's `&`, a test's subprocess) a process
    # may inherit SIGINT ignored; this one stops on it, and on SIGTERM, either way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # An interrupt at any point after the server started, even while these
    # lines are written, stops it the same way.
    try:
        typer.echo(f"demo identity provider: {serving.issuer}")
        typer.echo(f"its users and passwords: {serving.users_file}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serving.server.should_exit = True
