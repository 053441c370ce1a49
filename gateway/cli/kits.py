"""Commands other distributions add to `xyd`: the demo kit (demo/pyproject.toml)
registers `xyd demo` and `xyd call` under the `xyd.cli` entry point group.

A production install has no kit; its `xyd demo` and `xyd call` then say so
instead of click's "No such command".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import typer

from gateway.cli.common import fail

GROUP = "xyd.cli"
DEMO_COMMANDS = ("demo", "call")
NOT_INSTALLED = (
    "the demo kit is not installed (a production install carries none): "
    "`make demo` installs it, or pip install -e ./demo from the repository"
)

Register = Callable[[typer.Typer], None]


def add_kits(app: typer.Typer, found: Iterable[EntryPoint] | None = None) -> None:
    """Let each installed kit add its commands; a kit that fails to load stops `xyd`
    with its import error rather than dropping its commands silently."""
    names = set()
    for kit in entry_points(group=GROUP) if found is None else found:
        register: Register = kit.load()
        register(app)
        names.add(kit.name)
    if "demo" not in names:
        for command in DEMO_COMMANDS:
            app.command(
                command,
                hidden=True,
                add_help_option=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_demo_kit_missing)


def _demo_kit_missing() -> None:
    raise fail(NOT_INSTALLED)
