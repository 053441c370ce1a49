"""`make bench`: the gateway's warm credit-report path against a bare FastAPI endpoint,
and the other load-test figures, on this machine, into loadtests/RESULTS.md.

    .venv/bin/python -m loadtests.bench [--rounds 3] [--seconds 10] [--enterprises 1000000]

Over HTTP on 127.0.0.1, both served by uvicorn (uvloop, httptools) with two
workers: (a) a bare route answering a report-sized JSON from memory, (b) the
gateway (`xyd serve`) on a throw-away PostgreSQL and Redis with the demo data.
wrk drives them in interleaved rounds (bare, Bearer, DPoP, and again), always
for the same few enterprises so the report cache is warm; every request still
passes every gate: token (and a fresh DPoP proof), consent, rate limit in
Redis, signature, committed audit entry. Then p99 at 70 % of the gateway's own
saturation from an open-loop generator, the token endpoint's rate, and the
other scripts' figures at small sizes.

The cold-build figure defaults to a 20,000-enterprise store seeded in the
run (about 15 s). `--enterprises 1000000` uses a store kept under
.xyd/bench/pg-1000000/ (PostgreSQL's own data directory): the first such run
seeds it (8 minutes, so that run takes longer than 10), later ones reuse it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from loadtests import bench_http, figures
from loadtests.bare_app import BODY_BYTES_ENV
from loadtests.bench_http import Load, Target
from loadtests.bench_requests import (
    Caller,
    bare_requests,
    bearer_requests,
    choose_enterprises,
    dpop_requests,
    token_requests,
)
from loadtests.proofs import dpop_proofs
from loadtests.results import BenchReport, Figure, describe_machine, render
from loadtests.servers import WORKERS, Served, bare_command, gateway_command, serve
from loadtests.stores import (
    ROOT,
    bench_config,
    cached_postgres,
    clean_env,
    create_database,
    postmaster_pid,
    xyd,
)
from testkit.services import Postgres, RedisServer, free_port, postgres_server, redis_server

WORK = ROOT / ".xyd" / "bench"
CACHE_FROM = 100_000  # enterprises: a store this big is kept between runs
PACED_SHARE = 0.7


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="per wrk round")
    parser.add_argument("--warmup", type=float, default=3, help="seconds per path, untimed")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--paced-seconds", type=float, default=10)
    parser.add_argument("--demo-enterprises", type=int, default=2000)
    parser.add_argument("--enterprises", type=int, default=20_000, help="cold-build store size")
    parser.add_argument("--skip-others", action="store_true", help="only the HTTP figures")
    parser.add_argument("--out", type=Path, default=ROOT / "loadtests" / "RESULTS.md")
    return parser.parse_args()


def gateway_env(work: Path, database_url: str, redis: RedisServer, port: int) -> dict[str, str]:
    return clean_env({
        "XYD_STATE_DIR": str(work / "state"), "XYD_CONFIG_DIR": str(bench_config(work / "config")),
        "XYD_DATABASE_URL": database_url, "XYD_REDIS_URL": redis.url, "XYD_PII_KEY": "bench",
        "XYD_HOST": "127.0.0.1", "XYD_PORT": str(port), "XYD_WORKERS": str(WORKERS),
    })  # fmt: skip


def check_paths(bank: Caller, fapi: Caller, codes: list[str]) -> int:
    """Every path answers a full report before load is put on it; the replay check is live.
    Returns the mean report size, which the bare server will match."""
    sizes = []
    for code in codes:
        answer = bank.fetch(code)
        if answer.status_code != 200:
            raise RuntimeError(f"report for {code}: {answer.status_code} {answer.text[:300]}")
        sizes.append(len(answer.content))
    key, token = fapi.client.dpop_key, fapi.client.token()
    if key is None:
        raise RuntimeError(f"{fapi.client.client_id} is not a DPoP client")
    url = fapi.client.issuer + f"/v1/enterprises/{codes[0]}/credit-report"
    proof = next(dpop_proofs(key, "GET", url, token, 1))
    first, replay = fapi.fetch(codes[0], proof), fapi.fetch(codes[0], proof)
    if first.status_code != 200 or replay.status_code != 401:
        raise RuntimeError(f"DPoP: fresh proof {first.status_code}, replay {replay.status_code}")
    return round(statistics.mean(sizes))


def measure_http(
    pg: Postgres, redis: RedisServer, args: argparse.Namespace, report: BenchReport
) -> None:
    port = free_port()
    env = gateway_env(WORK / "last", create_database(pg, "gateway"), redis, port)
    xyd(env, "db", "upgrade")
    xyd(env, "demo", "seed", "--enterprises", str(args.demo_enterprises), "--seed", "42")
    demo = WORK / "last" / "state" / "demo"
    codes = choose_enterprises(demo / "enterprises.csv")
    with serve("gateway", gateway_command(port), env, port, WORK / "last") as gateway:
        bank = Caller.connect(gateway.base_url, demo / "clients" / "demo-bank.jwk", codes)
        fapi = Caller.connect(gateway.base_url, demo / "clients" / "demo-bank-fapi.jwk", codes)
        size = check_paths(bank, fapi, codes)
        bare_port = free_port()
        bare_env = clean_env({BODY_BYTES_ENV: str(size)})
        with serve("bare", bare_command(bare_port), bare_env, bare_port, WORK / "last") as bare:
            deps = [postmaster_pid(pg), redis.pid() or 0]
            targets = http_targets(bare, gateway, deps, bank, fapi, codes)
            load = Load(args.seconds, args.connections)
            bench_http.interleave(targets, WORK / "last", load, args.rounds, args.warmup)
            report.paths = [bench_http.summarise(t, targets[0]) for t in targets]
            report.paced = [
                bench_http.paced(t, PACED_SHARE, args.paced_seconds) for t in targets[1:]
            ]
            best = max(bench_http.guess(targets), 1000.0)
            report.others.append(token_issuance(gateway, bank, deps, load, best))
    report.method = method(args, size, codes)
    report.notes += http_notes(report)


def http_targets(
    bare: Served, gateway: Served, deps: list[int], bank: Caller, fapi: Caller, codes: list[str]
) -> list[Target]:
    return [
        Target("bare", "bare FastAPI route, orjson from memory", bare.base_url, [bare.pid], [],
               lambda _: bare_requests(codes)),
        Target("bearer", "gateway, Bearer token", gateway.base_url, [gateway.pid], deps,
               lambda _: bearer_requests(bank)),
        Target("dpop", "gateway, DPoP (fresh proof each request)", gateway.base_url,
               [gateway.pid], deps, lambda n: dpop_requests(fapi, n), single_use=True),
    ]  # fmt: skip


def token_issuance(
    gateway: Served, bank: Caller, deps: list[int], load: Load, rps_guess: float
) -> Figure:
    """POST /oauth/token with a fresh private_key_jwt assertion each; assertions are made
    for well over the fastest gateway rate seen, and a run that still used one twice says so."""
    target = Target("token", "token endpoint", gateway.base_url, [gateway.pid], deps,
                    lambda n: token_requests(bank.client, n), single_use=True)  # fmt: skip
    measured = bench_http.run_round(target, WORK / "last", load, rps_guess)
    wrk = measured.wrk
    errors = wrk.bad_status + wrk.socket_errors
    if wrk.wrapped:
        return Figure("token issuance", f"invalid: ran out of assertions ({errors} errors)", "wrk")
    return Figure(
        "token issuance, `POST /oauth/token` over HTTP (private_key_jwt, ES256)",
        f"{wrk.rps:,.0f} tokens/s, p50 {wrk.p50_ms:.2f} ms, p99 {wrk.p99_ms:.2f} ms, "
        f"gateway CPU {measured.cpu_s / max(1, wrk.requests) * 1e6:,.0f} µs/token"
        + (f", {errors} errors" if errors else ""),
        f"wrk -t1 -c{load.connections} -d{load.seconds:g}s, a distinct assertion each request",
    )


def method(args: argparse.Namespace, size: int, codes: list[str]) -> list[str]:
    return [
        f"Both servers: uvicorn with uvloop and httptools, {WORKERS} workers, on 127.0.0.1. "
        f"`wrk -t1 -c{args.connections}` for {args.seconds:g} s a round, {args.rounds} rounds "
        f"interleaved (bare, Bearer, DPoP, then again) after a {args.warmup:g} s warm-up of each; "
        "figures are medians over the rounds, the ratio is the gateway's median req/s over the "
        "bare route's. wrk and the servers share the machine's cores.",
        "",
        f"The gateway answers `GET /v1/enterprises/{{code}}/credit-report` for {len(codes)} demo "
        "enterprises (one each of the black-listed, penalised, repaired and clean profiles), "
        "report cache warm, and every request passes every gate: access token (DPoP: a fresh "
        "proof, its jti checked once in Redis), the consent (read, or the worker's copy of it "
        "for at most 1 s with its change mark checked in Redis), GCRA and daily counters in "
        "Redis, ES256 report signature, committed audit entry. The rate plans are raised for "
        "the run, "
        f"not removed. The bare route answers a {size:,}-byte body, the mean size of those "
        "reports. PostgreSQL runs with fsync=off (a throw-away server).",
        "",
        "Server CPU/req: utime+stime of the server's processes from /proc, before and after each "
        "round, over its requests; PostgreSQL + Redis the same for theirs. The open-loop p99: "
        "requests due on a fixed schedule at 70 % of the path's median req/s over 32 keep-alive "
        "connections, latency counted from when each request was due, so a queue shows "
        "(loadtests/openloop.py; wrk2 is not in Debian). Beside it, the CPU per request under "
        "that paced load, and the share of the machine's CPU time that was busy (/proc/stat).",
    ]


def http_notes(report: BenchReport) -> list[str]:
    notes = []
    for path in report.paths:
        if path.bad:
            notes.append(f"{path.label}: {path.bad} answers were errors; its figures are suspect.")
    for paced in report.paced:
        if paced.bad:
            notes.append(
                f"{paced.label} (open loop): {paced.bad} requests failed or went unanswered."
            )
        if paced.achieved_rps < 0.95 * paced.target_rps:
            notes.append(
                f"{paced.label} (open loop) fell behind its schedule: the machine gave the "
                "gateway less than in the saturation rounds, so its p99 is a queue, not a service "
                "time."
            )
    return notes


@contextlib.contextmanager
def cold_store(pg: Postgres, enterprises: int) -> Iterator[tuple[str, Path | None]]:
    """(database URL, marker to write once seeded): a fresh database for a small store, or
    the cached big one, cleared first if an earlier seeding never finished."""
    if enterprises < CACHE_FROM:
        yield create_database(pg, "cold"), None
        return
    directory = WORK / f"pg-{enterprises}"
    with cached_postgres(directory) as server:
        marker = directory / "seeded"
        if marker.exists():
            # report_bench starts each run with a fresh state dir: a new key-encryption key,
            # which cannot open the signing keys the last run sealed, and its client registered
            # anew. Nothing references either row; the gateway makes new keys at start-up.
            engine = create_engine(server.url("bench"))
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM clients WHERE client_id = 'bench-bank'"))
                conn.execute(text("DELETE FROM signing_keys"))
            engine.dispose()
        else:
            admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS bench"))
                conn.execute(text("CREATE DATABASE bench"))
            admin.dispose()
        yield server.url("bench"), marker


def other_figures(pg: Postgres, redis: RedisServer, args: argparse.Namespace) -> list[Figure]:
    out = []
    with cold_store(pg, args.enterprises) as (store_url, marker):
        scripts = figures.scripts(
            store_url=store_url, enterprises=args.enterprises, redis_url=redis.url
        )
        for script in scripts:
            print(f"… {script.what}", flush=True)
            figure = figures.run_script(script)
            out.append(figure)
            if marker is not None and script is scripts[0] and figure.ok:
                marker.touch()
    return out


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    shutil.rmtree(WORK / "last", ignore_errors=True)
    (WORK / "last").mkdir(parents=True)
    report = BenchReport(date=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                         wall_s=0, machine=describe_machine())  # fmt: skip
    with postgres_server() as pg, redis_server() as redis:
        print("… credit report over HTTP: bare, Bearer, DPoP", flush=True)
        measure_http(pg, redis, args, report)
        if not args.skip_others:
            report.others += other_figures(pg, redis, args)
    report.wall_s = time.perf_counter() - started
    page = render(report)
    args.out.write_text(page, encoding="utf-8")
    print(page)


if __name__ == "__main__":
    main()
