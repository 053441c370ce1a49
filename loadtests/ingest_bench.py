"""Ingest rate on a throw-away PostgreSQL (or a given URL): records per second.

    .venv/bin/python -m loadtests.ingest_bench --lines 100000 [--url postgresql+psycopg://...]

Generates a penalty feed (NDJSON) in memory, ingests it through the same
Ingestor as `xyd ingest`, then ingests it again (all duplicates) and prints
both rates.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from sqlalchemy import create_engine, text

from gateway.db import make_sync_engine
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from tests.builders import ndjson, penalty
from tests.services import postgres_server


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with postgres_server() as server:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        yield server.url("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    payload = ndjson(*(penalty(n) for n in range(1, args.lines + 1))).splitlines(keepends=True)
    with database(args.url) as url:
        settings = Settings(database_url=url, pii_key="bench")
        engine = make_sync_engine(settings)
        upgrade(engine)
        ingestor = Ingestor(engine, "penalty", b"bench", args.batch)
        for label in ("new records", "all duplicates"):
            started = time.perf_counter()
            summary = ingestor.run(read_ndjson(payload), source="bench")
            seconds = time.perf_counter() - started
            print(
                f"{label:15} {summary.total:>8} lines in {seconds:6.2f} s = "
                f"{summary.total / seconds:>8.0f} records/s  {dict(summary.counts)}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
