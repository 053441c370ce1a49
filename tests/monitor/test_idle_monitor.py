"""`xyd monitor` on an idle stream: quiet, not a traceback every couple of seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit.services import RedisServer


def test_an_idle_monitor_logs_no_errors(
    tmp_path: Path, redis_srv: RedisServer, sqlite_template: Path
) -> None:
    state = tmp_path / ".xyd"
    state.mkdir()
    shutil.copy(sqlite_template, state / "xyd.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    env.update(XYD_STATE_DIR=str(state), XYD_REDIS_URL=redis_srv.url, XYD_PII_KEY="test")
    log = tmp_path / "monitor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "monitor"], env=env, stdout=out, stderr=out
        )
        try:
            time.sleep(6)  # several blocking reads on the idle stream
            assert proc.poll() is None, log.read_text()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
    text = log.read_text()
    assert "rules; Ctrl-C to stop" in text
    assert "Traceback" not in text, text[:3000]
    assert "failed" not in text, text[:3000]
