"""Realistic traffic against a running gateway, for Locust.

    locust -f loadtests/locustfile.py --headless -t 30s -u 20 -r 5 \\
        --host http://127.0.0.1:8000 --csv loadtests/out/run

Credentials and sample enterprises come from the demo state the gateway's
`xyd demo seed` wrote (`$XYD_STATE_DIR/demo`, `.xyd/demo` by default). Users,
by weight: banks (3 + 2 Bearer, 1 DPoP), platforms 3, risk officers 1,
departments 1. Answers the scenario expects (403 without consent, 429 when
limited, 400 for a malformed webhook) count as successes, named by status.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust puts the working directory on sys.path; run from elsewhere, the repo
# root (for `loadtests.*`) would be missing.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from loadtests.scenarios.banks import DemoBank, DemoBank2, FapiBank  # noqa: E402
from loadtests.scenarios.departments import Department  # noqa: E402
from loadtests.scenarios.officers import RiskOfficer  # noqa: E402
from loadtests.scenarios.platforms import Platform  # noqa: E402

__all__ = ["DemoBank", "DemoBank2", "Department", "FapiBank", "Platform", "RiskOfficer"]
