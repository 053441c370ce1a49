"""Ingest rate on a throw-away PostgreSQL (or a given URL): records per second.

    .venv/bin/python -m loadtests.ingest_bench --lines 100000 [--workers N] [--url ...]

Generates a penalty feed (NDJSON) in memory and ingests it end to end as
`xyd ingest` does (worker processes parse and validate, this process stores
batch after batch), then ingests it again (all duplicates), and prints both
rates. `--workers 0` validates in this process, as a posted batch is.

Next to each rate it prints the CPU time spent per record, all of it and
then by process: this one (reading, and storing on its writer thread), the
validation workers (reaped when the pool shuts down, so counted in full)
and, on the throw-away server, PostgreSQL (every process of it). On a shared
or small machine the rate moves with the neighbours' load; the CPU figures
do not, and say which side a faster run needs to relieve.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from gateway.db import make_sync_engine
from gateway.keys.pii import KeyRing
from gateway.records.audited import WriteAudit
from gateway.records.binding import load_departments
from gateway.records.parallel import default_workers, pool_for
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, IngestSummary
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from testkit.builders import MARKET, ndjson, penalty
from testkit.services import postgres_server

_TICKS = os.sysconf("SC_CLK_TCK")


class Server(str):
    """A database URL (so it goes wherever a URL does) and, for a throw-away
    server this script started, that server's data directory."""

    data_dir: Path | None

    def __new__(cls, url: str, data_dir: Path | None = None) -> Server:
        server = super().__new__(cls, url)
        server.data_dir = data_dir
        return server

    @property
    def url(self) -> str:
        return str(self)

    def cpu_seconds(self) -> float | None:
        """CPU time of the postmaster and every process it started (None: not ours)."""
        if self.data_dir is None:
            return None
        postmaster = (self.data_dir / "postmaster.pid").read_text().split()[0]
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                pid, rest = stat.read_text().split(" ", 1)
                fields = rest.rsplit(")", 1)[1].split()
                if postmaster in (pid, fields[1]):  # fields[1]: the parent's pid
                    total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS


@contextlib.contextmanager
def database(url: str | None) -> Iterator[Server]:
    if url:
        yield Server(url)
        return
    with postgres_server() as server:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        yield Server(server.url("bench"), server.data_dir)


def client_cpu_seconds() -> float:
    """This process and its reaped children (the pool's workers, once it has shut down)."""
    return sum(split_cpu_seconds())


def split_cpu_seconds() -> tuple[float, float]:
    """This process's, and its reaped children's (the pool's workers, once it has shut down)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def cpu_per_record(records: int, parent: float, workers: float, server: float | None) -> str:
    """`CPU µs/record: <all> = parent <p> + workers <w>[ + PostgreSQL <s>]`."""
    parts = {"parent": parent, "workers": workers}
    if server is not None:
        parts["PostgreSQL"] = server
    per = {name: seconds * 1e6 / records for name, seconds in parts.items()}
    split = " + ".join(f"{name} {value:.0f}" for name, value in per.items())
    return f"CPU µs/record: {sum(per.values()):.0f} = {split}"


def ingest(ingestor: Ingestor, payload: list[bytes], workers: int) -> IngestSummary:
    """As `xyd ingest` does it: the pool (if any) started first, its startup timed too."""
    with pool_for(
        ingestor.category, ingestor.pii_key, workers, ingestor.keys, ingestor.writer
    ) as pool:
        batches = (
            pool.prepare_feed(payload, "ndjson", ingestor.batch_size)
            if pool is not None
            else ingestor.prepare(read_ndjson(payload))
        )
        return ingestor.store(batches, source="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--url", default=None)
    parser.add_argument(
        "--unbound",
        action="store_true",
        help="no department bound and no audit entries (as before issue 19's binding)",
    )
    args = parser.parse_args()
    payload = ndjson(*(penalty(n) for n in range(1, args.lines + 1))).splitlines(keepends=True)
    with database(args.url) as server:
        settings = Settings(database_url=server.url, pii_key="bench")
        engine = make_sync_engine(settings)
        upgrade(engine)
        # Every bench penalty names its legal representative: each is sealed, as in production.
        keys = KeyRing({1: bytes(32)})
        # As `xyd ingest --department` runs: bound to the department, every line audited.
        writer = None if args.unbound else load_departments(settings.config_dir).writer(MARKET)
        audit = None if args.unbound else WriteAudit("bench", "xyd ingest", None, 100)
        ingestor = Ingestor(
            engine, "penalty", b"bench", args.batch, keys=keys, writer=writer, audit=audit
        )
        print(
            f"{args.lines} lines, batches of {args.batch}, {args.workers} worker processes"
            + (", unbound and unaudited" if args.unbound else ", bound and audited")
        )
        for label in ("new records", "all duplicates"):
            server_before, client_before = server.cpu_seconds(), split_cpu_seconds()
            started = time.perf_counter()
            summary = ingest(ingestor, payload, args.workers)
            seconds = time.perf_counter() - started
            parent_after, workers_after = split_cpu_seconds()
            server_after = server.cpu_seconds()
            cpu = cpu_per_record(
                summary.total,
                parent_after - client_before[0],
                workers_after - client_before[1],
                None
                if server_before is None or server_after is None
                else server_after - server_before,
            )
            print(
                f"{label:15} {summary.total:>8} lines in {seconds:6.2f} s = "
                f"{summary.total / seconds:>8.0f} records/s  {dict(summary.counts)}  {cpu}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
