"""An ingest batch's audit entries (linked in Python and COPYed on PostgreSQL
when the batch is big, appended one statement an entry on SQLite and through
`audit_append` when small): one a line naming an
enterprise, in line order, a chain `verify` finds intact with its checkpoints,
whatever the entries' text holds, and continued by the next writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine, func, select

from gateway.audit import chain
from gateway.audit.chain import AuditEvent, Break, append, checkpoint_keys, verify
from gateway.keys.pii import KeyRing
from gateway.keys.store import ensure_key, load_ring
from gateway.records.audited import WriteAudit, Written
from gateway.records.binding import load_departments
from gateway.records.readers import read_ndjson
from gateway.records.service import Ingestor, LineOutcome
from gateway.settings import Settings
from gateway.store.tables import audit_checkpoints, audit_entries, records
from testkit.builders import MARKET, code, ndjson, penalty

EVERY = 4


@pytest.fixture(params=["copy", "statement"], autouse=True)
def copy_from(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both PostgreSQL paths for these small batches: COPY from the first entry, or never."""
    monkeypatch.setattr(chain, "COPY_FROM", 1 if request.param == "copy" else 10**9)
    return str(request.param)


def test_entries_link_verify_and_continue_whatever_their_text(
    engine: Engine, settings: Settings
) -> None:
    with engine.begin() as conn:
        ensure_key(conn, settings.kek_bytes(), "audit", "ES256")
        signer = load_ring(conn, settings.kek_bytes()).signing_key("audit", datetime.now(UTC))
    writer = load_departments(settings.config_dir).writer(MARKET)
    audit = WriteAudit("ops", "xyd ingest", signer, EVERY, request_id="req\t1\\")
    ingestor = Ingestor(
        engine, "penalty", b"k", 3, KeyRing({1: bytes(32)}), writer=writer, audit=audit
    )
    # COPY text's own specials (tab, backslash, newline as an escape, \N) and
    # JSON's (a quote) in record ids that pass validation, and a refusal's reason.
    hostile = ["P-\t1", "P-\\N", 'P-"3"', "P-\\t4", "P-五"]
    lines = [penalty(n, record_id=rid, credit_code=code(n)) for n, rid in enumerate(hostile, 1)]
    lines.insert(2, penalty(9, credit_code=code(9), fine_wan="a\\lot"))  # refused, audited
    outcomes: list[LineOutcome] = []
    ingestor.run(read_ndjson(ndjson(*lines).splitlines()), "test", outcomes.append)
    assert [o.outcome for o in outcomes] == ["accepted"] * 2 + ["rejected"] + ["accepted"] * 3

    with engine.begin() as conn:
        # The next writer (the served path's) links after the batch's last entry.
        append(conn, AuditEvent("bank-a", "/v1/x", "allow", request_id=None), signer=signer,
               checkpoint_every=EVERY)  # fmt: skip
    with engine.connect() as conn:
        count, breaks = verify(conn, checkpoint_keys(conn), every=EVERY)
        rows = conn.execute(select(audit_entries).order_by(audit_entries.c.seq)).all()
        signed = conn.execute(select(audit_checkpoints.c.seq)).scalars().all()
    assert (count, breaks) == (7, [])
    assert sorted(signed) == [4]
    ingested = rows[:6]
    assert [r.credit_code for r in ingested] == [code(n) for n in (1, 2, 9, 3, 4, 5)]
    assert [r.decision for r in ingested] == ["allow", "allow", "deny", "allow", "allow", "allow"]
    assert ingested[0].reason == "record accepted: penalty P-\t1 v1"
    assert ingested[1].reason == "record accepted: penalty P-\\N v1"
    assert ingested[2].reason.startswith("record rejected: penalty ")
    assert "a\\lot" in ingested[2].reason or "fine_wan" in ingested[2].reason
    assert ingested[3].reason == 'record accepted: penalty P-"3" v1'
    assert {r.request_id for r in ingested} == {"req\t1\\"}
    assert {(r.client_id, r.route) for r in ingested} == {("ops", "xyd ingest")}
    assert rows[6].prev_hash == ingested[-1].entry_hash


def test_a_batch_failing_after_its_entries_keeps_neither_and_a_rerun_continues_the_chain(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    appended = WriteAudit.append
    calls = 0

    def dies_in_the_second_batch(
        self: WriteAudit, conn: Connection, category: str, written: Sequence[Written]
    ) -> None:
        nonlocal calls
        appended(self, conn, category, written)  # the entries written, then the process dies
        calls += 1
        if calls == 2:
            raise RuntimeError("stopped between the entries and the commit")

    monkeypatch.setattr(WriteAudit, "append", dies_in_the_second_batch)
    writer = load_departments(settings.config_dir).writer(MARKET)
    ingestor = Ingestor(
        engine, "penalty", b"k", 3, writer=writer, audit=WriteAudit("ops", "xyd ingest", None, 100)
    )
    feed = ndjson(*(penalty(n, credit_code=code(n)) for n in range(1, 7))).splitlines()
    with pytest.raises(RuntimeError):
        ingestor.run(read_ndjson(feed), "test")
    assert stored(engine) == (3, 3, [])  # the first batch and its entries, not the second's

    monkeypatch.undo()
    outcomes: list[LineOutcome] = []
    ingestor.run(read_ndjson(feed), "test", outcomes.append)
    assert [o.outcome for o in outcomes] == ["duplicate"] * 3 + ["accepted"] * 3
    assert stored(engine) == (6, 9, [])


def stored(engine: Engine) -> tuple[int, int, list[Break]]:
    """Records, audit entries, and the chain's breaks."""
    with engine.connect() as conn:
        kept = conn.scalar(select(func.count()).select_from(records))
        count, breaks = verify(conn, {}, every=100)
    return int(kept or 0), count, breaks
