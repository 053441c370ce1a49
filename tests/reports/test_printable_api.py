"""The printable forms over HTTP: negotiated, gated, counted and audited like the others."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from gateway.reports.pdf import Printer
from gateway.state import state_of
from gateway.store.tables import audit_entries
from tests.reports.test_reports_api import bank_auth, consent, fetch

__all__ = ["bank_auth"]


def test_a_pdf_is_gated_counted_and_audited_like_json(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    monitoring = consent(
        app_client, bank_auth, purpose="post_loan_monitoring", max_daily_accesses=2
    )
    answer = fetch(app_client, bank_auth, monitoring["id"], Accept="application/pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"].startswith('inline; filename="rpt_')
    with engine.connect() as conn:
        entry = conn.execute(select(audit_entries).order_by(audit_entries.c.seq.desc())).first()
    assert entry is not None
    assert (entry.decision, entry.consent_id, entry.purpose) == (
        "allow", monitoring["id"], "post_loan_monitoring",
    )  # fmt: skip
    assert entry.response_sha256 == hashlib.sha256(answer.content).hexdigest()
    # The consent's daily frequency counts the PDF like any other form.
    assert fetch(app_client, bank_auth, monitoring["id"]).status_code == 200
    third = fetch(app_client, bank_auth, monitoring["id"], Accept="application/pdf")
    assert third.status_code == 429
    assert third.json()["limit"] == "consent"


def test_a_busy_printer_refuses_before_anything_is_spent(
    app_client: TestClient, bank_auth: dict[str, str], engine: Engine
) -> None:
    once = consent(app_client, bank_auth, purpose="post_loan_monitoring", max_daily_accesses=1)
    printer: Printer = state_of(app_client.app).printer  # type: ignore[arg-type]
    with engine.connect() as conn:
        allowed_before = conn.execute(
            select(func.count()).where(audit_entries.c.decision == "allow")
        ).scalar_one()
    printer.pending = printer.limit  # every renderer busy, the queue full
    try:
        busy = fetch(app_client, bank_auth, once["id"], Accept="application/pdf")
    finally:
        printer.pending = 0
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.json()["type"].endswith("/printer-busy")
    assert busy.headers["retry-after"] == "2"
    with engine.connect() as conn:
        allowed_after = conn.execute(
            select(func.count()).where(audit_entries.c.decision == "allow")
        ).scalar_one()
    assert allowed_after == allowed_before
    # The consent's one access a day was not spent on the refusal.
    again = fetch(app_client, bank_auth, once["id"], Accept="application/pdf")
    assert again.status_code == 200, again.text
    assert printer.pending == 0


def test_the_page_has_its_own_policy_and_406_names_pdf(
    app_client: TestClient, bank_auth: dict[str, str]
) -> None:
    granted = consent(app_client, bank_auth)
    page = fetch(app_client, bank_auth, granted["id"], Accept="text/html")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'unsafe-inline'" in policy
    assert "信息概要" in page.text and "声明与核验" in page.text
    refused = fetch(app_client, bank_auth, granted["id"], Accept="image/png")
    assert refused.status_code == 406
    assert "application/pdf" in refused.json()["detail"]
