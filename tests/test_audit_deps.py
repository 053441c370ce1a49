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


def test_clean_passes_and_some_unknown_packages_only_warn() -> None:
    audit = load()
    clean = {"dependencies": [{"name": "orjson", "version": "3.13.0", "vulns": []}]}
    assert audit.verdict(clean, "") == (0, "pip-audit: no known vulnerabilities in 1 packages")
    partly = {
        "dependencies": [
            {"name": "orjson", "version": "3.13.0", "vulns": []},
            {"name": "private-pkg", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    code, message = audit.verdict(partly, "")
    assert code == 0 and "in 1 packages; WARNING 1 not audited" in message


SKIPPED_ALL = {
    "dependencies": [
        {"name": name, "skip_reason": f"Dependency not found on PyPI: {name}"}
        for name in ("orjson", "jinja2", "redis")
    ]
}
OFFLINE = "requests.exceptions.ConnectionError: ... NameResolutionError(...)"


def test_an_audit_that_audited_nothing_fails() -> None:
    """It passed while auditing 0 of 112 packages (a mirror without the vulnerability JSON)."""
    audit = load()
    code, message = audit.verdict(SKIPPED_ALL, "")
    assert code == 1 and "audited 0 of 3 packages" in message
    assert "XYD_AUDIT_DEPS_OFFLINE=1" in message  # it says how an air-gapped run opts out
    assert audit.verdict({"dependencies": []}, "")[0] == 1
    assert audit.verdict(None, OFFLINE)[0] == 1
    assert audit.verdict(None, "error: invalid requirement 'x=='")[0] == 1


def test_an_air_gapped_run_opts_out_explicitly_and_is_warned() -> None:
    audit = load()
    for report, stderr in ((SKIPPED_ALL, ""), (None, OFFLINE)):
        code, message = audit.verdict(report, stderr, offline_ok=True)
        assert code == 0 and "WARNING NOTHING AUDITED" in message
    # The opt-out excuses an unreachable service, never a finding or a broken run.
    assert audit.verdict(None, "error: invalid requirement 'x=='", offline_ok=True)[0] == 1
    vulnerable = {"dependencies": [{"name": "jinja2", "version": "2.10", "vulns": [
        {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]}]}]}  # fmt: skip
    assert audit.verdict(vulnerable, "", offline_ok=True)[0] == 1


def test_the_makefile_names_the_opt_out() -> None:
    """The opt-out is explicit where make lint runs the audit, not a silent default."""
    makefile = (SCRIPT.parent.parent / "Makefile").read_text()
    assert "XYD_AUDIT_DEPS_OFFLINE=$(AUDIT_DEPS_OFFLINE)" in makefile
