"""What the browser tests share: Debian's Chromium, how it is launched, the marks
that skip them where it is missing, and where their screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
]  # fmt: skip
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (make test installs it)",
    ),
]


def shots_dir() -> Path | None:
    """The directory `XYD_SHOTS` names (made if missing), or None: no screenshots."""
    wanted = os.environ.get("XYD_SHOTS")
    if not wanted:
        return None
    where = Path(wanted).resolve()
    where.mkdir(parents=True, exist_ok=True)
    return where
