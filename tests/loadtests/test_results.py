"""The RESULTS.md page, and the readers of the other scripts' printouts."""

from __future__ import annotations

import pytest

from loadtests import figures, wrkrun
from loadtests.results import (
    BenchReport,
    Figure,
    Machine,
    PacedFigures,
    PathFigures,
    render,
)

MACHINE = Machine("AMD EPYC", 2, 23.5, "Debian GNU/Linux 12 (bookworm)", "6.1.0", "3.11.7",
                  "15.18", "7.0.15", "debian/4.1.0")  # fmt: skip


def report() -> BenchReport:
    return BenchReport(
        date="2026-11-27 09:00 UTC",
        wall_s=331,
        machine=MACHINE,
        method=["How it was measured."],
        paths=[
            PathFigures("bare FastAPI route", 3600.4, 8.1, 32.0, 1.0, 380, None, 0, (3600, 3610)),
            PathFigures(
                "gateway, Bearer token", 720, 40.25, 120.5, 0.2, 2480, 610, 3, (700, 720), 0.15
            ),
        ],
        paced=[
            PacedFigures(
                "gateway, Bearer token", 504, 503.2, 6.1, 48.75, 90.0, 0, 95.4, 1830.2, 610.4, 0.934
            )
        ],
        others=[Figure("ingest | NDJSON", "2,600 records/s", "`python -m loadtests.ingest_bench`")],
        notes=["gateway, Bearer token: 3 answers were errors."],
    )


def test_render_has_every_figure() -> None:
    page = render(report())
    assert page.startswith("# Benchmark results\n")
    assert "the whole run took 5 min 31 s" in page
    assert "| CPU | AMD EPYC, 2 cores |" in page
    assert "| PostgreSQL | 15.18 |" in page
    assert (
        "| gateway, Bearer token | 720 | 40.25 ms | 120.50 ms | 0.20 | 2,480 µs | 0.15 | 610 µs "
        "| 3 | 700 / 720 |"
    ) in page
    assert (
        "| bare FastAPI route | 3,600 | 8.10 ms | 32.00 ms | 1.00 | 380 µs | 1.00 | – | 0 |" in page
    )
    assert (
        "| gateway, Bearer token | 504 | 503 | 6.10 ms | 48.75 ms | 90.00 ms | 0 | 95 µs "
        "| 1,830 µs | 610 µs | 93% |"
    ) in page
    assert "| ingest \\| NDJSON | 2,600 records/s |" in page, "a | in a cell is escaped"
    assert "- gateway, Bearer token: 3 answers were errors." in page
    for line in page.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_sections_without_figures_are_left_out() -> None:
    page = render(BenchReport(date="today", wall_s=5, machine=MACHINE))
    assert "open loop" not in page
    assert "## Other figures" not in page
    assert "## Notes" not in page


def test_readers_of_the_other_scripts() -> None:
    cold = figures.read_cold(
        "seeded 20000 enterprises in 14 s\n"
        "cold build   p50   9.40 ms  p95  13.60 ms  p99  18.20 ms  (n=300)\n"
        "warm request p50  13.40 ms  p95  20.00 ms  p99  43.00 ms  (n=500)"
        "       65 req/s (one loop)\n"
    )
    assert cold.startswith("cold build p50 9.40 ms, p95 13.60 ms, p99 18.20 ms (n=300)")
    assert "65 req/s" in cold
    token = figures.read_token(
        "new token (parse + ES256 + claims):   301.5 µs\nseen token (cache hit)            :"
        "     1.2 µs\ndenylist check (Redis MGET)      :   480.0 µs\n"
    )
    assert (
        token
        == "verify a new token 301.5 µs, a seen one 1.2 µs; denylist check (Redis MGET) 480.0 µs"
    )
    ingest = figures.read_ingest(
        "new records         5000 lines in   1.90 s =     2632 records/s  {'accepted': 5000}  "
        "CPU µs/record: 169 = parent 32 + workers 85 + PostgreSQL 52\n"
        "all duplicates      5000 lines in   1.28 s =     3906 records/s  {'duplicate': 5000}  "
        "CPU µs/record: 131 = parent 20 + workers 87 + PostgreSQL 24\n"
    )
    assert ingest == (
        "2,632 records/s new (169 µs CPU a record: parent 32 + workers 85 + PostgreSQL 52), "
        "3,906 records/s all duplicates (131 µs CPU a record: parent 20 + workers 87 + "
        "PostgreSQL 24)"
    )
    adapters = figures.read_adapters(
        "kechuangtong        300 messages in    3.1 s =     98 msg/s  {200: 300}\n"
        "nongdaitong         300 messages in    3.5 s =     85 msg/s  {'0000': 300}\n"
    )
    assert adapters == "kechuangtong 98 msg/s, nongdaitong 85 msg/s"
    adapters = figures.read_adapters(
        "32 senders at once, one gateway worker\n"
        "kechuangtong       1000 messages in    1.2 s =    801 msg/s  {'200': 830, '400': 170}  "
        "CPU µs/message: gateway 1070, PostgreSQL 165, senders 64\n"
    )
    assert adapters == "kechuangtong 801 msg/s (CPU a message: gateway 1070 µs, PostgreSQL 165 µs)"
    pull = figures.read_pull(
        "tianfu-rongtong   20583 rows in    4.2 s =    4876 rows/s  (accepted 19620, duplicate "
        "570)  CPU µs/row: adapter 149, PostgreSQL 56, simulator 7\n"
    )
    assert pull == "4,876 rows/s (CPU a row: adapter 149 µs, PostgreSQL 56 µs), 20,583 rows"
    monitor = figures.read_monitor("1000 events, 1 worker(s): 15.6 s = 64 events/s; 95 alerts\n")
    assert monitor == "64 events/s, 1 worker (1000 events, 95 alerts)"
    with pytest.raises(ValueError, match="no match"):
        figures.read_monitor("Traceback (most recent call last):")
    wake = figures.read_wake(
        "echo server CPU a message: 80 µs paced at 300/s, 25 µs back to back (3.2 times)\n"
    )
    assert wake == "80 µs a message paced at 300/s, 25 µs back to back (3.2 times)"


def test_wrk_figures_and_request_lines() -> None:
    result = wrkrun.parse({"requests": 7200, "duration_us": 10_000_000, "bytes": 1, "connect": 0,
                           "read": 1, "write": 0, "status": 2, "timeout": 0, "p50_us": 4100,
                           "p90_us": 9000, "p99_us": 31_500, "max_us": 80_000, "mean_us": 4.5,
                           "wrapped": 0})  # fmt: skip
    assert (result.rps, result.p50_ms, result.p99_ms) == (720.0, 4.1, 31.5)
    assert (result.bad_status, result.socket_errors) == (2, 1)
    line = wrkrun.Request("GET", "/v1/x", {"Authorization": "Bearer t", "Consent-Id": "c"}).line()
    assert line == "GET\t/v1/x\t\tAuthorization: Bearer t\tConsent-Id: c"
    with pytest.raises(ValueError, match="tabs and newlines"):
        wrkrun.Request("POST", "/v1/x", {}, "a\tb").line()
