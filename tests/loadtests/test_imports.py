"""The load tests and the kit they share with the tests stand without tests/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", ["loadtests", "testkit"])
def test_nothing_is_imported_from_tests(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name == "tests" or name.startswith("tests.")
        )
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: names for path, names in offending.items() if names} == {}
