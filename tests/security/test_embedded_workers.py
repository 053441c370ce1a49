"""Embedded mode keeps limits in each process: several workers would multiply them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.services import free_port, stop_gently


def _serve(tmp_path: Path, *args: str, **env: str) -> tuple[int | None, str]:
    """Its exit status (None: it was still serving after 15 s) and its stderr."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    base.update(XYD_STATE_DIR=str(tmp_path / ".xyd"), XYD_PORT=str(free_port()), **env)
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", *args],
            env=base,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            code: int | None = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = None
            stop_gently(proc)
    return code, log.read_text(errors="replace")


@pytest.mark.parametrize(("args", "env"), [(("--workers", "2"), {}), ((), {"XYD_WORKERS": "3"})])
def test_several_workers_without_redis_are_refused_at_start(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    code, stderr = _serve(tmp_path, *args, **env)
    assert code == 2, stderr[-2000:]
    assert "XYD_REDIS_URL" in stderr
