"""The CI dependency audit: a finding fails, an unreachable service only warns."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "audit_deps.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails() -> None:
    report = {
        "dependencies": [
            {"name": "jinja2", "version": "2.10", "vulns": [
                {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"], "aliases": []}]},
            {"name": "orjson", "version": "3.13.0", "vulns": []},
        ]
    }  # fmt: skip
    code, message = load().verdict(report, "")
    assert code == 1
    assert "jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)" in message


def test_clean_or_unreachable_passes_with_a_warning() -> None:
    audit = load()
    clean = {"dependencies": [{"name": "orjson", "version": "3.13.0", "vulns": []}]}
    assert audit.verdict(clean, "") == (0, "pip-audit: no known vulnerabilities in 1 packages")
    skipped = {"dependencies": [{"name": "orjson", "skip_reason": "Dependency not found on PyPI"}]}
    code, message = audit.verdict(skipped, "")
    assert code == 0 and "WARNING 1 not audited" in message
    offline = "requests.exceptions.ConnectionError: ... NameResolutionError(...)"
    assert audit.verdict(None, offline)[0] == 0
    assert audit.verdict(None, "error: invalid requirement 'x=='")[0] == 1
