"""Push platforms' sustained messages/s through their adapters, over real HTTP.

    .venv/bin/python -m loadtests.adapter_bench --messages 2000 --senders 32 [--postgres]

Serves the gateway (uvicorn, one worker) in a process of its own with the
three push platforms enabled on demo credentials, prepares each platform's
simulated stream (duplicates and malformed messages included, as the
simulators make them; signed before the clock starts, so the senders' own
signing is not timed), then sends it from `--senders` threads at once, each
on its own keep-alive connection, and prints messages/s. Every accepted
message is committed before its answer, so this measures the durable path.

Next to each rate: the CPU time per message of the gateway's process and,
on the throw-away PostgreSQL, of PostgreSQL (every process of it). On a
shared machine the rate moves with the neighbours' load; the CPU does not.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path
from tempfile import mkdtemp

from sqlalchemy import Engine

from gateway.db import make_sync_engine
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from loadtests.closedloop import Answer, encode, send_all
from loadtests.ingest_bench import Server, client_cpu_seconds, database
from loadtests.procstat import CpuMeter
from testkit.builders import code, register_enterprises
from testkit.clients import register
from testkit.services import free_port
from xyd_demo import platforms

# A platform's stream, ready for the wire, and how to name each answer (to count them).
Prepared = tuple[list[bytes], Callable[[Answer], str]]


def _status(answer: Answer) -> str:
    return str(answer.status)


@contextlib.contextmanager
def store(postgres: bool, state: Path) -> Iterator[Server]:
    if postgres:
        with database(None) as server:
            yield server
    else:
        yield Server(f"sqlite:///{state / 'bench.db'}")


def _serve_gateway(url: str, state: str, port: int, stop: Event) -> None:
    """The gateway's process: served until `stop` is set."""
    from gateway.app import create_app
    from testkit.live import serve

    settings = Settings(
        database_url=url, state_dir=Path(state), pii_key="bench", run_background=False
    )
    with serve(create_app(settings), port=port):
        stop.wait()


@contextlib.contextmanager
def gateway(url: str, state: Path, workers: int) -> Iterator[tuple[list[str], list[int]]]:
    """Each worker's base URL and process id (their CPU is read from /proc). The
    workers are separate processes on ports of their own; the senders spread
    their connections over them, as the kernel does over `xyd serve`'s workers."""
    spawn = multiprocessing.get_context("spawn")
    stop, ports = spawn.Event(), [free_port() for _ in range(workers)]
    processes = [
        spawn.Process(target=_serve_gateway, args=(url, str(state), port, stop)) for port in ports
    ]
    for process in processes:
        process.start()
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            platforms.wait_for(base, 60)
        yield bases, [p.pid for p in processes if p.pid is not None]
    finally:
        stop.set()
        for process in processes:
            process.join(20)
            if process.is_alive():
                process.kill()


# The enterprises the platforms lend to and the banks they name, in the registry,
# as in a deployment: authorisations become consents, not refusals.
BORROWERS = tuple((code(n), f"企业{n}") for n in range(1, 201))


def registered(engine: Engine) -> None:
    from xyd_demo.simulators import chuangfu_tianfu, kechuangtong, nongdaitong, tianfu_rongtong

    banks = {*kechuangtong.BANKS, *nongdaitong.BANKS, *chuangfu_tianfu.BANKS}
    for bank in sorted(banks | set(tianfu_rongtong.BANKS)):
        register(engine, f"bank-{bank.lower()}", org_code=bank)
    register_enterprises(engine, *(credit_code for credit_code, _ in BORROWERS))


def kechuangtong(host: str, state: Path, messages: int) -> Prepared:
    from xyd_demo.simulators import kechuangtong as sim

    secret = (platforms.credentials_dir(state, "kechuangtong") / "secret").read_bytes().strip()
    start = datetime.now(UTC) - timedelta(days=150)
    signer = sim.Sender("http://" + host, secret)
    signer.close()  # only its signed headers are used
    stream = sim.stream(messages, start=start, until=datetime.now(UTC), borrowers=BORROWERS)
    return [
        encode(host, sim.PATH, signer.headers(m.raw, m.header_event_id), m.raw) for m in stream
    ], _status


def nongdaitong(host: str, state: Path, messages: int) -> Prepared:
    """Counted by RspCode: Nongdaitong answers every message with HTTP 200."""
    from xyd_demo.simulators import nongdaitong as sim

    sender = sim.Sender.from_directory(platforms.credentials_dir(state, "nongdaitong"))
    plans = sim.stream(int(time.time()), loans=max(1, messages // 6 + 1), borrowers=BORROWERS)
    plans = plans[:messages]
    headers = {"Content-Type": sim.MEDIA_TYPE}

    def code(answer: Answer) -> str:
        return sim.Answer.parse(answer.body).code if answer.status == 200 else _status(answer)

    return [encode(host, sim.PATH, headers, sender.message(p)) for p in plans], code


def chuangfu_tianfu(host: str, state: Path, messages: int) -> Prepared:
    from xyd_demo.simulators import chuangfu_tianfu as sim

    key = platforms.credentials_dir(state, "chuangfu-tianfu") / "private.jwk"
    stream = sim.Simulator.from_private_jwk(key, borrowers=BORROWERS).stream(max(1, messages // 5))
    headers = {"Content-Type": sim.JOSE_MEDIA_TYPE}
    return [
        encode(host, sim.PATH, headers, m.token.encode("ascii"))
        for m in itertools.islice(stream, messages)
    ], _status


PUSH: dict[str, Callable[[str, Path, int], Prepared]] = {
    "kechuangtong": kechuangtong,
    "nongdaitong": nongdaitong,
    "chuangfu-tianfu": chuangfu_tianfu,
}


def postmaster(server: Server) -> list[int]:
    if server.data_dir is None:
        return []
    return [int((server.data_dir / "postmaster.pid").read_text().split()[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=32, help="connections sending at once")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    state = Path(mkdtemp(prefix="xyd-adapter-bench-"))
    with store(args.postgres, state) as server:
        engine = make_sync_engine(Settings(database_url=server.url, pii_key="bench"))
        upgrade(engine)
        registered(engine)
        engine.dispose()
        platforms.write_credentials(state)
        with gateway(server.url, state, args.workers) as (bases, pids):
            print(f"{args.senders} senders at once, {args.workers} gateway worker(s)")
            for name, prepare in PUSH.items():
                host = bases[0].removeprefix("http://")
                requests, name_of = prepare(host, state, args.messages)
                ours, theirs = CpuMeter(pids), CpuMeter(postmaster(server))
                ours.start()
                theirs.start()
                client_before = client_cpu_seconds()
                answered, seconds = send_all(bases, requests, args.senders)
                per_message = 1e6 / max(1, len(requests))
                cpu = f"gateway {ours.stop() * per_message:.0f}"
                if server.data_dir is not None:
                    cpu += f", PostgreSQL {theirs.stop() * per_message:.0f}"
                cpu += f", senders {(client_cpu_seconds() - client_before) * per_message:.0f}"
                answers = Counter(name_of(a) for a in answered)
                print(
                    f"{name:16} {len(requests):6} messages in {seconds:6.1f} s = "
                    f"{len(requests) / seconds:6.0f} msg/s  {dict(sorted(answers.items()))}  "
                    f"CPU µs/message: {cpu}"
                )
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
