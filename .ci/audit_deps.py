"""`make lint`'s dependency audit: pip-audit over the pinned set in constraints.txt.

A known vulnerability fails. So does an audit that audited nothing: a
vulnerability service that cannot be reached (no network, or a mirror without
PyPI's per-version JSON API, which pip-audit reports as "not found on PyPI"
for every package) once passed here while auditing 0 of 112 packages. Some
packages unknown to the service only warn, naming how many.

Air-gapped runs opt out explicitly: with XYD_AUDIT_DEPS_OFFLINE=1 an audit
that could not reach its service passes with a WARNING saying nothing was
audited (a finding still fails). This project's machines reach PyPI's index
but not its per-version vulnerability JSON nor OSV, so the Makefile sets it
(see `lint`); remove it there where a vulnerability service is reachable.

Usage: python .ci/audit_deps.py [constraints.txt]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_NETWORK = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Read timed out",
    "ConnectTimeout",
    "SSLError",
    "Temporary failure in name resolution",
)


OFFLINE_SETTING = "XYD_AUDIT_DEPS_OFFLINE"


def verdict(
    report: dict[str, Any] | None, stderr: str, *, offline_ok: bool = False
) -> tuple[int, str]:
    """(exit code, message) for pip-audit's JSON report, or None when it printed none.
    `offline_ok`: an audit that reached no vulnerability service passes, warning."""
    if report is None:
        if any(marker in stderr for marker in _NETWORK):
            return _unaudited("vulnerability service unreachable", offline_ok)
        return 1, f"pip-audit failed:\n{stderr}"
    deps = report.get("dependencies", [])
    found = [d for d in deps if d.get("vulns")]
    if found:
        lines = [
            f"  {d['name']} {d.get('version', '?')}: {v['id']} (fixed in "
            f"{', '.join(v.get('fix_versions') or ['no release yet'])})"
            for d in found
            for v in d["vulns"]
        ]
        return 1, "pip-audit: known vulnerabilities\n" + "\n".join(lines)
    skipped = [d for d in deps if "skip_reason" in d]
    audited = len(deps) - len(skipped)
    if not audited:
        why = skipped[0]["skip_reason"] if skipped else "no packages listed"
        return _unaudited(f"audited 0 of {len(deps)} packages, e.g. {why}", offline_ok)
    if skipped:
        return 0, (
            f"pip-audit: no known vulnerabilities in {audited} packages; WARNING "
            f"{len(skipped)} not audited (package unknown to the vulnerability "
            f"service), e.g. {skipped[0]['skip_reason']}"
        )
    return 0, f"pip-audit: no known vulnerabilities in {audited} packages"


def _unaudited(why: str, offline_ok: bool) -> tuple[int, str]:
    if offline_ok:
        return 0, (
            f"pip-audit: WARNING NOTHING AUDITED ({why}); passing only because "
            f"{OFFLINE_SETTING}=1 says this run is air-gapped"
        )
    return 1, (
        f"pip-audit: FAILED, nothing audited ({why}). Reach a vulnerability service, "
        f"or set {OFFLINE_SETTING}=1 for an air-gapped run"
    )


def main() -> int:
    constraints = sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"
    offline_ok = os.environ.get(OFFLINE_SETTING) == "1"
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [str(pip_audit), "-r", constraints, "--no-deps", "--disable-pip"]
    command += ["--progress-spinner", "off", "--format", "json", "--timeout", "10"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        code, message = _unaudited("vulnerability service too slow", offline_ok)
        print(message)
        return code
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    code, message = verdict(report, done.stderr, offline_ok=offline_ok)
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
