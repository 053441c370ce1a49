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
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from pathlib import Path
from tempfile import mkdtemp

import httpx

from gateway.db import make_sync_engine
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from loadtests.ingest_bench import Server, database
from loadtests.procstat import CpuMeter
from testkit.services import free_port
from xyd_demo import platforms

# One prepared message: sent on the sender thread's own client, answers a label to count.
Send = Callable[[httpx.Client], str]


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
def gateway(url: str, state: Path) -> Iterator[tuple[str, int]]:
    """The gateway's base URL and process id (its CPU is read from /proc)."""
    spawn = multiprocessing.get_context("spawn")
    stop, port = spawn.Event(), free_port()
    process = spawn.Process(target=_serve_gateway, args=(url, str(state), port, stop))
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        platforms.wait_for(base, 60)
        assert process.pid is not None
        yield base, process.pid
    finally:
        stop.set()
        process.join(20)
        if process.is_alive():
            process.kill()


def kechuangtong(base: str, state: Path, messages: int) -> list[Send]:
    from xyd_demo.simulators import kechuangtong as sim

    secret = (platforms.credentials_dir(state, "kechuangtong") / "secret").read_bytes().strip()
    start = datetime.now(UTC) - timedelta(days=150)
    signer = sim.Sender(base, secret)
    signer.close()  # only its headers are used: each sender thread posts on its own client

    def one(message: sim.Message) -> Send:
        headers = signer.headers(message.raw, message.header_event_id)
        return lambda client: str(
            client.post(sim.PATH, content=message.raw, headers=headers).status_code
        )

    return [one(m) for m in sim.stream(messages, start=start, until=datetime.now(UTC))]


def nongdaitong(base: str, state: Path, messages: int) -> list[Send]:
    """Counted by RspCode: Nongdaitong answers every message with HTTP 200."""
    from xyd_demo.simulators import nongdaitong as sim

    sender = sim.Sender.from_directory(platforms.credentials_dir(state, "nongdaitong"))
    plans = sim.stream(int(time.time()), loans=max(1, messages // 6 + 1))[:messages]

    def one(raw: bytes) -> Send:
        return lambda client: sender.post(client, "", raw).code

    return [one(sender.message(plan)) for plan in plans]


def chuangfu_tianfu(base: str, state: Path, messages: int) -> list[Send]:
    from xyd_demo.simulators import chuangfu_tianfu as sim

    key = platforms.credentials_dir(state, "chuangfu-tianfu") / "private.jwk"
    simulator = sim.Simulator.from_private_jwk(key)
    tokens = [m.token for m in itertools.islice(simulator.stream(max(1, messages // 5)), messages)]

    def one(token: str) -> Send:
        data = token.encode("ascii")
        headers = {"Content-Type": sim.JOSE_MEDIA_TYPE}
        return lambda client: str(client.post(sim.PATH, content=data, headers=headers).status_code)

    return [one(t) for t in tokens]


PUSH: dict[str, Callable[[str, Path, int], list[Send]]] = {
    "kechuangtong": kechuangtong,
    "nongdaitong": nongdaitong,
    "chuangfu-tianfu": chuangfu_tianfu,
}


def send_all(base: str, sends: list[Send], senders: int) -> dict[str, int]:
    """Every message sent by `senders` threads at once; how many got each answer."""
    todo: queue.SimpleQueue[Send] = queue.SimpleQueue()
    for send in sends:
        todo.put(send)
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
            while True:
                try:
                    send = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    answer = send(client)
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                with lock:
                    answers[answer] = answers.get(answer, 0) + 1

    threads = [threading.Thread(target=sender) for _ in range(max(1, senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def postmaster(server: Server) -> list[int]:
    if server.data_dir is None:
        return []
    return [int((server.data_dir / "postmaster.pid").read_text().split()[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=32, help="threads sending at once")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    state = Path(mkdtemp(prefix="xyd-adapter-bench-"))
    with store(args.postgres, state) as server:
        engine = make_sync_engine(Settings(database_url=server.url, pii_key="bench"))
        upgrade(engine)
        engine.dispose()
        platforms.write_credentials(state)
        with gateway(server.url, state) as (base, pid):
            print(f"{args.senders} senders at once, one gateway worker")
            for name, prepare in PUSH.items():
                sends = prepare(base, state, args.messages)
                ours, theirs = CpuMeter([pid]), CpuMeter(postmaster(server))
                ours.start()
                theirs.start()
                started = time.perf_counter()
                answers = send_all(base, sends, args.senders)
                seconds = time.perf_counter() - started
                per_message = 1e6 / max(1, len(sends))
                cpu = f"gateway {ours.stop() * per_message:.0f}"
                if server.data_dir is not None:
                    cpu += f", PostgreSQL {theirs.stop() * per_message:.0f}"
                print(
                    f"{name:16} {len(sends):6} messages in {seconds:6.1f} s = "
                    f"{len(sends) / seconds:6.0f} msg/s  {dict(sorted(answers.items()))}  "
                    f"CPU µs/message: {cpu}"
                )
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
