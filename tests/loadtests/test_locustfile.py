"""The locustfile loads in Locust's own loader and its users are well-formed.

In a child process: importing Locust monkey-patches sockets, threads and
time for gevent, which the rest of the test session must not inherit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from locust.contrib.fasthttp import FastHttpUser
from locust.util.load_locustfile import load_locustfile
users, _ = load_locustfile("loadtests/locustfile.py")
print(json.dumps({
    name: {
        "fast": issubclass(cls, FastHttpUser),
        "abstract": cls.abstract,
        "weight": cls.weight,
        "tasks": sorted({t.__name__ for t in cls.tasks}),
        "wait": cls.wait_time(cls.__new__(cls)) if cls.wait_time else None,
    }
    for name, cls in users.items()
}))
"""


def test_locustfile_users() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    users = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(users) == {"DemoBank", "DemoBank2", "FapiBank", "Platform", "RiskOfficer",
                          "Department"}  # fmt: skip
    for name, user in users.items():
        assert user["fast"], f"{name} is a FastHttpUser"
        assert not user["abstract"]
        assert user["weight"] >= 1
        assert user["tasks"], f"{name} has tasks"
        assert 0 < user["wait"] <= 10, f"{name} waits between tasks"
    assert {"report_under_consent", "report_without_consent", "refresh_token"} <= set(
        users["DemoBank"]["tasks"]
    )
    assert "burst" in users["DemoBank2"]["tasks"]
    assert set(users["Platform"]["tasks"]) == {"kechuangtong_webhook", "nongdaitong_message"}
    assert "watch_stream" in users["RiskOfficer"]["tasks"]
