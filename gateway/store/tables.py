"""The credit store's tables (SQLAlchemy Core; the request path uses no ORM).

Records of every catalogue category share `records` (identity: category,
providing department, the department's record id) and `record_versions`
(content, never overwritten: an update adds a version). Licences and
penalties also get typed rows per version carrying the double-publicity
fields, so reports and rules can filter on them in SQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from gateway.store.types import UtcDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only autoincrements INTEGER PRIMARY KEY columns.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
# Every timestamp column: aware UTC datetimes in and out, on SQLite too.
Timestamp = UtcDateTime()

CATEGORIES = (
    "registration",
    "license",
    "penalty",
    "red_list",
    "black_list",
    "commitment",
    "credit_repair",
    "tax_rating",
    "social_insurance",
    "housing_fund",
    "utility",
    "judgment_debtor",
)

enterprises = Table(
    "enterprises",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("credit_code", String(18), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("entity_type", String(40), nullable=False),
    Column("division_code", String(6), nullable=False),
    Column("legal_rep_hash", String(64)),
    Column("legal_rep_masked", String(64)),
    Column("registered_on", Date),
    Column("status", String(20), nullable=False),
    Column("registered_capital_fen", BigInteger),
    Column("industry_code", String(8)),
    # Bumped whenever the enterprise or any of its records changes: report
    # caches key on it, so a change is visible on the very next request.
    Column("data_version", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_enterprises_legal_rep_hash", enterprises.c.legal_rep_hash)

records = Table(
    "records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("category", String(20), nullable=False),
    Column("source_department", String(100), nullable=False),
    Column("source_record_id", String(128), nullable=False),
    # Absent for records about natural persons, which carry no credit code.
    Column("credit_code", String(18)),
    Column("subject_kind", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("effective_date", Date),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("category", "source_department", "source_record_id"),
)
Index("ix_records_credit_code_category", records.c.credit_code, records.c.category)

record_versions = Table(
    "record_versions",
    metadata,
    Column("record_id", Id, ForeignKey("records.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("content_sha256", String(64), nullable=False),
    Column("data", Json, nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("ingest_batch", String(64)),
    # The version's personal fields, AES-GCM sealed (gateway/keys/pii.py), and
    # the key version that sealed them; both null when it has none. Kept out
    # of `data`, which reports read.
    Column("personal", Text),
    Column("personal_key_version", Integer),
)
# Partial: only versions with personal fields are indexed, so ingestion of
# the others pays nothing; `xyd pii status` and `reencrypt` read it.
Index(
    "ix_record_versions_personal_key_version",
    record_versions.c.personal_key_version,
    postgresql_where=record_versions.c.personal_key_version.isnot(None),
    sqlite_where=record_versions.c.personal_key_version.isnot(None),
)


def _per_version(name: str, *columns: Column[object]) -> Table:
    return Table(
        name,
        metadata,
        Column("record_id", Id, primary_key=True),
        Column("version", Integer, primary_key=True),
        *columns,
        ForeignKeyConstraint(
            ["record_id", "version"], ["record_versions.record_id", "record_versions.version"]
        ),
    )


penalty_details = _per_version(
    "penalty_details",
    Column("party_category", String(20), nullable=False),
    Column("decision_number", String(128), nullable=False),
    Column("violation_type", String(200)),
    Column("facts", Text),
    Column("legal_basis", Text),
    Column("penalty_types", Json, nullable=False),
    Column("content", Text),
    Column("fine_fen", BigInteger, nullable=False),
    Column("confiscation_fen", BigInteger, nullable=False),
    Column("affected_license", String(200)),
    Column("procedure", String(10), nullable=False),
    Column("severity", String(10)),
    Column("decision_date", Date, nullable=False),
    Column("valid_until", Date),
    Column("publication_until", Date),
    Column("authority", String(200), nullable=False),
    Column("authority_code", String(18)),
    Column("source_department_code", String(18)),
)

license_details = _per_version(
    "license_details",
    Column("party_category", String(20), nullable=False),
    Column("document_name", String(200)),
    Column("document_number", String(128), nullable=False),
    Column("license_category", String(10), nullable=False),
    Column("certificate_name", String(200)),
    Column("certificate_number", String(128)),
    Column("content", Text),
    Column("decision_date", Date, nullable=False),
    Column("valid_from", Date),
    Column("valid_until", Date),
    Column("authority", String(200), nullable=False),
    Column("authority_code", String(18)),
    Column("source_department_code", String(18)),
    Column("status", String(10), nullable=False),
)

# An enterprise's objection (异议) to a record: the report marks the record as
# disputed while open; the resolution is kept (an upheld one is corrected by
# the department as a new record version).
record_disputes = Table(
    "record_disputes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    Column("credit_code", String(18)),
    Column("opened_by", String(64), nullable=False),
    Column("opened_at", Timestamp, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(10), nullable=False),  # open | upheld | rejected
    Column("resolved_by", String(64)),
    Column("resolved_at", Timestamp),
    Column("resolution_note", Text),
)
Index("ix_record_disputes_credit_code", record_disputes.c.credit_code)
Index("ix_record_disputes_record_id", record_disputes.c.record_id)

ingest_runs = Table(
    "ingest_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("category", String(20), nullable=False),
    Column("source", String(500), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("duplicate", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="0"),
)

# --- identity ------------------------------------------------------------

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("client_type", String(20), nullable=False),
    # Bank code (e.g. BOCD) or platform key; a consent names a bank by either.
    Column("org_code", String(32)),
    # A department client's department (its name in records, its authority code)
    # and the record categories it delivers (migration 0016); null for others.
    Column("department", String(100)),
    Column("department_code", String(18)),
    Column("categories", Json),
    Column("scopes", Json, nullable=False),
    Column("rate_plan", String(40), nullable=False),
    Column("jwks", Json, nullable=False),
    Column("fapi2_strict", Boolean, nullable=False, server_default="0"),
    # scrypt hash of a client secret; used only where client_secret_basic is enabled.
    Column("secret_hash", String(200)),
    # Where a bank's signed events are POSTed (migration 0017); null: none.
    Column("webhook_url", String(2000)),
    # Where a bank's authorisation answers may be sent, matched exactly (migration 0019).
    Column("redirect_uris", Json),
    Column("disabled_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("purpose", String(20), nullable=False),
    Column("alg", String(10), nullable=False),
    Column("public_jwk", Json, nullable=False),
    # AES-GCM nonce + ciphertext of the PKCS#8 private key, under the KEK.
    Column("private_encrypted", LargeBinary, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("not_before", Timestamp, nullable=False),
    Column("retire_after", Timestamp),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=False),
)

used_jtis = Table(
    "used_jtis",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("expires_at", Timestamp, nullable=False),
)
Index("ix_used_jtis_expires_at", used_jtis.c.expires_at)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("state", String(12), nullable=False),  # in_progress | done
    Column("status_code", Integer),
    Column("body", LargeBinary),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

# --- audit trail ------------------------------------------------------------

audit_entries = Table(
    "audit_entries",
    metadata,
    # Assigned under the head row's lock: gap-free and unique across writers.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # RFC 3339 text: hashed as stored
    Column("client_id", String(64), nullable=False),
    Column("credit_code", String(18)),
    Column("consent_id", String(64)),
    Column("purpose", String(40)),
    Column("route", String(200), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("reason", String(200)),
    Column("response_sha256", String(64)),
    Column("request_id", String(128)),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)
# An enterprise's access log reads newest first: by code, then sequence.
Index("ix_audit_entries_credit_code_seq", audit_entries.c.credit_code, audit_entries.c.seq)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_hash", String(64), nullable=False),
    Column("signed", Text, nullable=False),  # compact JWS of {seq, head, at}
    # When the export lease's holder gave it to the witness; NULL: not yet.
    Column("exported_at", Timestamp),
)
Index(
    "ix_audit_checkpoints_unexported",
    audit_checkpoints.c.seq,
    postgresql_where=audit_checkpoints.c.exported_at.is_(None),
    sqlite_where=audit_checkpoints.c.exported_at.is_(None),
)

# Work that must run once across hosts: held by one process until `expires_at`;
# `token` grows on every take-over and fences the holder's writes (gateway/leases.py).
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("renewed_at", Timestamp, nullable=False),
)

# --- reports as issued ----------------------------------------------------------

# A consent cut (everything but the request's own members) as signed, once: the
# many reports issued from it on its day refer to it by its digest.
report_cuts = Table(
    "report_cuts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content", Text, nullable=False),  # canonical JSON (RFC 8785), as signed
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_report_cuts_created_at", report_cuts.c.created_at)

# Each report as issued, stored with its audit entry (same transaction): with its
# cut, `own` and `signature` give back the very bytes sent. No foreign key to the
# cut: a batch holding everyone's audit entries must not fail on one reference
# (gateway/audit/kept.py says why a cut outlives every report citing it).
issued_reports = Table(
    "issued_reports",
    metadata,
    Column("report_id", String(40), primary_key=True),
    Column("client_id", String(64), nullable=False),  # the recipient: nobody else reads it
    Column("credit_code", String(18), nullable=False),
    Column("cut_sha256", String(64), nullable=False),
    Column("own", Text, nullable=False),  # the request's own members, canonical JSON
    Column("signature", Text, nullable=False),  # detached JWS over cut + own
    Column("issued_at", Timestamp, nullable=False),
)
Index("ix_issued_reports_issued_at", issued_reports.c.issued_at)

# --- the authorisation code flow (FAPI 2.0) ----------------------------------
# Request URIs, codes and refresh tokens are kept by their SHA-256 only: a copy of
# these tables grants nothing. Each is single use (`used_at`).

oauth_requests = Table(
    "oauth_requests",
    metadata,
    Column("request_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", String(512), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("state", String(512)),
    Column("scope", String(200), nullable=False),
    Column("authorization_details", Json, nullable=False),
    Column("dpop_jkt", String(64)),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_oauth_requests_expires_at", oauth_requests.c.expires_at)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", String(512), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("authorization_details", Json, nullable=False),
    Column("dpop_jkt", String(64)),
    Column("principal", String(64), nullable=False),  # the approving person, keyed hash
    Column("consent_id", String(40), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    # What the first use issued, so that a second use revokes it.
    Column("access_jti", String(64)),
    Column("access_expires_at", Timestamp),
    Column("refresh_family", String(40)),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_oauth_codes_expires_at", oauth_codes.c.expires_at)

oauth_refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family", String(40), nullable=False),  # one per code; revoked together
    Column("client_id", String(64), nullable=False),
    Column("consent_id", String(40), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("authorization_details", Json, nullable=False),
    Column("dpop_jkt", String(64)),
    Column("access_jti", String(64), nullable=False),  # the access token issued beside it
    Column("access_expires_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),  # rotated
    Column("revoked_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_oauth_refresh_tokens_family", oauth_refresh_tokens.c.family)

# --- consents ---------------------------------------------------------------

consents = Table(
    "consents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("credit_code", String(18), nullable=False),
    Column("grantee_client_id", String(64), nullable=False),
    Column("grantee_org_code", String(32)),
    Column("registrant_client_id", String(64), nullable=False),
    # portal | platform:<key> | direct: how the consent came (XYD_CONSENT_CHANNELS)
    Column("channel", String(64), nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("scopes", Json, nullable=False),
    Column("valid_from", Timestamp, nullable=False),
    Column("valid_until", Timestamp, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("max_daily_accesses", Integer),
    Column("revoked_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_consents_credit_code", consents.c.credit_code)
Index("ix_consents_grantee_updated", consents.c.grantee_client_id, consents.c.updated_at)

consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("consent_id", String(40), ForeignKey("consents.id"), nullable=False),
    Column("event", String(20), nullable=False),  # created | revoked
    Column("actor_client_id", String(64), nullable=False),
    Column("reason", String(500)),
    Column("at", Timestamp, nullable=False),
)
Index("ix_consent_events_consent_id", consent_events.c.consent_id)

# What each consent's bank was told by a sweep (migration 0017): `consent.expired`
# once; `enterprise.changed` with the data version last notified. The primary key
# makes two workers' sweeps of one consent collide rather than both send.
webhook_notices = Table(
    "webhook_notices",
    metadata,
    Column("consent_id", String(40), ForeignKey("consents.id"), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("data_version", BigInteger),
    Column("notified_at", Timestamp, nullable=False),
)
Index("ix_consents_valid_until", consents.c.valid_until)

# --- platforms: canonical loan events, the ledger, dead letters, the outbox ----

loan_events = Table(
    "loan_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    # Unique per platform: a redelivered message finds its first copy here.
    Column("message_id", String(128), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("occurred_at", Timestamp, nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("credit_code", String(18)),
    # A natural-person borrower: only a keyed hash of the ID number, never the number.
    Column("borrower_hash", String(64)),
    Column("bank_code", String(32)),
    Column("loan_no", String(128)),
    Column("amount_fen", BigInteger),
    Column("days_overdue", Integer),
    Column("due_date", Date),
    Column("core_enterprise_code", String(18)),
    Column("raw_sha256", String(64), nullable=False),
    Column("details", Json, nullable=False),
    UniqueConstraint("platform", "message_id"),
)
Index("ix_loan_events_credit_code", loan_events.c.credit_code)
Index("ix_loan_events_loan", loan_events.c.platform, loan_events.c.loan_no)

loans = Table(
    "loans",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("loan_no", String(128), primary_key=True),
    Column("credit_code", String(18)),
    Column("borrower_hash", String(64)),
    Column("bank_code", String(32)),
    # applied | approved | rejected | disbursed | overdue | defaulted | settled
    Column("status", String(12), nullable=False),
    Column("amount_fen", BigInteger),
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("days_overdue", Integer, nullable=False),
    Column("core_enterprise_code", String(18)),
    Column("first_event_at", Timestamp, nullable=False),
    Column("last_event_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
Index("ix_loans_credit_code", loans.c.credit_code)

platform_dead_letters = Table(
    "platform_dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", Timestamp, nullable=False),
)

# A pull adapter's position (cursor, last synced day), committed in the same
# transaction as the events it covers.
platform_sync_state = Table(
    "platform_sync_state",
    metadata,
    Column("platform", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# Notifications to platforms and banks, written in the transaction that caused
# them and delivered at least once by the outbox worker.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("destination", String(64), nullable=False),  # platform key or bank client id
    Column("kind", String(40), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("delivered_at", Timestamp),
    Column("last_error", Text),
)
Index("ix_outbox_pending", outbox.c.delivered_at, outbox.c.next_attempt_at)

# --- the sandbox monitor: events seen, alerts and their history --------------------

# Every event the monitor has applied, with what rules look back on; written
# in the transaction that applies its effects, so a redelivery is a no-op.
monitor_events = Table(
    "monitor_events",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("occurred_at", Timestamp, nullable=False),
    Column("credit_code", String(18)),
    Column("attrs", Json, nullable=False),
    Column("applied_at", Timestamp, nullable=False),
)
Index("ix_monitor_events_time", monitor_events.c.kind, monitor_events.c.occurred_at)
Index("ix_monitor_events_code", monitor_events.c.credit_code, monitor_events.c.occurred_at)
# A worker reads what the others applied since its last batch.
Index("ix_monitor_events_applied_at", monitor_events.c.applied_at)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("rule", String(40), nullable=False),
    Column("subject", String(120), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("title", String(300), nullable=False),
    Column("credit_code", String(18)),
    Column("state", String(14), nullable=False),  # open | acknowledged | resolved
    Column("evidence", Json, nullable=False),
    Column("details", Json, nullable=False),
    Column("first_seen_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # Bumped on every change: the live stream's cursor.
    Column("revision", BigInteger, nullable=False),
)
Index("ix_alerts_state_severity", alerts.c.state, alerts.c.severity)
Index("ix_alerts_credit_code", alerts.c.credit_code)
Index("ix_alerts_revision", alerts.c.revision)
# One unresolved alert per rule and subject: new evidence updates it.
Index(
    "uq_alerts_unresolved",
    alerts.c.rule,
    alerts.c.subject,
    unique=True,
    postgresql_where=alerts.c.state != "resolved",
    sqlite_where=alerts.c.state != "resolved",
)

alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", String(40), ForeignKey("alerts.id"), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(64), nullable=False),  # a user, a client, or "monitor"
    Column("action", String(20), nullable=False),  # raised | updated | acknowledged | resolved
    Column("note", Text),
)
Index("ix_alert_history_alert", alert_history.c.alert_id)

# --- the risk officers' dashboard: local accounts and their sessions ----------------

dashboard_users = Table(
    "dashboard_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(20), nullable=False),  # risk_officer | auditor
    Column("password_hash", String(200), nullable=False),  # scrypt$salt$digest
    # Unused since issue 19: failed logins are throttled per (name, source) in
    # the limiter (dashboard/throttle.py), never by a lock on the account.
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("first_failed_at", Timestamp),
    Column("locked_until", Timestamp),
    Column("created_at", Timestamp, nullable=False),
    Column("disabled_at", Timestamp),
    # A department_reviewer's department (config/departments.yaml): the repairs it reviews.
    Column("department", String(100)),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    # SHA-256 hex of the cookie's token: a copy of this table logs nobody in.
    Column("id", String(64), primary_key=True),
    Column("user_name", String(64), ForeignKey("dashboard_users.name"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
)
Index("ix_dashboard_sessions_user_name", dashboard_sessions.c.user_name)

# --- the enterprise portal (migration 0020) -----------------------------------
# Tokens by their SHA-256 only: a copy of these tables logs nobody in. The person
# is a keyed hash of their subject at the identity provider, never the subject.

portal_logins = Table(
    "portal_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("browser_hash", String(64), nullable=False),  # the login cookie's token
    Column("next_path", String(1024), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
    Column("created_at", Timestamp, nullable=False),
)
Index("ix_portal_logins_expires_at", portal_logins.c.expires_at)

portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subject_hash", String(64), nullable=False),
    Column("credit_code", String(18), nullable=False),
    Column("role", String(40), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
)
Index("ix_portal_sessions_last_seen_at", portal_sessions.c.last_seen_at)

# --- online credit repair (信用修复): applications, their evidence, decisions -----

repair_applications = Table(
    "repair_applications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("credit_code", String(18), nullable=False),
    Column("record_id", Id, ForeignKey("records.id"), nullable=False),
    # The department that decided the penalty: it alone reviews the application.
    Column("department", String(100), nullable=False),
    Column("status", String(10), nullable=False),  # pending | approved | rejected
    Column("channel", String(20), nullable=False),  # platform | portal
    Column("applied_by", String(80), nullable=False),
    Column("applied_at", Timestamp, nullable=False),
    Column("review_due_at", Timestamp, nullable=False),
    Column("statement", Text),
    # The credit commitment accepted: its version, the SHA-256 of the text shown, when,
    # and the commitment record written for it.
    Column("commitment_version", String(20), nullable=False),
    Column("commitment_sha256", String(64), nullable=False),
    Column("commitment_accepted_at", Timestamp, nullable=False),
    Column("commitment_record_id", String(128), nullable=False),
    Column("decided_by", String(80)),
    Column("decided_at", Timestamp),
    Column("decision_reason", Text),
    Column("repair_record_id", String(128)),
)
Index("ix_repair_applications_credit_code", repair_applications.c.credit_code)
Index("ix_repair_applications_department_status", repair_applications.c.department,
      repair_applications.c.status)  # fmt: skip
# One open application per penalty: the second is refused (409) even when two race.
Index(
    "uq_repair_applications_pending_record",
    repair_applications.c.record_id,
    unique=True,
    postgresql_where=repair_applications.c.status == "pending",
    sqlite_where=repair_applications.c.status == "pending",
)

repair_evidence = Table(
    "repair_evidence",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("application_id", String(40), ForeignKey("repair_applications.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("file_name", String(200), nullable=False),
    # Sniffed from the bytes (application/pdf, image/jpeg, image/png), never as declared.
    Column("media_type", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    # Bounded by XYD_REPAIR_EVIDENCE_MAX_BYTES; kept with the application, not on disk.
    Column("content", LargeBinary, nullable=False),
)
Index("ix_repair_evidence_application_id", repair_evidence.c.application_id)
