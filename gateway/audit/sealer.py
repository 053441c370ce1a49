"""Off the request path: the head signed, and checkpoints exported to the witness.

The writer tells the sealer, per batch, the last entry it wrote and whether it
signed checkpoints (`wrote`: two assignments, nothing more on the hot path).
Every `audit_seal_s`, or when a checkpoint was signed (at most once a second),
the sealer
- signs the head this process last wrote, when it moved (a checkpoint at an
  arbitrary seq: entries after the last interval checkpoint are covered too),
  and stores it beside the others;
- signs every interval checkpoint below it that a stop (or a database
  failover) between an entry's commit and its checkpoint left missing: the
  writers go on past such a gap, so it need not be the last;
- in the one process holding the `audit-export` lease (or alone, without one),
  exports every stored checkpoint not yet exported to the witness, in a thread,
  and marks them exported in a transaction fenced by that lease.
Every process signs; one exports, so the witness gets each checkpoint once
(at least once: a holder that loses the lease between the witness and the
mark leaves them to its successor). A witness that cannot take them (a file
system full, a regulator's endpoint down) keeps them pending in the store for
the next round, logged; the trail itself goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from gateway.audit import checkpoints, pinned, repository
from gateway.audit.checkpoints import Checkpoint
from gateway.audit.witness import Witness, open_witness
from gateway.keys.ring import KeyRingHolder
from gateway.keys.store import LoadedKey
from gateway.leases import Lease
from gateway.settings import Settings

log = logging.getLogger("xyd.audit")
EXPORT_BATCH = 500
# A first round looks this many intervals below its head for missing checkpoints.
REPAIR_WINDOW = 1_000
# Rounds woken by signed checkpoints start at most this often. Under load the
# writers sign one every `audit_checkpoint_every` entries, many a second; a
# round for each (a signature, a transaction in a thread, a repair query) took
# 4-7 % of a serving worker's samples (py-spy, warm report under wrk).
WAKE_GAP_S = 1.0


class Sealer:
    def __init__(
        self,
        engine: Engine,
        keys: KeyRingHolder,
        witness: Witness,
        *,
        every: int,
        seal_s: float,
        pinned_path: Path,
    ) -> None:
        self.engine, self.keys, self.witness = engine, keys, witness
        self.every, self.seal_s, self.pinned_path = every, seal_s, pinned_path
        self.head: tuple[int, str] | None = None
        # Whether this process exports: with a lease, only while it holds it; a
        # process running no background work (XYD_RUN_BACKGROUND=false) never does.
        self.exports = True
        self.lease: Lease | None = None
        self._sealed = 0
        self._repaired = 0  # the seq below which the last round looked for missing intervals
        self._pinned: set[str] = set()
        self._wake = asyncio.Event()

    @classmethod
    def configured(cls, settings: Settings, engine: Engine, keys: KeyRingHolder) -> Sealer:
        return cls(
            engine,
            keys,
            open_witness(settings.audit_witness_target),
            every=settings.audit_checkpoint_every,
            seal_s=settings.audit_seal_s,
            pinned_path=pinned.path_of(settings),
        )

    def wrote(self, head: tuple[int, str], signed: list[Checkpoint]) -> None:
        """A batch committed: its last entry, and the checkpoints signed in it."""
        if self.head is None or head[0] > self.head[0]:
            self.head = head
        if signed:
            self._wake.set()

    def pin(self, signer: LoadedKey) -> None:
        """Pin `signer` before its first checkpoint (once per key and process)."""
        if signer.kid not in self._pinned:
            pinned.pin(self.pinned_path, [signer])
            self._pinned.add(signer.kid)

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        gap = min(WAKE_GAP_S, self.seal_s)
        last = loop.time() - gap
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.seal_s)
            # Checkpoints signed meanwhile wait for the gap's end: one round seals them all.
            await asyncio.sleep(max(0.0, last + gap - loop.time()))
            last = loop.time()
            self._wake.clear()
            try:
                await self.round()
            except Exception:  # the loop must outlive a bad round (witness or database away)
                log.exception("audit sealing round failed")

    async def last_round(self) -> None:
        """On a clean stop: the head this process wrote, signed and exported."""
        try:
            await self.round()
        except Exception:  # stopping anyway: the next process to write covers it
            log.warning("could not seal the audit head on stopping", exc_info=True)

    async def round(self) -> None:
        head = self.head
        if head is not None and head[0] != self._sealed:
            signer = (await self.keys.current()).signing_key("audit", datetime.now(UTC))
            self.pin(signer)
            seal = checkpoints.sign(head[0], head[1], signer)
            await asyncio.to_thread(self._store, seal, signer)
            self._sealed = head[0]
        if self.exporting:
            await asyncio.to_thread(self.export_stored)

    @property
    def exporting(self) -> bool:
        return self.exports and (self.lease is None or self.lease.held)

    def export_stored(self) -> int:
        """Every stored checkpoint not yet exported, to the witness, oldest first."""
        exported = 0
        while True:
            with self.engine.connect() as conn:
                batch = repository.unexported_checkpoints(conn, EXPORT_BATCH)
            if not batch:
                return exported
            self.witness.export(batch)
            with self.engine.begin() as conn:
                if self.lease is not None:
                    self.lease.fence(conn)
                repository.mark_exported(conn, [c.seq for c in batch], datetime.now(UTC))
            exported += len(batch)
            if len(batch) < EXPORT_BATCH:
                return exported

    def _store(self, seal: Checkpoint, signer: LoadedKey) -> list[Checkpoint]:
        """Store the head's seal, and every interval checkpoint missing below it.

        A writer signs an interval's checkpoint in a second statement after its
        entries commit: a stop, or the database failing over, in between leaves
        it missing, and the writers go on past it. Each round looks again from
        a little below where the last one ended (a writer may still be about to
        store its own: the same row, kept once), at most REPAIR_WINDOW
        intervals back on a process's first round."""
        low = max(self.every, self._repaired - 2 * self.every)
        if self._repaired == 0:
            low = max(low, seal.seq - REPAIR_WINDOW * self.every)
        with self.engine.begin() as conn:
            missing = repository.missing_checkpoints(conn, low, seal.seq, self.every)
            made = [checkpoints.sign(seq, head, signer) for seq, head in missing]
            made.append(seal)
            repository.store_checkpoints(conn, made)
        self._repaired = seal.seq
        return made
