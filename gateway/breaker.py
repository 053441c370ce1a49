"""A circuit breaker for calls to a dependency that may go away (Redis, platforms).

Closed: calls go through. After `failures` consecutive failures it opens for
`open_s` seconds, during which callers skip the dependency at once instead of
each waiting for a timeout. Then one trial call is let through (half-open):
success closes it, failure opens it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("xyd.breaker")


@dataclass
class CircuitBreaker:
    name: str
    failures: int = 3
    open_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _failed: int = field(default=0, init=False)
    _open_until: float = field(default=0.0, init=False)
    _trial_running: bool = field(default=False, init=False)

    @property
    def is_open(self) -> bool:
        return self._failed >= self.failures

    def allow(self) -> bool:
        """May a call go to the dependency now?"""
        if not self.is_open:
            return True
        if self.clock() < self._open_until or self._trial_running:
            return False
        self._trial_running = True
        return True

    def retry_after_s(self) -> float:
        return max(0.0, self._open_until - self.clock())

    def success(self) -> None:
        if self.is_open:
            log.warning("%s reachable again; circuit closed", self.name)
        self._failed = 0
        self._trial_running = False

    def failure(self) -> None:
        self._failed += 1
        self._trial_running = False
        if self._failed >= self.failures:
            if self._failed == self.failures:
                log.error("%s unreachable %d times; circuit open", self.name, self._failed)
            self._open_until = self.clock() + self.open_s
