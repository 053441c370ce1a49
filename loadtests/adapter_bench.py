"""Push platforms' sustained messages/s through their adapters, over real HTTP.

    .venv/bin/python -m loadtests.adapter_bench --messages 2000 [--postgres]

Serves the gateway (uvicorn, one worker) with the three push platforms
enabled on demo credentials, then sends each platform's simulated stream
sequentially from one client (duplicates and malformed messages included, as
the simulators make them) and prints messages/s. Every accepted message is
committed before its answer, so this measures the durable path.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import mkdtemp

from gateway.app import create_app
from gateway.db import make_sync_engine
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from loadtests.ingest_bench import database
from testkit.live import serve
from xyd_demo import platforms


@contextlib.contextmanager
def store(postgres: bool, state: Path) -> Iterator[str]:
    if postgres:
        with database(None) as url:
            yield url
    else:
        yield f"sqlite:///{state / 'bench.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    state = Path(mkdtemp(prefix="xyd-adapter-bench-"))
    with store(args.postgres, state) as url:
        settings = Settings(
            database_url=url,
            state_dir=state,
            pii_key="bench",
            run_background=False,
        )
        engine = make_sync_engine(settings)
        upgrade(engine)
        engine.dispose()
        platforms.write_credentials(state)
        with serve(create_app(settings)) as base:
            for name, send in platforms.PUSH.items():
                started = time.perf_counter()
                answers = send(base, state, args.messages)
                seconds = time.perf_counter() - started
                total = sum(answers.values())
                print(
                    f"{name:16} {total:6} messages in {seconds:6.1f} s = "
                    f"{total / seconds:6.0f} msg/s  {dict(sorted(answers.items()))}"
                )
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
