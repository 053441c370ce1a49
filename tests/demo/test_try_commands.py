"""What `make demo` tells a new user to try is README.md's list, with the demo's real port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from xyd_demo.try_commands import COMMANDS, render

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"Then try \(.*?\):\n\n```\n(.*?)```\n", text, re.S)
    assert match is not None, "README.md lost its 'Then try' block"
    return match.group(1)


def test_the_readme_block_is_the_list_the_demo_prints() -> None:
    assert readme_block() == COMMANDS


def test_demo_seed_prints_the_readme_commands_with_its_port(tmp_path: Path) -> None:
    port = 43_210
    env = {k: v for k, v in os.environ.items() if not k.startswith("XYD_")}
    env |= {"XYD_STATE_DIR": str(tmp_path / ".xyd"), "XYD_PORT": str(port)}

    def xyd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    assert xyd("db", "upgrade").returncode == 0
    seeded = xyd("demo", "seed", "--enterprises", "40", "--seed", "3")
    assert seeded.returncode == 0, seeded.stderr
    printed = render("127.0.0.1", port)
    assert printed in seeded.stdout
    assert f"127.0.0.1:{port}/healthz" in printed
    assert "127.0.0.1:8000" not in seeded.stdout
    # `sed -n 2p … | cut -d, -f1` in that list must not carry a carriage return.
    samples = (tmp_path / ".xyd" / "demo" / "enterprises.csv").read_bytes()
    assert b"\r" not in samples
    assert samples.startswith(b"credit_code,name,profile\n")


def test_a_server_bound_to_every_address_is_dialled_on_loopback() -> None:
    assert "curl -s 127.0.0.1:9001/healthz" in render("0.0.0.0", 9001)  # noqa: S104
    assert "curl -s [::1]:9001/healthz" in render("::", 9001)
    assert "curl -s 10.1.2.3:9001/healthz" in render("10.1.2.3", 9001)
