"""deploy/image without building: the health check's address and the run's argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.image import healthcheck, rootfs


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("0.0.0.0", "8000", "http://127.0.0.1:8000/healthz"),  # noqa: S104 (a setting's value)
        ("", "9000", "http://127.0.0.1:9000/healthz"),
        ("10.77.0.31", "8080", "http://10.77.0.31:8080/healthz"),
        ("::", "8000", "http://127.0.0.1:8000/healthz"),
        ("fd00::5", "8000", "http://[fd00::5]:8000/healthz"),
    ],
)
def test_the_health_check_asks_where_the_gateway_listens(
    monkeypatch: pytest.MonkeyPatch, host: str, port: str, url: str
) -> None:
    monkeypatch.setenv("XYD_HOST", host)
    monkeypatch.setenv("XYD_PORT", port)
    assert healthcheck.url() == url


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    config = {
        "image_id": "f" * 64,
        "user": "10001:10001",
        "env": {"PATH": "/opt/xyd/bin:/usr/bin", "XYD_PORT": "8000"},
        "entrypoint": ["/opt/xyd/bin/xyd"],
        "cmd": ["serve"],
        "working_dir": "/var/lib/xyd",
        "healthcheck": ["CMD", "/opt/xyd/bin/python", "-I", "/opt/xyd/healthcheck.py"],
    }
    (tmp_path / "image.json").write_text(json.dumps(config))
    return tmp_path


def test_the_run_drops_to_the_image_user_under_a_read_only_root(out: Path) -> None:
    argv = rootfs.command(out, state=out / "state", netns="xyd-h1")
    assert argv[:4] == ["ip", "netns", "exec", "xyd-h1"]
    script = argv[argv.index("-c") + 1]
    root = str((out / "rootfs").resolve())
    assert script.splitlines()[-2] == f"mount -o remount,bind,ro {root}"
    assert "--reuid=10001" in argv and "--regid=10001" in argv and "--no-new-privs" in argv
    assert argv[-2:] == ["/opt/xyd/bin/xyd", "serve"]


def test_args_replace_the_cmd_and_an_entrypoint_both(out: Path) -> None:
    upgrade = rootfs.command(out, state=out / "state", args=["db", "upgrade"])
    assert upgrade[-3:] == ["/opt/xyd/bin/xyd", "db", "upgrade"]
    check = rootfs.command(out, state=out / "state", entrypoint=rootfs.healthcheck(out))
    assert check[-3:] == ["/opt/xyd/bin/python", "-I", "/opt/xyd/healthcheck.py"]


def test_binds_are_read_only_and_writable_ones_not(out: Path, tmp_path: Path) -> None:
    key = tmp_path / "kek.key"
    key.write_text("00" * 32)
    argv = rootfs.command(
        out,
        state=out / "state",
        binds={key: "/run/xyd/keys/kek.key"},
        writable={tmp_path: "/run/xyd/spool"},
    )
    script = argv[argv.index("-c") + 1]
    root = str((out / "rootfs").resolve())
    assert f"mount --bind -o ro {key} {root}/run/xyd/keys/kek.key" in script
    assert f"mount --bind {tmp_path} {root}/run/xyd/spool" in script
    assert rootfs.environment(out, {"XYD_PORT": "9000"})["XYD_PORT"] == "9000"
