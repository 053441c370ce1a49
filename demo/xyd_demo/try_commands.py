"""What a new user runs once `make demo` is up: one text, two readers.

README.md's "Then try" block is `COMMANDS` exactly (for the default port;
tests/demo/test_try_commands.py compares them), and `xyd demo seed` prints it
with the demo's real address, so the two cannot drift apart again.
"""

from __future__ import annotations

from gateway.address import connect_host

README_ADDRESS = "127.0.0.1:8000"

COMMANDS = """\
curl -s 127.0.0.1:8000/healthz
curl -s 127.0.0.1:8000/readyz
curl -s 127.0.0.1:8000/metrics | grep xyd_
head .xyd/demo/enterprises.csv                      # demo credit codes by profile
CODE=$(sed -n 2p .xyd/demo/enterprises.csv | cut -d, -f1)
TOKEN=$(.venv/bin/xyd demo token demo-bank)          # private_key_jwt → access token
curl -s -H "Authorization: Bearer $TOKEN" 127.0.0.1:8000/v1/enterprises/$CODE
.venv/bin/xyd call demo-bank-fapi GET /v1/enterprises/$CODE   # DPoP-bound, FAPI 2.0 strict
CID=$(.venv/bin/xyd demo consent demo-bank $CODE)    # the enterprise's consent for demo-bank
.venv/bin/xyd call demo-bank GET /v1/enterprises/$CODE/credit-report --header "Consent-Id: $CID"
.venv/bin/xyd call demo-risk-office GET /v1/enterprises/$CODE/access-log
.venv/bin/xyd audit verify
# API reference (no script, nothing remote): http://127.0.0.1:8000/docs
"""


def render(host: str, port: int) -> str:
    """`COMMANDS` for a gateway listening on `host`:`port`."""
    return COMMANDS.replace(README_ADDRESS, f"{connect_host(host)}:{port}")
