"""Off the request path: the head signed, and checkpoints exported to the witness.

The writer tells the sealer, per batch, the last entry it wrote and the
checkpoints it signed (`wrote`: two assignments, nothing more on the hot path).
Every `audit_seal_s`, or at once when a checkpoint was signed, the sealer
- signs the head this process last wrote, when it moved (a checkpoint at an
  arbitrary seq: entries after the last interval checkpoint are covered too),
  and stores it beside the others;
- signs the interval checkpoint at or below it if a stop between an entry's
  commit and its checkpoint left it missing (only the last can be);
- exports everything signed since its last round to the witness, in a thread.
A witness that cannot take them (a file system full, a regulator's endpoint
down) keeps them pending for the next round, logged; the trail itself goes on.
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
from gateway.settings import Settings

log = logging.getLogger("xyd.audit")
MAX_PENDING = 10_000  # a witness down for days: keep the newest, they cover the rest


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
        self.pending: list[Checkpoint] = []
        self._sealed = 0
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
            self.pending.extend(signed)
            self._wake.set()

    def pin(self, signer: LoadedKey) -> None:
        """Pin `signer` before its first checkpoint (once per key and process)."""
        if signer.kid not in self._pinned:
            pinned.pin(self.pinned_path, [signer])
            self._pinned.add(signer.kid)

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.seal_s)
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
            self.pending += await asyncio.to_thread(self._store, seal, signer)
            self._sealed = head[0]
        if self.pending:
            del self.pending[:-MAX_PENDING]
            batch = list(self.pending)
            await asyncio.to_thread(self.witness.export, batch)
            del self.pending[: len(batch)]

    def _store(self, seal: Checkpoint, signer: LoadedKey) -> list[Checkpoint]:
        """Store the head's seal, and the last interval checkpoint if it is missing."""
        made = [seal]
        last = seal.seq - seal.seq % self.every
        with self.engine.begin() as conn:
            head = repository.missing_checkpoint_at(conn, last) if 0 < last < seal.seq else None
            if head is not None:
                made.insert(0, checkpoints.sign(last, head, signer))
            repository.store_checkpoints(conn, made)
        return made
