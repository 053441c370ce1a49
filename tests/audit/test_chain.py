"""The audit chain: intact when untouched; every edit, deletion, swap or cut is named."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, delete, func, make_url, select, update

from gateway.audit import pinned
from gateway.audit.chain import (
    AuditEvent,
    append,
    append_many_committed_pg,
    checkpoint_keys,
    verify,
)
from gateway.keys.store import ensure_key, load_ring
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head
from testkit.services import Postgres
from tests.conftest import fresh_pg_database

EVERY = 5


def fill(engine: Engine, settings: Settings, n: int = 23) -> None:
    kek = settings.kek_bytes()
    with engine.begin() as conn:
        ensure_key(conn, kek, "audit", "ES256")
        signer = load_ring(conn, kek).signing_key("audit", datetime.now(UTC))
    pinned.pin(pinned.path_of(settings), [signer])  # as the gateway does before signing
    for i in range(n):
        with engine.begin() as conn:
            append(
                conn,
                AuditEvent(client_id="bank-a", route="/v1/x", decision="allow", reason=f"r{i}"),
                signer=signer,
                checkpoint_every=EVERY,
            )


def check(engine: Engine, every: int = EVERY) -> list[tuple[int, str]]:
    """The breaks, checkpoints due every `every` (the unsigned tests' chains: 100)."""
    with engine.connect() as conn:
        _, breaks = verify(conn, checkpoint_keys(conn), every=every)
    return [(b.seq, b.kind) for b in breaks]


@pytest.fixture
def chain(engine: Engine, settings: Settings) -> Engine:
    fill(engine, settings)
    return engine


def test_untouched_chain_verifies(chain: Engine) -> None:
    assert check(chain) == []
    with chain.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar() == 4


def test_edited_entry(chain: Engine) -> None:
    with chain.begin() as conn:
        conn.execute(update(audit_entries).where(audit_entries.c.seq == 7).values(reason="nothing"))
    assert check(chain)[0] == (7, "edited")


def test_deleted_entry(chain: Engine) -> None:
    with chain.begin() as conn:
        conn.execute(delete(audit_entries).where(audit_entries.c.seq == 12))
    assert check(chain)[0] == (12, "missing")


def test_swapped_entries(chain: Engine) -> None:
    with chain.begin() as conn:
        rows = {
            r.seq: r._asdict()
            for r in conn.execute(select(audit_entries).where(audit_entries.c.seq.in_([8, 9])))
        }
        for seq, other in ((8, 9), (9, 8)):
            values = {k: v for k, v in rows[other].items() if k != "seq"}
            conn.execute(update(audit_entries).where(audit_entries.c.seq == seq).values(**values))
    assert check(chain)[0][0] == 8


def test_rewritten_tail_is_caught_by_the_signed_checkpoint(chain: Engine) -> None:
    from gateway.audit.chain import entry_hash

    # An administrator edits entry 3 and recomputes every hash after it.
    with chain.begin() as conn:
        rows = [
            r._asdict() for r in conn.execute(select(audit_entries).order_by(audit_entries.c.seq))
        ]
        previous = rows[1]["entry_hash"]
        for row in rows[2:]:
            if row["seq"] == 3:
                row["reason"] = "hidden"
            row["prev_hash"] = previous
            row["entry_hash"] = previous = entry_hash(row)
            conn.execute(
                update(audit_entries)
                .where(audit_entries.c.seq == row["seq"])
                .values(
                    reason=row["reason"], prev_hash=row["prev_hash"], entry_hash=row["entry_hash"]
                )
            )
        conn.execute(update(audit_head).values(entry_hash=previous))
    assert check(chain)[0] == (5, "edited")


def test_cut_tail(chain: Engine) -> None:
    with chain.begin() as conn:
        conn.execute(delete(audit_entries).where(audit_entries.c.seq > 14))
    kinds = check(chain)
    assert kinds[0] == (15, "truncated")
    assert (20, "truncated") in kinds  # the signed checkpoint names an entry now gone


def test_forged_checkpoint(chain: Engine) -> None:
    with chain.begin() as conn:
        signed = conn.execute(
            select(audit_checkpoints.c.signed).where(audit_checkpoints.c.seq == 10)
        ).scalar_one()
        head, body, sig = signed.split(".")
        conn.execute(
            update(audit_checkpoints)
            .where(audit_checkpoints.c.seq == 10)
            .values(signed=f"{head}.{body}.{sig[:-4]}AAAA")
        )
    assert check(chain)[0] == (10, "bad_checkpoint")


def test_concurrent_writers_never_fork_the_chain(engine: Engine, settings: Settings) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with engine.begin() as conn:
                    append(
                        conn,
                        AuditEvent(client_id=name, route="/v1/y", decision="deny", reason=str(i)),
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with engine.connect() as conn:
        seqs = (
            conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq)).scalars().all()
        )
    assert seqs == list(range(1, 61))
    assert check(engine, every=100) == []


def test_cli_verify_exit_codes(chain: Engine, settings: Settings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XYD_STATE_DIR": str(settings.state_dir),
        "XYD_DATABASE_URL": settings.effective_database_url,
        "XYD_AUDIT_CHECKPOINT_EVERY": str(EVERY),
    }
    run = [sys.executable, "-m", "gateway.cli", "audit", "verify"]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "intact: 23 entries" in ok.stdout
    with chain.begin() as conn:
        conn.execute(update(audit_entries).where(audit_entries.c.seq == 4).values(decision="deny"))
    broken = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1
    assert "broken at seq 4: edited" in broken.stderr


def test_enterprise_read_is_audited_before_the_answer(tmp_path: Path) -> None:
    """Through the app: an allowed read leaves an entry with the digest of what was sent."""
    import hashlib

    from sqlalchemy import create_engine
    from starlette.testclient import TestClient

    from gateway.app import create_app
    from gateway.records.readers import read_ndjson
    from gateway.records.service import Ingestor
    from gateway.store.migrate import upgrade
    from testkit.builders import code, ndjson, registration
    from testkit.clients import ISSUER, register
    from tests.identity.test_token_flow import get_token

    settings = Settings(
        state_dir=tmp_path / ".xyd", public_base_url=ISSUER, key_activation_delay_s=0
    )
    settings.state_dir.mkdir()
    engine = create_engine(settings.effective_database_url)
    upgrade(engine)
    Ingestor(engine, "registration", b"k", 10).run(
        read_ndjson(ndjson(registration(1)).splitlines()), "t"
    )
    bank = register(engine, "bank-audit")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = get_token(client, bank)
        answer = client.get(
            f"/v1/enterprises/{code(1)}", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
        with engine.connect() as conn:
            entry = conn.execute(select(audit_entries)).one()
        assert entry.client_id == "bank-audit"
        assert entry.credit_code == code(1)
        assert entry.response_sha256 == hashlib.sha256(answer.content).hexdigest()
        assert entry.request_id == answer.headers["x-request-id"]
        # The audit write fails (its head row is gone): 503, and no data goes out.
        with engine.begin() as conn:
            conn.execute(delete(audit_head))
        refused = client.get(
            f"/v1/enterprises/{code(1)}", headers={"Authorization": f"Bearer {token}"}
        )
        assert refused.status_code == 503
        assert "成都" not in refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    engine.dispose()


async def test_batches_on_postgres_store_every_field_and_verify(
    pg: Postgres, settings: Settings
) -> None:
    """The served path's writer: a batch is one statement (`audit_append`)."""
    url = fresh_pg_database(pg)
    engine = create_engine(url)
    kek = settings.kek_bytes()
    with engine.begin() as conn:
        ensure_key(conn, kek, "audit", "ES256")
        signer = load_ring(conn, kek).signing_key("audit", datetime.now(UTC))
    batches = [
        [
            AuditEvent(client_id=f"bank-{b}", route="GET /v1/x", decision="allow",
                       credit_code="91510100MA61R8XX1B" if n % 2 else None, consent_id=f"cns_{n}",
                       purpose="loan_application", reason=None if n % 3 else "why",
                       response_sha256="ab" * 32, request_id=f"req-{b}-{n}")
            for n in range(b + 1)
        ]
        for b in range(4)
    ]  # fmt: skip
    pg_conn = await psycopg.AsyncConnection.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    try:
        seqs = [
            await append_many_committed_pg(pg_conn, batch, signer=signer, checkpoint_every=EVERY)
            for batch in batches
        ]
    finally:
        await pg_conn.close()
    assert seqs == [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10]]
    with engine.connect() as conn:
        rows = conn.execute(select(audit_entries).order_by(audit_entries.c.seq)).all()
        checkpoints = conn.execute(select(audit_checkpoints.c.seq)).scalars().all()
    events = [event for batch in batches for event in batch]
    assert [(r.client_id, r.credit_code, r.reason, r.request_id) for r in rows] == [
        (e.client_id, e.credit_code, e.reason, e.request_id) for e in events
    ]
    assert sorted(checkpoints) == [5, 10]
    assert check(engine) == []
    engine.dispose()


def _pg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def test_served_writer_quotes_hostile_values_and_rolls_back_a_failed_batch(
    pg: Postgres,
) -> None:
    """Quotes, backslashes and SQL in the values are stored as given. A batch
    that fails part-way (its second entry too long for its column) leaves no
    trace, and the next one continues the chain without a gap."""
    url = fresh_pg_database(pg)
    engine = create_engine(url)
    hostile = "x'); DELETE FROM audit_entries; --\\ \" 成都 $$ \\' E'\\x00"
    good = AuditEvent(client_id="bank-1", route="GET /v1/x", decision="deny",
                      reason=hostile, request_id=hostile[:100])  # fmt: skip
    too_long = AuditEvent(client_id="b" * 65, route="GET /v1/x", decision="allow")
    pg_conn = await psycopg.AsyncConnection.connect(_pg_conninfo(url), autocommit=True)
    try:
        assert await append_many_committed_pg(pg_conn, [good]) == [1]
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            await append_many_committed_pg(pg_conn, [good, too_long])
        # The same connection goes on: the failed batch was rolled back.
        assert await append_many_committed_pg(pg_conn, [good]) == [2]
    finally:
        await pg_conn.close()
    with engine.connect() as conn:
        rows = conn.execute(select(audit_entries).order_by(audit_entries.c.seq)).all()
        head = conn.execute(select(audit_head.c.seq)).scalar_one()
    assert [(r.seq, r.reason, r.request_id) for r in rows] == [
        (1, hostile, hostile[:100]),
        (2, hostile, hostile[:100]),
    ]
    assert head == 2
    assert check(engine, every=100) == []
    engine.dispose()


async def test_served_writer_needs_an_autocommit_connection(pg: Postgres) -> None:
    url = fresh_pg_database(pg)
    pg_conn = await psycopg.AsyncConnection.connect(_pg_conninfo(url))
    try:
        event = AuditEvent(client_id="bank-1", route="GET /v1/x", decision="allow")
        with pytest.raises(ValueError, match="autocommit"):
            await append_many_committed_pg(pg_conn, [event])
    finally:
        await pg_conn.close()


async def test_postgres_links_entries_as_python_hashes_them(pg: Postgres) -> None:
    """`audit_append` computes each hash in PostgreSQL; `verify` recomputes it in
    Python. Every ASCII character (controls, quotes, backslash, DEL), Chinese,
    emoji and the Unicode line separators go through both, as does a missing
    value (null)."""
    url = fresh_pg_database(pg)
    engine = create_engine(url)
    samples = [chr(c) for c in range(1, 128)]
    samples += ["成都市", "\u2028\u2029", "\ufeff", "😀 \U0001f3e6", "é\u0301", "\\u0000", '"\\"']
    events = [
        AuditEvent(client_id=f"c{n}{text}", route=f"GET /{text}", decision="deny",
                   reason=text, credit_code=None, consent_id=text if n % 2 else None,
                   purpose=None, response_sha256=None, request_id=text)
        for n, text in enumerate(samples)
    ]  # fmt: skip
    pg_conn = await psycopg.AsyncConnection.connect(_pg_conninfo(url), autocommit=True)
    try:
        for start in range(0, len(events), 10):
            await append_many_committed_pg(pg_conn, events[start : start + 10])
    finally:
        await pg_conn.close()
    assert check(engine, every=1000) == []
    with engine.connect() as conn:
        reasons = conn.execute(select(audit_entries.c.reason).order_by(audit_entries.c.seq))
        assert list(reasons.scalars()) == samples
    engine.dispose()
