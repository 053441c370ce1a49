"""Ingest a posted NDJSON batch: the same Ingestor as `xyd ingest`, per-line results."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field
from sqlalchemy import Engine

from gateway.apidocs import Doc, sometimes
from gateway.idempotency import Replay, begin, finish, release, request_digest
from gateway.pii_keys import KeyRing
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, LineOutcome, OutcomeName


class LineResult(Doc):
    line: int = Field(ge=1)
    outcome: OutcomeName
    record_id: str = sometimes("The department's record id, when the line named one")
    version: int = sometimes("The version stored (accepted, updated, duplicate)")
    reason: str = sometimes("Why the line was rejected")


class Counts(Doc):
    accepted: int
    updated: int
    duplicate: int
    rejected: int


class IngestAnswer(Doc):
    """What POST /v1/records/{category} answers (documentation): `ingest_batch`'s members."""

    category: str
    run_id: str
    summary: Counts
    results: list[LineResult] = Field(description="One per line, in line order")


def ingest_batch(
    engine: Engine,
    pii_key: bytes,
    batch_size: int,
    category: str,
    body: bytes,
    keys: KeyRing | None = None,
) -> dict[str, Any]:
    outcomes: list[LineOutcome] = []
    ingestor = Ingestor(engine, category, pii_key, batch_size, keys=keys)
    summary = ingestor.run(read_ndjson(body.splitlines()), source="api", on_outcome=outcomes.append)
    return {
        "category": category,
        "run_id": summary.run_id,
        "summary": {
            name: summary.counts[name] for name in ("accepted", "updated", "duplicate", "rejected")
        },
        "results": [
            {
                "line": o.line,
                "outcome": o.outcome,
                **({"record_id": o.record_id} if o.record_id else {}),
                **({"version": o.version} if o.version else {}),
                **({"reason": o.reason} if o.reason else {}),
            }
            for o in outcomes
        ],
    }


def ingest_idempotently(
    engine: Engine,
    pii_key: bytes,
    batch_size: int,
    *,
    client_id: str,
    key: str | None,
    category: str,
    path: str,
    body: bytes,
    keys: KeyRing | None = None,
) -> tuple[int, bytes, bool]:
    """(status, body, replayed). Runs in a worker thread: all of it is blocking I/O."""
    if key is None:
        answer = orjson.dumps(ingest_batch(engine, pii_key, batch_size, category, body, keys))
        return 200, answer, False
    with engine.begin() as conn:
        replay = begin(conn, client_id, key, request_digest("POST", path, body))
    if isinstance(replay, Replay):
        return replay.status_code, replay.body, True
    try:
        answer = orjson.dumps(ingest_batch(engine, pii_key, batch_size, category, body, keys))
    except BaseException:
        with engine.begin() as conn:
            release(conn, client_id, key)
        raise
    with engine.begin() as conn:
        finish(conn, client_id, key, 200, answer)
    return 200, answer, False
