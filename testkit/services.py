"""Throw-away PostgreSQL and Redis servers for the test session.

Started from Debian's binaries on free loopback ports in a temp dir, stopped
at the end of the session. No systemd, and no mock of either.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class Postgres:
    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def copy(self, template: str, name: str) -> str:
        """A new database `name` copied from `template`; its URL."""
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
        admin.dispose()
        return self.url(name)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl(
            "-w", "-t", "30", "-l", str(self.data_dir.parent / "pg.log"), "-o", options, "start"
        )

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")


@contextlib.contextmanager
def postgres_server(directory: Path | None = None) -> Iterator[Postgres]:
    """A throw-away PostgreSQL; with `directory`, one whose data outlives the run
    (initialised on first use, kept afterwards: a benchmark's seeded store)."""
    if not PG_BIN_DIRS:
        raise RuntimeError("PostgreSQL binaries not found; `make test` installs them")
    root = directory or Path(tempfile.mkdtemp(prefix="xyd-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    data, sockets = root / "data", root / "sock"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    server = Postgres(PG_BIN_DIRS[0], data, sockets, free_port())
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_postgres([str(server.bin_dir / "initdb"), "-D", str(data), "-A", "trust",
                          "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        if directory is None:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class RedisServer:
    port: int
    pidfile: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[RedisServer]:
    """A throw-away redis-server; `port` restarts one where a stopped one was."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found; `make test` installs it")
    root = Path(tempfile.mkdtemp(prefix="xyd-redis-"))
    server = RedisServer(port or free_port(), root / "redis.pid")
    with (root / "redis.log").open("wb") as log:
        subprocess.run(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(server.port),
                "--save",
                "",
                "--appendonly",
                "no",
                # As production's redis.conf (docs/operations.md 2.2): a second's
                # spent jtis expire as one set, freed off Redis's event loop.
                "--lazyfree-lazy-expire",
                "yes",
                "--daemonize",
                "yes",
                "--pidfile",
                str(server.pidfile),
                "--dir",
                str(root),
                "--logfile",
                str(root / "redis.log"),
            ],
            check=True,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), 0.2),
        ):
            break
        time.sleep(0.05)
    try:
        yield server
    finally:
        pid = server.pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def migrated_postgres(template: str) -> Iterator[Postgres]:
    """A throw-away server holding `template`, a database at the latest migration
    that tests copy (CREATE DATABASE … TEMPLATE) instead of migrating each time."""
    from sqlalchemy import create_engine, text

    from gateway.store.migrate import upgrade

    with postgres_server() as server:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {template}"))
        admin.dispose()
        engine = create_engine(server.url(template))
        upgrade(engine)
        engine.dispose()
        yield server


def start_serve(
    env: dict[str, str], log: Path, *, nofile: int | None = None
) -> subprocess.Popen[bytes]:
    """`xyd serve` as an operator runs it, configured by `env`, its logs in `log`;
    with `nofile`, under that descriptor limit (soft and hard)."""
    limit = ["prlimit", f"--nofile={nofile}:{nofile}"] if nofile is not None else []
    return subprocess.Popen(
        [*limit, sys.executable, "-m", "gateway.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def stop_gently(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C would: uvicorn shuts its workers down; killed after 15 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
