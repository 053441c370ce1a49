"""Appending to and verifying the audit hash chain.

Each entry holds the SHA-256 of the previous entry (its `prev_hash`), and its
own hash covers every field including `seq` and `prev_hash`. Editing an entry
breaks its hash; deleting or reordering breaks the links. Rewriting the chain
whole to hide that (from genesis, with the head row moved to match) is caught
by the signed checkpoints: a JWS over `{seq, head, at}` with a gateway key at
every multiple of N entries (`verify` wants each one up to the head, only the
last may be missing after a crash) and of the head itself every few seconds
(`sealer.py`), verified only with keys pinned outside the store
(`pinned.py`), and exported to a witness outside it (`witness.py`), which
`verify` compares the chain with: a wipe, a truncation or a rewrite of
anything at or before the last exported checkpoint is a break.

Appends take the head row's write lock first (UPDATE … RETURNING), so any
number of writers produce gap-free, unique sequence numbers on PostgreSQL
and SQLite alike. The caller's transaction commits entries and head together;
a batch of entries reserves its numbers in one update. On PostgreSQL the
database links them itself (`audit_append`, migration 0014, one round trip a
batch) as `entry_hash` does; `verify` recomputes every hash here either way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from sqlalchemy import Connection, Engine, select

from gateway.audit import checkpoints
from gateway.audit import kept as kept_reports
from gateway.audit.checkpoints import Checkpoint
from gateway.audit.kept import KeptReport
from gateway.db import Held
from gateway.keys import jose
from gateway.keys.store import LoadedKey
from gateway.logs import request_id_var
from gateway.store import copytext
from gateway.store.bulk import copy_text
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head

GENESIS = "0" * 64
HASHED = (
    "seq", "at", "client_id", "credit_code", "consent_id", "purpose", "route", "decision",
    "reason", "response_sha256", "request_id", "prev_hash",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One decision on protected data, allowed or denied."""

    client_id: str
    route: str
    decision: str  # allow | deny | error (admitted, then failed: a 5xx)
    reason: str | None = None
    credit_code: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    response_sha256: str | None = None
    # The request being answered, when there is one.
    request_id: str | None = field(default_factory=request_id_var.get)
    # The report the answer was, kept with the entry (not hashed: the entry's
    # `response_sha256` already binds the bytes sent).
    kept: KeptReport | None = None


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    # edited | missing | relinked | truncated | bad_checkpoint | unsigned | rewritten | wiped
    kind: str
    detail: str


def entry_hash(entry: dict[str, Any]) -> str:
    canonical = orjson.dumps(
        {name: entry.get(name) for name in HASHED}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


# Driver-level SQL: this runs for every answered request (batched), and SQLAlchemy's
# statement handling cost several times the round trips themselves (measured).
#
# On SQLite the numbers are reserved under the head row's lock (the UPDATE …
# RETURNING), the entries linked here and inserted one statement each, and the
# head moved to the last of them.
_RESERVE = "UPDATE audit_head SET seq = seq + :n WHERE id = 1 RETURNING seq, entry_hash"
_ADVANCE = "UPDATE audit_head SET entry_hash = :entry_hash WHERE id = 1"
_INSERT_SQLITE = (
    "INSERT INTO audit_entries (seq, at, client_id, credit_code, consent_id, purpose, route,"
    " decision, reason, response_sha256, request_id, prev_hash, entry_hash)"
    " VALUES (:seq, :at, :client_id, :credit_code, :consent_id, :purpose, :route,"
    " :decision, :reason, :response_sha256, :request_id, :prev_hash, :entry_hash)"
)
# On PostgreSQL one statement does all that (`audit_append`, migration 0014) over
# the batch as one JSON value: a batch is one round trip, the statements inside
# it planned once a session.
_APPEND_PG = "SELECT out_seq, out_hash FROM audit_append(%(batch)s::json)"
# A sealer may sign the same interval first (it repairs one whose writer lost
# the database between the entries and this statement): same seq, same head.
_CHECKPOINT = (
    "INSERT INTO audit_checkpoints (seq, entry_hash, signed) VALUES (:seq, :entry_hash, :signed)"
    " ON CONFLICT (seq) DO NOTHING"
)
_CHECKPOINT_PG = re.sub(r":(\w+)", r"%(\1)s", _CHECKPOINT)  # psycopg's placeholders
# A big batch on PostgreSQL (a records batch: one entry a line) is reserved and
# linked as on SQLite and written with COPY: `audit_append`'s loop of one INSERT
# an entry cost the server about 16 µs a line (docs/performance.md).
COPY_FROM = 64
_RESERVE_PG = re.sub(r":(\w+)", r"%(\1)s", _RESERVE)
_ADVANCE_PG = re.sub(r":(\w+)", r"%(\1)s", _ADVANCE)
_COLUMNS = (*HASHED, "entry_hash")


@dataclass(frozen=True, slots=True)
class Appended:
    """A batch as linked: each entry's (seq, hash), and the checkpoints due in it."""

    entries: list[tuple[int, str]]
    checkpoints: list[Checkpoint]

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.entries]


def append(
    conn: Connection,
    event: AuditEvent,
    *,
    signer: LoadedKey | None = None,
    checkpoint_every: int = 100,
) -> int:
    """Append `event`; return its sequence number. Commits with the caller's transaction."""
    return append_many(conn, [event], signer=signer, checkpoint_every=checkpoint_every)[0]


def append_many(
    conn: Connection,
    events: Sequence[AuditEvent],
    *,
    signer: LoadedKey | None = None,
    checkpoint_every: int = 100,
    cuts: dict[str, bytes] | None = None,
) -> list[int]:
    """`append_linked`'s sequence numbers."""
    return append_linked(
        conn, events, signer=signer, checkpoint_every=checkpoint_every, cuts=cuts
    ).seqs


def append_linked(
    conn: Connection,
    events: Sequence[AuditEvent],
    *,
    signer: LoadedKey | None = None,
    checkpoint_every: int = 100,
    cuts: dict[str, bytes] | None = None,
) -> Appended:
    """Append `events` in order, each linked to the one before. One head update
    reserves them all, so a batch holds the head's lock once. Reports kept with
    them are stored too, with `cuts` (default: every one they cite), and the
    checkpoints due, all in the caller's transaction."""
    if not events:
        return Appended([], [])
    on_pg = conn.dialect.name == "postgresql"
    if on_pg and len(events) >= COPY_FROM:
        head = conn.exec_driver_sql(_RESERVE_PG, {"n": len(events)}).one()
        rows = _linked(events, int(head.seq), head.entry_hash)
        lines = "".join(copytext.line(row[name] for name in _COLUMNS) for row in rows)
        copy_text(conn, "audit_entries", _COLUMNS, lines.encode())
        conn.exec_driver_sql(_ADVANCE_PG, {"entry_hash": rows[-1]["entry_hash"]})
        entries = [(row["seq"], row["entry_hash"]) for row in rows]
    elif on_pg:
        linked = conn.exec_driver_sql(_APPEND_PG, {"batch": _batch(events)}).all()
        entries = [(int(seq), str(hashed)) for seq, hashed in linked]
    else:
        # The update takes the head's lock and reserves the numbers; RETURNING
        # reads the head under that lock in the same round trip.
        head = conn.exec_driver_sql(_RESERVE, {"n": len(events)}).one()
        rows = _linked(events, int(head.seq), head.entry_hash)
        conn.exec_driver_sql(_INSERT_SQLITE, rows)
        conn.exec_driver_sql(_ADVANCE, {"entry_hash": rows[-1]["entry_hash"]})
        entries = [(row["seq"], row["entry_hash"]) for row in rows]
    kept = _kept(events)
    kept_reports.store(conn, kept, {k.cut_sha256: k.cut for k in kept} if cuts is None else cuts)
    due = _checkpoints(entries, signer, checkpoint_every)
    if due:
        conn.exec_driver_sql(_CHECKPOINT_PG if on_pg else _CHECKPOINT, _rows(due))
    return Appended(entries, due)


async def append_many_committed_pg(
    pg: AsyncConnection[TupleRow],
    events: Sequence[AuditEvent],
    *,
    signer: LoadedKey | None = None,
    checkpoint_every: int = 100,
    cuts: dict[str, bytes] | None = None,
) -> list[int]:
    """`append_linked_pg`'s sequence numbers."""
    done = await append_linked_pg(
        pg, events, signer=signer, checkpoint_every=checkpoint_every, cuts=cuts
    )
    return done.seqs


async def append_linked_pg(
    pg: AsyncConnection[TupleRow],
    events: Sequence[AuditEvent],
    *,
    signer: LoadedKey | None = None,
    checkpoint_every: int = 100,
    cuts: dict[str, bytes] | None = None,
) -> Appended:
    """`append_linked` on psycopg's asyncio connection in autocommit mode, committed
    when it returns: one statement, `audit_append`, reserves the numbers under
    the head row's lock, links and stores the entries and moves the head, all
    in its own transaction; a failure leaves nothing.

    It runs for every answered request (batched). A batch of one cost 820 µs of
    gateway CPU and 560 µs of PostgreSQL's in pipeline mode (a reservation, then
    the entries), 450 and 360 as two simple-protocol messages, and 200 to 300
    and 200 to 310 this way (with its value bound or quoted into the text alike).

    A checkpoint due in the batch is signed here once the entries have
    committed, and stored in a second statement. Should the process stop in
    between (or the database fails over), that checkpoint is missing: `verify`
    lets the last checkpoint be missing, and the sealers sign any missing one
    below their heads on their next round.

    Reports kept with the events, and `cuts` (default: every one they cite),
    are stored by the same statement (`kept.pg_statement`)."""
    if not events:
        return Appended([], [])
    if not pg.autocommit:
        raise ValueError("audit_append commits by itself: use an autocommit connection")
    kept = _kept(events)
    if kept:
        new = {k.cut_sha256: k.cut for k in kept} if cuts is None else cuts
        statement, params = kept_reports.pg_statement(kept, new)
        params["batch"] = _batch(events)
    else:
        statement, params = _APPEND_PG, {"batch": _batch(events)}
    async with pg.cursor() as cursor:
        await cursor.execute(statement, params)
        entries = [(int(seq), str(hashed)) for seq, hashed in await cursor.fetchall()]
        due = _checkpoints(entries, signer, checkpoint_every)
        if due:
            await cursor.executemany(_CHECKPOINT_PG, _rows(due))
    return Appended(entries, due)


class CommittedAppends:
    """Batches appended and committed before `append` returns, whatever the store:
    on PostgreSQL (picked once, here) `append_linked_pg` on a held autocommit
    connection, one round trip, the speed path;
    elsewhere `append_linked` in a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self._held = Held(engine)

    async def append(
        self,
        events: Sequence[AuditEvent],
        *,
        signer: LoadedKey | None = None,
        checkpoint_every: int = 100,
        cuts: dict[str, bytes] | None = None,
    ) -> Appended:
        def elsewhere(conn: Connection) -> Appended:
            with conn.begin():
                return append_linked(
                    conn, events, signer=signer, checkpoint_every=checkpoint_every, cuts=cuts
                )

        return await self._held.run(
            lambda pg: append_linked_pg(
                pg, events, signer=signer, checkpoint_every=checkpoint_every, cuts=cuts
            ),
            elsewhere,
        )

    async def close(self) -> None:
        await self._held.close()


def _kept(events: Sequence[AuditEvent]) -> list[KeptReport]:
    return [event.kept for event in events if event.kept is not None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _batch(events: Sequence[AuditEvent]) -> str:
    """`audit_append`'s argument: the entries' own fields, as a JSON array."""
    at = _now()
    return orjson.dumps([_fields(event, at) for event in events]).decode()


def _fields(event: AuditEvent, at: str) -> dict[str, Any]:
    """An entry's own fields: all but its place in the chain (seq, prev_hash, entry_hash)."""
    return {
        "at": at,
        "client_id": event.client_id,
        "credit_code": event.credit_code,
        "consent_id": event.consent_id,
        "purpose": event.purpose,
        "route": event.route,
        "decision": event.decision,
        "reason": event.reason,
        "response_sha256": event.response_sha256,
        "request_id": event.request_id,
    }


def _linked(events: Sequence[AuditEvent], head_seq: int, head_hash: str) -> list[dict[str, Any]]:
    """The entries for `events` after a reservation that moved the head to `head_seq`."""
    at = _now()
    previous, first = head_hash, head_seq - len(events) + 1
    entries: list[dict[str, Any]] = []
    for seq, event in enumerate(events, start=first):
        entry = {"seq": seq, **_fields(event, at), "prev_hash": previous}
        entry["entry_hash"] = previous = entry_hash(entry)
        entries.append(entry)
    return entries


def _checkpoints(
    entries: list[tuple[int, str]], signer: LoadedKey | None, every: int
) -> list[Checkpoint]:
    """The checkpoints due among `entries` (none without a signer)."""
    if signer is None:
        return []
    return [checkpoints.sign(seq, hashed, signer) for seq, hashed in entries if seq % every == 0]


def _rows(due: Sequence[Checkpoint]) -> list[dict[str, Any]]:
    return [{"seq": c.seq, "entry_hash": c.head, "signed": c.signed} for c in due]


def verify(
    conn: Connection,
    keys: dict[str, jose.PublicKey],
    *,
    every: int = 100,
    witnessed: Sequence[Checkpoint] = (),
) -> tuple[int, list[Break]]:
    """Walk the chain and its checkpoints; return (entries seen, breaks in sequence
    order). `keys` are the ones trusted (pinned, never the store's own list); a
    checkpoint is due at every multiple of `every` up to the head, the last
    excepted; each of `witnessed` (read from the witness) must name the hash the
    chain has at its seq."""
    breaks: list[Break] = []
    hashes: dict[int, str] = {}
    expected, previous, count = 1, GENESIS, 0
    for row in conn.execute(select(audit_entries).order_by(audit_entries.c.seq)):
        entry = row._asdict()
        count += 1
        if entry["seq"] != expected:
            breaks.append(
                Break(expected, "missing", f"entries {expected}..{entry['seq'] - 1} absent")
            )
        if entry_hash(entry) != entry["entry_hash"]:
            breaks.append(Break(entry["seq"], "edited", "entry does not match its hash"))
        elif entry["prev_hash"] != previous:
            breaks.append(Break(entry["seq"], "relinked", "does not follow the entry before it"))
        hashes[entry["seq"]] = entry["entry_hash"]
        previous, expected = entry["entry_hash"], entry["seq"] + 1
    end = expected - 1
    # The witness's verdict first: at a seq with several breaks, it is the one
    # the store's owner cannot have arranged.
    breaks.extend(_against_witness(witnessed, hashes, end))
    signed, found = _check_checkpoints(conn, keys, hashes)
    breaks.extend(found)
    breaks.extend(_unsigned(signed | {b.seq for b in found}, end, every))
    head = conn.execute(select(audit_head.c.seq, audit_head.c.entry_hash)).one()
    if head.seq != end or (head.seq and hashes.get(head.seq) != head.entry_hash):
        breaks.append(Break(expected, "truncated", f"head says {head.seq}, chain ends at {end}"))
    return count, sorted(breaks, key=lambda b: b.seq)


def _check_checkpoints(
    conn: Connection, keys: dict[str, jose.PublicKey], hashes: dict[int, str]
) -> tuple[set[int], list[Break]]:
    """The seqs of the checkpoints that hold (signed by a trusted key, naming the
    chain's hash), and a break for each one that does not."""
    good: set[int] = set()
    found = []
    for row in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)):
        try:
            claims = checkpoints.signed_claims(row.signed, keys)
        except jose.JoseError as exc:
            found.append(Break(row.seq, "bad_checkpoint", str(exc)))
            continue
        if claims.get("seq") != row.seq or claims.get("head") != row.entry_hash:
            found.append(Break(row.seq, "bad_checkpoint", "row differs from what was signed"))
        elif row.seq not in hashes:
            found.append(Break(row.seq, "truncated", "a signed checkpoint names a missing entry"))
        elif hashes[row.seq] != row.entry_hash:
            found.append(Break(row.seq, "edited", "entry differs from the signed checkpoint"))
        else:
            good.add(row.seq)
    return good, found


def _unsigned(signed: set[int], end: int, every: int) -> list[Break]:
    """A break at each multiple of `every` below the last one up to `end` that has
    no checkpoint: a process stopping between an entry and its checkpoint leaves
    only the last one missing (and the next process to write signs it)."""
    last = end - end % every
    return [
        Break(seq, "unsigned", f"no signed checkpoint at seq {seq} (one is due every {every})")
        for seq in range(every, last, every)
        if seq not in signed
    ]


def _against_witness(
    witnessed: Sequence[Checkpoint], hashes: dict[int, str], end: int
) -> list[Break]:
    """The first checkpoint exported to the witness that the chain no longer
    matches: a wipe, a cut or a rewrite at or before it."""
    matched = 0
    for checkpoint in sorted(witnessed, key=lambda c: c.seq):
        if checkpoint.seq > end:
            kind = "wiped" if not hashes else "truncated"
            detail = (
                f"the store ends at seq {end}, but the witness holds a checkpoint "
                f"signed at seq {checkpoint.seq}"
            )
            return [Break(end + 1, kind, detail)]
        if hashes.get(checkpoint.seq) != checkpoint.head:
            detail = (
                f"the chain at seq {checkpoint.seq} is not the one exported to the witness: "
                f"an entry after seq {matched}, up to {checkpoint.seq}, was changed, "
                "removed, added or moved"
            )
            return [Break(checkpoint.seq, "rewritten", detail)]
        matched = checkpoint.seq
    return []


def checkpoint_keys(conn: Connection) -> dict[str, jose.PublicKey]:
    """Public parts of every audit key the store lists. Not a trust anchor: whoever
    can write the store can add one (`xyd audit verify` trusts `pinned.trusted`);
    tests of the chain's own mechanics use it."""
    from gateway.store.tables import signing_keys

    rows = conn.execute(
        select(signing_keys.c.kid, signing_keys.c.public_jwk).where(
            signing_keys.c.purpose == "audit"
        )
    )
    return {row.kid: jose.public_key_from_jwk(row.public_jwk) for row in rows}
