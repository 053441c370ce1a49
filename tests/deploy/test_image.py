"""deploy/image: the image is built, exported, and a gateway runs from its root.

No container runtime starts on these machines, so the gateway runs from the
exported root filesystem the way deploy/image/rootfs.py runs a cluster host:
read-only root, uid 10001, against the tests' real PostgreSQL and Redis.
The first build on a machine makes the Debian base (about two minutes);
later ones reuse it from REPO/.xyd/image-cache.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from deploy.image import rootfs
from deploy.image.build import REPO, Built, build
from deploy.image.buildah import inspect_image
from deploy.image.export import export
from testkit.procfs import mount_at, process_status
from testkit.services import Postgres, RedisServer, free_port, stop_gently

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount namespaces need root"),
]

UID = "10001"


@pytest.fixture(scope="module")
def built() -> Built:
    return build(REPO / ".xyd" / "image-cache")


@pytest.fixture(scope="module")
def out(built: Built) -> Path:
    return export(built.image, REPO / ".xyd" / "image")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    os.chown(directory, int(UID), int(UID))
    directory.chmod(0o700)
    return directory


def _inside(out: Path, state: Path, script: str) -> subprocess.CompletedProcess[str]:
    argv = rootfs.command(out, state=state, entrypoint=["/bin/sh", "-c"], args=[script])
    return subprocess.run(
        argv, env=rootfs.environment(out, {}), capture_output=True, text=True, timeout=60
    )


def test_the_image_config_runs_as_10001_with_a_health_check(built: Built) -> None:
    config = inspect_image(built.image)["Docker"]
    assert isinstance(config, dict)
    docker = config["config"]
    assert docker["User"] == f"{UID}:{UID}"
    assert docker["Entrypoint"] == ["/opt/xyd/bin/xyd"]
    assert docker["Cmd"] == ["serve"]
    assert docker["Healthcheck"]["Test"] == [
        "CMD",
        "/opt/xyd/bin/python",
        "-I",
        "/opt/xyd/healthcheck.py",
    ]
    assert "/var/lib/xyd" in docker["Volumes"]
    assert built.tags == ("localhost/xyd-gateway:0.1.0", "localhost/xyd-gateway:latest")


def test_only_the_production_distribution_is_installed(out: Path, state: Path) -> None:
    probe = (
        "import importlib.util as u; "
        "print(*(n for n in ('gateway', 'adapters', 'policies', 'xyd_demo', 'testkit', "
        "'tests', 'pytest') if u.find_spec(n)))"
    )
    done = _inside(out, state, f'/opt/xyd/bin/python -c "{probe}"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gateway", "adapters", "policies"]
    site = out / "rootfs" / "opt/xyd/lib/python3.11/site-packages"
    assert not list(site.glob("xyd_demo*")) and not (site / "tests").exists()
    assert not (out / "rootfs" / "opt/xyd/bin/pip").exists()


def test_the_root_is_read_only_and_the_state_dir_writable(out: Path, state: Path) -> None:
    done = _inside(
        out,
        state,
        "id -u; id -g; touch /opt/xyd/x || touch /x || echo refused; touch $XYD_STATE_DIR/ok",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [UID, UID, "refused"]
    assert "Read-only file system" in done.stderr
    assert (state / "ok").stat().st_uid == int(UID)


@pytest.fixture
def database(pg: Postgres) -> Iterator[str]:
    """An empty database: the image's own `xyd db upgrade` migrates it."""
    name = f"xyd_image_{os.getpid()}"
    admin = create_engine(pg.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield pg.url(name)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_a_gateway_serves_from_the_exported_root(
    out: Path, state: Path, database: str, redis_srv: RedisServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "kek.key").write_text(os.urandom(32).hex())
    (keys / "kek.key").chmod(0o444)
    port = free_port()
    env = rootfs.environment(
        out,
        {
            "XYD_HOST": "127.0.0.1",
            "XYD_PORT": str(port),
            "XYD_WORKERS": "2",
            "XYD_DATABASE_URL": database,
            "XYD_REDIS_URL": redis_srv.url,
            "XYD_KEY_ENCRYPTION_KEY_FILE": "/run/xyd/keys/kek.key",
        },
    )
    # A file bound alone, as a Secret's key mounted with subPath.
    binds = {keys / "kek.key": "/run/xyd/keys/kek.key"}

    upgrade = rootfs.command(out, state=state, args=["db", "upgrade"], binds=binds)
    done = subprocess.run(upgrade, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        rootfs.command(out, state=state, binds=binds),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, serve, log)
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200

        pids = [serve.pid, *_children(serve.pid)]
        assert len(pids) >= 3  # the supervisor and its two workers
        for pid in pids:
            status = process_status(pid)
            assert status["Uid"].split() == [UID] * 4
            assert status["Gid"].split() == [UID] * 4
            assert status["Groups"] == ""
            assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
            assert status["NoNewPrivs"] == "1"
        root_mount = mount_at(serve.pid, "/")
        assert "ro" in root_mount.split()[5].split(",")
        assert (state / "serve.json").stat().st_uid == int(UID)

        health = rootfs.command(
            out, state=state, entrypoint=rootfs.healthcheck(out), args=[], binds=binds
        )
        checked = subprocess.run(health, env=env, capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
    finally:
        stop_gently(serve)


def _wait_healthy(base: str, serve: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert serve.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail(f"no /healthz in 60 s: {log.read_text()[-3000:]}")


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_the_cache_makes_a_second_build_fast(built: Built) -> None:
    again = build(REPO / ".xyd" / "image-cache")
    assert again.image == built.image
    assert again.seconds < 10


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"xydimg-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_a_gateway_runs_in_a_network_namespace(out: Path, state: Path, netns: str) -> None:
    """As a cluster host: reachable inside its namespace only (embedded store)."""
    port = free_port()
    env = rootfs.environment(out, {"XYD_HOST": "127.0.0.1", "XYD_PORT": str(port)})
    serve = subprocess.Popen(
        rootfs.command(out, state=state, netns=netns),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        check = rootfs.command(
            out, state=state, entrypoint=rootfs.healthcheck(out), args=[], netns=netns
        )
        deadline = time.monotonic() + 60
        while subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0:
            assert serve.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        # The host's own loopback has no gateway on that port.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        stop_gently(serve)
