"""Platform simulators: each speaks its platform's spec, for tests and the demo.

A simulator given `borrowers` ((credit code, name) pairs, e.g. the demo seed's
enterprises) lends to them instead of to companies it makes up, so its
stream names enterprises the credit store knows.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.private_files import private_dir, write_private

Borrowers = tuple[tuple[str, str], ...]


def write_credentials(directory: Path, credentials: dict[str, str]) -> None:
    """`directory/simulator.json` (0600): where a pull simulator listens and the
    credentials the gateway's adapter presents to it."""
    private_dir(directory)
    write_private(directory / "simulator.json", json.dumps(credentials, indent=2) + "\n")


def pick(borrowers: Borrowers, number: int) -> tuple[str, str]:
    """The borrower of loan `number`: consecutive loans go to consecutive enterprises,
    so a stream of n loans names min(n, len) of them."""
    return borrowers[number % len(borrowers)]
