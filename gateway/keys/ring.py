"""The process's key ring: every purpose's keys loaded at start-up, refreshed
off the request path, and re-read at once when a token names a kid it lacks."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import FIXED_ALG, PURPOSES, KeyRing, SigningAlg, ensure_key, load_ring
from gateway.settings import Settings

log = logging.getLogger("xyd.identity")

_UNKNOWN_KID_RELOAD_S = 5.0


class KeyRingHolder:
    """The process's key ring, re-read every `refresh_s` and on an unknown kid."""

    def __init__(
        self, engine: AsyncEngine, kek: bytes, refresh_s: float, settings: Settings
    ) -> None:
        self.engine, self.kek, self.refresh_s = engine, kek, refresh_s
        self.alg: SigningAlg = settings.access_token_alg
        self.ring = KeyRing()
        self.loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def reload(self) -> KeyRing:
        async with self._lock:
            async with self.engine.begin() as conn:
                # Every purpose needs a key usable now; the first process to
                # start (or the first after a wipe) makes them.
                for purpose in PURPOSES:
                    alg = FIXED_ALG.get(purpose, self.alg)
                    await conn.run_sync(ensure_key, self.kek, purpose, alg)
                self.ring = await conn.run_sync(load_ring, self.kek)
            self.loaded_at = time.monotonic()
        return self.ring

    async def current(self) -> KeyRing:
        # The refresher task keeps the ring fresh; a request reloads only when
        # it has fallen far behind (refresher dead, database was down at start).
        if time.monotonic() - self.loaded_at > 2 * self.refresh_s:
            await self.reload()
        return self.ring

    async def refresh_forever(self) -> None:
        """Re-read the keys every `refresh_s`, off the request path."""
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.reload()
            except Exception:  # a database blip: keep the ring we have, try again
                log.warning("could not refresh signing keys", exc_info=True)

    async def after_unknown_kid(self) -> KeyRing:
        if time.monotonic() - self.loaded_at > _UNKNOWN_KID_RELOAD_S:
            await self.reload()
        return self.ring
