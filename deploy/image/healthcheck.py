"""The image's HEALTHCHECK: exit 0 when the gateway in this container answers /healthz.

It runs inside the image with its Python alone (no curl there), where the
gateway listens: XYD_HOST and XYD_PORT, the wildcard addresses asked on
loopback.
"""

from __future__ import annotations

import os
import sys
import urllib.request

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (listening on all, asked on loopback)


def url() -> str:
    host = os.environ.get("XYD_HOST", "")
    host = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('XYD_PORT', '8000')}/healthz"


def main() -> int:
    try:
        with urllib.request.urlopen(url(), timeout=2) as answer:  # noqa: S310 (http only)
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"{url()}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
