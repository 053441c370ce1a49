"""`xyd clients`: the OAuth client registry."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The OAuth client registry")


@app.command("create")
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
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            help="Where its authorisation answers go (repeat): https, or http on loopback"
        ),
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
            raise fail(f"department {department!r} is not in config/departments.yaml")
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
                redirect_uris=redirect_uri,
            )
    except (ProblemError, OSError, ValueError) as exc:
        raise fail(getattr(exc, "detail", str(exc))) from None
    finally:
        engine.dispose()
    typer.echo(f"registered {client.client_id} ({client.client_type}): {' '.join(client.scopes)}")
    if client.department:
        delivers = ", ".join(sorted(client.categories))
        typer.echo(f"  department {client.department} ({client.department_code}): {delivers}")
    for uri in client.redirect_uris:
        typer.echo(f"  redirect URI {uri}")


@app.command("set-department")
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
        raise fail(f"department {department!r} is not in config/departments.yaml")
    chosen = [c.strip() for c in categories.split(",") if c.strip()]
    engine = make_sync_engine(settings)
    try:
        with engine.begin() as conn:
            clients.set_department(conn, client_id, bound, chosen)
    except ProblemError as exc:
        raise fail(exc.detail) from None
    finally:
        engine.dispose()
    typer.echo(f"{client_id}: delivers {', '.join(sorted(set(chosen)))} for {bound.name}")


@app.command("list")
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
        raise fail(getattr(exc, "detail", str(exc))) from None
    finally:
        engine.dispose()
    typer.echo(f"{client_id}: {change} done")


@app.command("set-secret")
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
        raise fail(exc.detail) from None
    finally:
        engine.dispose()
    if not settings.allow_client_secret_basic:
        typer.echo("note: XYD_ALLOW_CLIENT_SECRET_BASIC is off; the secret is refused", err=True)
    typer.echo(secret)


@app.command("disable")
def clients_disable(client_id: str) -> None:
    """Disable a client: its next request is refused, even with a live token."""
    _client_change(client_id, "disable")


@app.command("enable")
def clients_enable(client_id: str) -> None:
    """Enable a disabled client again."""
    _client_change(client_id, "enable")


@app.command("add-key")
def clients_add_key(client_id: str, jwk: str) -> None:
    """Add a public key (inline JSON or file) to a client."""
    _client_change(client_id, "add-key", jwk)


@app.command("remove-key")
def clients_remove_key(client_id: str, kid: str) -> None:
    """Remove a client's key by kid."""
    _client_change(client_id, "remove-key", kid)


def _webhook_change(client_id: str, url: str | None) -> None:
    from gateway.db import make_sync_engine
    from gateway.webhooks.repository import set_webhook_url

    engine = make_sync_engine(Settings())
    try:
        with engine.begin() as conn:
            kind = set_webhook_url(conn, client_id, url)
            if kind is None:
                raise fail(f"no client {client_id!r}")
            if kind != "bank":
                # Events are about consents, and only a bank is a consent's grantee.
                raise fail(f"{client_id} is a {kind} client; webhooks are for banks")
    finally:
        engine.dispose()


@app.command("set-webhook")
def clients_set_webhook(client_id: str, url: str) -> None:
    """Where a bank's signed events (consent.revoked, consent.expired, enterprise.changed)
    are POSTed; refused where the outbound policy (XYD_OUTBOUND_ALLOWED_HOSTS) refuses."""
    import asyncio

    import httpx

    from gateway.outbound import OutboundPolicy, OutboundRefused
    from gateway.webhooks.delivery import MAX_URL_LENGTH

    if len(url) > MAX_URL_LENGTH:
        raise fail(f"the URL is longer than {MAX_URL_LENGTH} characters")
    policy = OutboundPolicy.of(Settings().outbound_allowed_hosts)
    try:
        policy.check_config("webhook", url)
        parsed = httpx.URL(url)
        if parsed.userinfo:
            raise ValueError("webhook: credentials in the URL are not accepted")
        # The name resolved now too: a host that resolves to a private address is
        # refused here, not first discovered at the first delivery.
        asyncio.run(policy.check(parsed))
    except (ValueError, httpx.InvalidURL, OutboundRefused) as exc:
        raise fail(f"webhook refused: {exc}") from None
    _webhook_change(client_id, url)
    typer.echo(f"{client_id}: webhook set")


@app.command("clear-webhook")
def clients_clear_webhook(client_id: str) -> None:
    """Remove a bank's webhook: nothing more is sent, events still queued are dropped."""
    _webhook_change(client_id, None)
    typer.echo(f"{client_id}: webhook cleared")
