"""Ingest a posted NDJSON batch: the same Ingestor as `xyd ingest`, per-line results."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine

from gateway.idempotency import Replay, begin, finish, release, request_digest
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, LineOutcome


def ingest_batch(
    engine: Engine, pii_key: bytes, batch_size: int, category: str, body: bytes
) -> dict[str, Any]:
    outcomes: list[LineOutcome] = []
    ingestor = Ingestor(engine, category, pii_key, batch_size)
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
) -> tuple[int, bytes, bool]:
    """(status, body, replayed). Runs in a worker thread: all of it is blocking I/O."""
    if key is None:
        return 200, orjson.dumps(ingest_batch(engine, pii_key, batch_size, category, body)), False
    with engine.begin() as conn:
        replay = begin(conn, client_id, key, request_digest("POST", path, body))
    if isinstance(replay, Replay):
        return replay.status_code, replay.body, True
    try:
        answer = orjson.dumps(ingest_batch(engine, pii_key, batch_size, category, body))
    except BaseException:
        with engine.begin() as conn:
            release(conn, client_id, key)
        raise
    with engine.begin() as conn:
        finish(conn, client_id, key, 200, answer)
    return 200, answer, False
