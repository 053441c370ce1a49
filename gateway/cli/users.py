"""`xyd users`: the risk dashboard's local accounts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from gateway.cli.common import fail
from gateway.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="The risk dashboard's local accounts")


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
        raise fail(exc.detail) from None
    finally:
        engine.dispose()


@app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="risk_officer, auditor or department_reviewer")],
    password_stdin: PasswordStdin = False,
    department: Annotated[
        str | None,
        typer.Option(help="A department_reviewer's department (name or code, departments.yaml)"),
    ] = None,
) -> None:
    """Create a dashboard account; without --password-stdin, print a generated password once.
    A password: 12+ characters, not all whitespace, not a common one, not containing the name.
    A department_reviewer reviews credit repairs of its department's penalties, nothing else."""
    from gateway.dashboard import accounts
    from gateway.records.binding import load_departments

    named = None
    if department is not None:
        found = load_departments(Settings().config_dir).find(department)
        if found is None:
            raise fail(f"--department: {department} is not in departments.yaml")
        named = found.name
    password = _read_password(password_stdin)
    _users_change(lambda conn: accounts.create_user(conn, name, role, password, department=named))
    typer.echo(f"created {name} ({role})", err=True)
    if not password_stdin:
        typer.echo(password)


@app.command("reset-password")
def users_reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Give an account a new password (printed once unless read from stdin); its sessions end."""
    from gateway.dashboard import accounts

    password = _read_password(password_stdin)
    ended = _users_change(lambda conn: accounts.set_password(conn, name, password))
    typer.echo(f"new password for {name}; {ended} session(s) ended", err=True)
    if not password_stdin:
        typer.echo(password)


@app.command("disable")
def users_disable(name: str) -> None:
    """Refuse an account's logins from now on and end its sessions at once."""
    from gateway.dashboard import accounts

    now = datetime.now(UTC)
    ended = _users_change(lambda conn: accounts.set_disabled(conn, name, True, now))
    typer.echo(f"disabled {name}; {ended} session(s) ended")


@app.command("enable")
def users_enable(name: str) -> None:
    """Let a disabled account log in again."""
    from gateway.dashboard import accounts

    now = datetime.now(UTC)
    _users_change(lambda conn: accounts.set_disabled(conn, name, False, now))
    typer.echo(f"enabled {name}")


@app.command("logout-all")
def users_logout_all(
    name: Annotated[str | None, typer.Argument(help="One account; omitted, every account")] = None,
) -> None:
    """End dashboard sessions at once: one account's, or everyone's."""
    from gateway.dashboard import accounts

    ended = _users_change(lambda conn: accounts.end_sessions(conn, name))
    typer.echo(f"{ended} session(s) ended")
