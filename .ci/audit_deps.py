"""`make lint`'s dependency audit: pip-audit over the pinned set in constraints.txt.

A known vulnerability fails. A vulnerability service that cannot be reached
(no network, a mirror without PyPI's per-version JSON API, which pip-audit
reports as "not found on PyPI") does not: it prints a warning naming how
many packages went unaudited, so CI stays green for a network error but
never for a finding.

Usage: python .ci/audit_deps.py [constraints.txt]
"""

from __future__ import annotations

import json
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


def verdict(report: dict[str, Any] | None, stderr: str) -> tuple[int, str]:
    """(exit code, message) for pip-audit's JSON report, or None when it printed none."""
    if report is None:
        if any(marker in stderr for marker in _NETWORK):
            return 0, "pip-audit: WARNING vulnerability service unreachable; nothing audited"
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
    if skipped:
        return 0, (
            f"pip-audit: no known vulnerabilities in {audited} packages; WARNING "
            f"{len(skipped)} not audited (vulnerability service unreachable or "
            f"package unknown to it), e.g. {skipped[0]['skip_reason']}"
        )
    return 0, f"pip-audit: no known vulnerabilities in {audited} packages"


def main() -> int:
    constraints = sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [str(pip_audit), "-r", constraints, "--no-deps", "--disable-pip"]
    command += ["--progress-spinner", "off", "--format", "json", "--timeout", "10"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        print("pip-audit: WARNING vulnerability service too slow; nothing audited")
        return 0
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    code, message = verdict(report, done.stderr)
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
