"""The cyclic garbage collector, set for a long-lived serving worker.

Measured on one worker under wrk (the report path, Bearer, 32 connections):

- A full collection walked the ~165,000 objects of the imported gateway
  (FastAPI, pydantic, SQLAlchemy, our schemas) for 180 to 220 ms of CPU, once
  every 10 to 15 s. Every request in flight waited for it: that pause alone
  was the open-loop p99. Frozen after start-up, those objects are never
  walked again, and a full collection took 3 to 4 ms.
- A young collection ran every 25 or so requests (the default threshold of
  700 allocations) and walked the objects of the ~32 requests in flight:
  0.5 ms of CPU each, about 20 µs a request, and it found no garbage, since
  a request's objects are freed by reference counting when it ends. At a
  threshold of 7,000 the count never got there in a 15 s run.

Only `xyd serve` does this (`create_app(settle_heap=True)`): a test process
starts hundreds of apps, and freezing each one's objects would keep them all.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect what start-up left, freeze the rest, and collect the young less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
