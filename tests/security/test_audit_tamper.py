"""Issue 19, item 3: the store's owner rewrites the audit trail; `xyd audit verify` says so.

Each attack is done as the store's owner would, with SQL on SQLite and on
PostgreSQL, against a trail the served writer made (group commit, the head
sealed and every checkpoint exported to the witness file by the sealer). The
pinned keys and the witness are outside the store, as they are in production.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, Engine, delete, insert, select, update
from typer.testing import CliRunner

from gateway.audit import checkpoints, pinned, repository
from gateway.audit.chain import GENESIS, AuditEvent, checkpoint_keys, entry_hash, verify
from gateway.audit.sealer import Sealer
from gateway.audit.service import AuditWriter
from gateway.cli import app as cli
from gateway.keys import jose
from gateway.keys.store import KeyRing, LoadedKey, ensure_key, load_ring
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head, signing_keys

EVERY = 5
ENTRIES = 23  # interval checkpoints at 5, 10, 15, 20; the head (23) sealed
ROUTE = "GET /v1/reports/{credit_code}"


class Keys:
    """The key ring holder's one method the writer and the sealer call."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def current(self) -> KeyRing:
        return self.ring


def event(i: int) -> AuditEvent:
    # Every fourth request a bank was refused: what a rewrite would hide.
    decision = "deny" if i % 4 == 1 else "allow"
    return AuditEvent(client_id="bank-a", route=ROUTE, decision=decision,
                      reason="consent_revoked" if decision == "deny" else None,
                      credit_code="91510100MA61R8XX1B", request_id=f"req-{i}")  # fmt: skip


@pytest.fixture
def audited(settings: Settings, engine: Engine) -> Settings:
    settings.audit_checkpoint_every = EVERY
    return settings


def ring_of(engine: Engine, settings: Settings) -> KeyRing:
    with engine.begin() as conn:
        ensure_key(conn, settings.kek_bytes(), "audit", "ES256")
        return load_ring(conn, settings.kek_bytes())


async def write(engine: Engine, settings: Settings, events: list[AuditEvent]) -> Sealer:
    """`events` through the served writer, then one sealing round (as every few seconds)."""
    keys = Keys(ring_of(engine, settings))
    sealer = Sealer.configured(settings, engine, keys)  # type: ignore[arg-type]
    writer = AuditWriter(engine, keys, checkpoint_every=EVERY, sealer=sealer)  # type: ignore[arg-type]
    try:
        for e in events:
            await writer.append(e)
        await sealer.round()
    finally:
        await writer.close()
    return sealer


@pytest.fixture
async def trail(audited: Settings, engine: Engine) -> Settings:
    await write(engine, audited, [event(i) for i in range(ENTRIES)])
    return audited


def run_verify(settings: Settings, *extra: str) -> tuple[int, str]:
    env = {
        "XYD_STATE_DIR": str(settings.state_dir),
        "XYD_DATABASE_URL": settings.effective_database_url,
        "XYD_AUDIT_CHECKPOINT_EVERY": str(EVERY),
        "XYD_PII_KEY": "test-pii-key",
    }
    done = CliRunner().invoke(cli, ["audit", "verify", *extra], env=env)
    return done.exit_code, done.output  # stdout and stderr as a terminal shows them


# --- what the store's owner does ---------------------------------------------------


def entries(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit_entries).order_by(audit_entries.c.seq))
    return [row._asdict() for row in rows]


def relink(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Replace the chain with `rows`, numbered from 1 and linked from genesis, the
    head row moved to match: every hash in the store is right again."""
    previous = GENESIS
    for seq, row in enumerate(rows, start=1):
        row.update(seq=seq, prev_hash=previous)
        row["entry_hash"] = previous = entry_hash(row)
    conn.execute(delete(audit_entries))
    if rows:
        conn.execute(insert(audit_entries), rows)
    conn.execute(update(audit_head).values(seq=len(rows), entry_hash=previous))


def without_denials(conn: Connection) -> None:
    relink(conn, [row for row in entries(conn) if row["decision"] != "deny"])


def relinked_from_genesis_without_checkpoints(conn: Connection) -> None:
    without_denials(conn)
    conn.execute(delete(audit_checkpoints))


def attacker_key_re_signs_every_checkpoint(conn: Connection) -> None:
    """A key of the attacker's own in `signing_keys`, every checkpoint re-signed with it."""
    without_denials(conn)
    attacker = LoadedKey(
        kid="aud-attacker", purpose="audit", alg="ES256", public=None,  # type: ignore[arg-type]
        private=jose.private_key_from_jwk(ATTACKER_JWK), public_jwk={},
        not_before=datetime.now(UTC), retire_after=None,
    )  # fmt: skip
    conn.execute(
        insert(signing_keys).values(
            kid=attacker.kid, purpose="audit", alg="ES256",
            public_jwk=jose.public_jwk(attacker.private), private_encrypted=b"\0" * 60,
            created_at=datetime.now(UTC), not_before=datetime.now(UTC),
        )
    )  # fmt: skip
    conn.execute(delete(audit_checkpoints))
    chain = entries(conn)
    due = [row for row in chain if row["seq"] % EVERY == 0 or row is chain[-1]]
    signed = [checkpoints.sign(row["seq"], row["entry_hash"], attacker) for row in due]
    conn.execute(
        insert(audit_checkpoints),
        [{"seq": c.seq, "entry_hash": c.head, "signed": c.signed} for c in signed],
    )


def wiped(conn: Connection) -> None:
    conn.execute(delete(audit_entries))
    conn.execute(delete(audit_checkpoints))
    conn.execute(update(audit_head).values(seq=0, entry_hash=GENESIS))


def truncated_after_the_last_checkpoint(conn: Connection) -> None:
    last = conn.execute(select(audit_entries.c.entry_hash).where(audit_entries.c.seq == 20))
    conn.execute(delete(audit_entries).where(audit_entries.c.seq > 20))
    conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq > 20))
    conn.execute(update(audit_head).values(seq=20, entry_hash=last.scalar_one()))


def edited_after_the_last_checkpoint(conn: Connection) -> None:
    rows = entries(conn)
    rows[21]["decision"], rows[21]["reason"] = "allow", None  # entry 22, a denial
    relink(conn, rows)
    conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq > 20))


def reordered(conn: Connection) -> None:
    rows = entries(conn)
    rows[7], rows[8] = rows[8], rows[7]  # entries 8 and 9
    relink(conn, rows)
    conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq >= 8))


def inserted(conn: Connection) -> None:
    rows = entries(conn)
    forged = {**rows[1], "client_id": "bank-b", "request_id": "forged"}
    relink(conn, [rows[0], rows[1], forged, *rows[2:]])
    conn.execute(delete(audit_checkpoints))


def deleted_one_denial(conn: Connection) -> None:
    rows = entries(conn)
    del rows[1]  # entry 2, the first denial
    relink(conn, rows)
    conn.execute(delete(audit_checkpoints))


ATTACKER_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
    "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
    "d": "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE",
}  # fmt: skip  (RFC 7517 appendix A.2's example key: the attacker's own)

# The attack, and where and how `verify` with the witness must say it broke.
ATTACKS: dict[str, tuple[Callable[[Connection], None], int, str]] = {
    "relinked_from_genesis_without_checkpoints": (
        relinked_from_genesis_without_checkpoints, 5, "rewritten"),
    "attacker_key_re_signs_every_checkpoint": (
        attacker_key_re_signs_every_checkpoint, 5, "rewritten"),
    "wiped": (wiped, 1, "wiped"),
    "truncated_after_the_last_checkpoint": (truncated_after_the_last_checkpoint, 21, "truncated"),
    "edited_after_the_last_checkpoint": (edited_after_the_last_checkpoint, 23, "rewritten"),
    "reordered": (reordered, 10, "rewritten"),
    "inserted": (inserted, 5, "rewritten"),
    "deleted_one_denial": (deleted_one_denial, 5, "rewritten"),
}  # fmt: skip


# --- the tests ------------------------------------------------------------------------


def test_an_untouched_trail_verifies_with_its_witness(trail: Settings) -> None:
    code, said = run_verify(trail)
    assert code == 0, said
    assert f"intact: {ENTRIES} entries" in said
    # Checkpoints 5, 10, 15, 20 and the head's seal (23), exported as made.
    assert "5 checkpoints match, the last at seq 23" in said
    witness = Path(trail.audit_witness_target)
    assert witness.stat().st_mode & 0o777 == 0o600
    assert pinned.path_of(trail).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_rewrite_by_the_stores_owner_is_a_break(
    trail: Settings, engine: Engine, attack: str
) -> None:
    tamper, seq, kind = ATTACKS[attack]
    with engine.begin() as conn:
        tamper(conn)
    code, said = run_verify(trail)
    assert code == 1, said
    assert f"broken at seq {seq}: {kind}:" in said
    # With the witness named explicitly, too.
    code, said = run_verify(trail, "--witness", trail.audit_witness_target)
    assert code == 1 and f"broken at seq {seq}: {kind}:" in said


def test_the_attackers_key_is_in_the_store_but_not_trusted(trail: Settings, engine: Engine) -> None:
    """Trusting the store's own key list (as verify did) lets the attacker's
    re-signed chain pass; the pinned keys do not list it."""
    with engine.begin() as conn:
        attacker_key_re_signs_every_checkpoint(conn)
    with engine.connect() as conn:
        assert verify(conn, checkpoint_keys(conn), every=EVERY) == (ENTRIES - 6, [])
        _, breaks = verify(conn, pinned.trusted(trail), every=EVERY)
    assert {(b.seq, b.kind) for b in breaks} >= {(5, "bad_checkpoint"), (10, "bad_checkpoint")}
    assert "aud-attacker" not in pinned.path_of(trail).read_text()


def test_a_swapped_public_key_in_the_store_is_not_what_gets_pinned(
    audited: Settings, engine: Engine
) -> None:
    """The pinned key is derived from the private part the KEK decrypts, never
    the row's `public_jwk`."""
    ring = ring_of(engine, audited)
    (kid,) = [k.kid for k in ring.keys.values() if k.purpose == "audit"]
    attacker_public = {k: v for k, v in ATTACKER_JWK.items() if k != "d"}
    with engine.begin() as conn:
        conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(public_jwk=attacker_public)
        )
        pinned.pin_store_keys(conn, audited)
    held = orjson.loads(pinned.path_of(audited).read_bytes())["keys"]
    assert [jwk["kid"] for jwk in held] == [kid]
    assert held[0]["x"] != ATTACKER_JWK["x"]


async def test_a_crash_leaving_only_the_last_checkpoint_missing_verifies(
    audited: Settings, engine: Engine
) -> None:
    """The process stops between entry 20's commit and its checkpoint (PostgreSQL
    stores them in two statements): nothing signed it, nothing was exported."""
    await write(engine, audited, [event(i) for i in range(19)])
    with engine.begin() as conn:
        from gateway.audit.chain import append_linked

        append_linked(conn, [event(i) for i in range(19, 22)])  # no signer: the crash
    code, said = run_verify(audited)
    assert code == 0, said
    assert "intact: 22 entries" in said
    # The next process to write signs checkpoint 20 as it seals its head.
    await write(engine, audited, [event(22)])
    with engine.connect() as conn:
        seqs = conn.execute(select(audit_checkpoints.c.seq)).scalars().all()
    assert {5, 10, 15, 19, 20, 23} <= set(seqs)
    code, said = run_verify(audited)
    assert code == 0, said
    assert "the last at seq 23" in said


async def test_a_missing_checkpoint_before_the_last_is_a_break(
    audited: Settings, engine: Engine
) -> None:
    await write(engine, audited, [event(i) for i in range(12)])
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq == 5))
    code, said = run_verify(audited, "--witness", str(audited.state_dir / "elsewhere.jsonl"))
    assert code == 2 and "no witness at" in said
    code, said = run_verify(audited)
    assert code == 1
    assert "broken at seq 5: unsigned: no signed checkpoint at seq 5" in said


def test_an_edited_witness_line_is_refused(trail: Settings) -> None:
    witness = Path(trail.audit_witness_target)
    lines = witness.read_bytes().splitlines()
    record = orjson.loads(lines[1])
    record["seq"] = 6
    lines[1] = orjson.dumps(record)
    witness.write_bytes(b"\n".join(lines) + b"\n")
    code, said = run_verify(trail)
    assert code == 1
    assert "witness" in said and "line 2 does not match its hash" in said


async def test_an_http_witness_gets_each_checkpoint_and_one_it_refused_again(
    audited: Settings, engine: Engine
) -> None:
    """A regulator's endpoint as the witness: each signed checkpoint POSTed as
    `{seq, head, signed}`; refused (a 503), it is kept and sent next round."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict[str, Any]] = []
    answers = iter([503])

    class Regulator(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = next(answers, 201)
            if status == 201:
                received.append(body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """No access log on the test's output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Regulator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    audited.audit_witness = f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
    keys = Keys(ring_of(engine, audited))
    sealer = Sealer.configured(audited, engine, keys)  # type: ignore[arg-type]
    writer = AuditWriter(engine, keys, checkpoint_every=EVERY, sealer=sealer)  # type: ignore[arg-type]
    try:
        for i in range(6):
            await writer.append(event(i))
        with pytest.raises(Exception, match="503"):
            await sealer.round()
        await writer.append(event(6))
        await sealer.round()
    finally:
        server.shutdown()
        await writer.close()
    with engine.connect() as conn:  # nothing left waiting for the witness
        assert repository.unexported_checkpoints(conn, 10) == []
    trusted = pinned.trusted(audited)
    signed = [checkpoints.signed_claims(r["signed"], trusted)["seq"] for r in received]
    assert [r["seq"] for r in received] == signed == [5, 6, 7]


async def test_checkpoints_a_failover_left_missing_behind_the_head_are_signed(
    audited: Settings, engine: Engine
) -> None:
    """The database fails over between a batch's entries and its checkpoint, and
    the writers go on past the gap: the next sealing round signs every interval
    left unsigned, not only the last, and the trail verifies."""
    await write(engine, audited, [event(i) for i in range(4)])
    with engine.begin() as conn:
        from gateway.audit.chain import append_linked

        append_linked(conn, [event(i) for i in range(4, 12)])  # no signer: 5 and 10 unsigned
    code, said = run_verify(audited)
    assert code == 1 and "unsigned: no signed checkpoint at seq 5" in said
    await write(engine, audited, [event(i) for i in range(12, 17)])
    with engine.connect() as conn:
        seqs = set(conn.execute(select(audit_checkpoints.c.seq)).scalars().all())
    assert {5, 10, 15} <= seqs
    code, said = run_verify(audited)
    assert code == 0, said


async def test_a_checkpoint_taken_away_below_the_witness_is_not_signed_again(
    audited: Settings, engine: Engine
) -> None:
    """Only gaps above what the witness holds are repaired: one removed below it
    stays a break, whatever the sealer does next."""
    await write(engine, audited, [event(i) for i in range(12)])
    with engine.begin() as conn:
        conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq == 5))
    await write(engine, audited, [event(i) for i in range(12, 14)])
    with engine.connect() as conn:
        seqs = set(conn.execute(select(audit_checkpoints.c.seq)).scalars().all())
    assert 5 not in seqs
    code, said = run_verify(audited)
    assert code == 1 and "unsigned: no signed checkpoint at seq 5" in said
