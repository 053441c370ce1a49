"""`xyd ingest`: a department's file of credit records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.settings import Settings


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
