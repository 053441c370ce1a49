"""Generate one chunk of demo enterprises and their records as table rows.

Pure and deterministic: chunk k of seed s is always the same rows, whichever
process makes it. Record `data` has the shape ingestion stores (the schemas'
`normalise()`), so reports and rules cannot tell seeded from ingested data.
"""

from __future__ import annotations

from collections import Counter

from xyd_demo import activity, registration
from xyd_demo.base import (
    ENTERPRISE_COLS,
    LICENSE_COLS,
    PENALTY_COLS,
    PROFILES,
    RECORD_COLS,
    VERSION_COLS,
    Chunk,
    Enterprise,
    Spec,
    legal_representative,
)

__all__ = [
    "ENTERPRISE_COLS",
    "LICENSE_COLS",
    "PENALTY_COLS",
    "PROFILES",
    "RECORD_COLS",
    "VERSION_COLS",
    "Chunk",
    "Spec",
    "legal_representative",
    "make_chunk",
]


def make_chunk(spec: Spec, start: int, count: int, samples_per_profile: int) -> Chunk:
    """Enterprises start .. start+count-1 with all their records."""
    chunk = Chunk()
    sampled: Counter[str] = Counter()
    for index in range(start, start + count):
        enterprise = Enterprise(chunk, spec, index)
        registration.register(enterprise)
        activity.periodic(enterprise)
        activity.history(enterprise)
        if sampled[enterprise.profile] < samples_per_profile:
            sampled[enterprise.profile] += 1
            chunk.samples.append((enterprise.code, enterprise.name, enterprise.profile))
    return chunk
