"""The sealer's woken rounds: prompt after a checkpoint, but at most one a second under load."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from sqlalchemy import Engine

from gateway.audit import sealer as sealer_module
from gateway.audit.checkpoints import Checkpoint
from gateway.audit.sealer import Sealer
from gateway.audit.witness import Witness
from gateway.keys.ring import KeyRingHolder


class Counting(Sealer):
    def __init__(self, tmp: Path, seal_s: float) -> None:
        super().__init__(
            cast(Engine, None), cast(KeyRingHolder, None), cast(Witness, None),
            every=100, seal_s=seal_s, pinned_path=tmp / "pinned.json",
        )  # fmt: skip
        self.rounds: list[float] = []

    async def round(self) -> None:
        self.rounds.append(asyncio.get_running_loop().time())


def _signed(seq: int) -> list[Checkpoint]:
    return [Checkpoint(seq=seq, head="h", signed="s")]


async def _run(sealer: Counting, work: float, wakes: int) -> None:
    task = asyncio.create_task(sealer.run_forever())
    try:
        for n in range(wakes):
            sealer.wrote((100 * (n + 1), "h"), _signed(100 * (n + 1)))
            await asyncio.sleep(work / wakes)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_many_checkpoints_a_second_make_one_round_a_second(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sealer_module, "WAKE_GAP_S", 0.2)
    sealer = Counting(tmp_path, seal_s=60)
    asyncio.run(_run(sealer, work=0.7, wakes=70))
    # 70 checkpoints in 0.7 s: a round at once, then one per 0.2 s gap, not 70.
    assert 3 <= len(sealer.rounds) <= 5
    gaps = [b - a for a, b in zip(sealer.rounds, sealer.rounds[1:], strict=False)]
    assert min(gaps) >= 0.19


def test_a_checkpoint_is_sealed_without_waiting_for_the_period(tmp_path: Path) -> None:
    sealer = Counting(tmp_path, seal_s=60)

    async def one() -> float:
        task = asyncio.create_task(sealer.run_forever())
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.05)
        sealer.wrote((100, "h"), _signed(100))
        for _ in range(100):
            if sealer.rounds:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return sealer.rounds[0] - started if sealer.rounds else 99.0

    # The first round is not held back by a gap (nothing was sealed before it).
    assert asyncio.run(one()) < 1.0
