"""The machine probe: a real echo server, measured paced and back to back."""

from __future__ import annotations

from loadtests import wakeprobe


def test_probe_measures_a_real_server_both_ways() -> None:
    paced_us, burst_us = wakeprobe.measure(rate=1000, paced=300, burst=5000)
    # /proc counts in 10 ms ticks: 300 paced messages may round to none, but
    # 5,000 echoes cannot, and no message needs a tenth of a second.
    assert 0 <= paced_us < 100_000
    assert 0 < burst_us < 100_000
