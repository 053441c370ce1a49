"""Consent registration, lookup and revocation. Works on a sync Connection (the
app calls it through `run_sync`); callers own the transaction, and the SQL is
in repository.py."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, Connection, Row

from gateway.consents import repository
from gateway.consents.principal import (
    PORTAL,
    Actor,
    PlatformPrincipal,
    PortalPrincipal,
    channel_of,
    witness_of,
)
from gateway.consents.schemas import ConsentIn, ConsentTerms, PortalEvidence, iso
from gateway.errors import Conflict, Forbidden, InvalidValue, NotFound, ProblemError
from gateway.identifiers import UnknownEnterprise
from gateway.identity.tokens import Caller
from gateway.timeutil import aware
from gateway.webhooks.events import enqueue_event, note_baseline
from policies.consent import CHANNEL_KINDS, ConsentRules

SEES_ALL = frozenset({"regulator"})
# Registration statuses under which an enterprise no longer exists to consent
# (the report's NS-DEREGISTERED): 注销 and 吊销.
CLOSED = {"deregistered": "deregistered (注销)", "revoked": "its business licence revoked (吊销)"}


class UnknownConsent(NotFound):
    type_slug, title = "unknown-consent", "No such consent"


class EnterpriseClosed(InvalidValue):
    type_slug, title = "enterprise-closed", "Enterprise deregistered or its licence revoked"


class ChannelNotAccepted(Forbidden):
    type_slug, title = "channel-not-accepted", "Consents are not accepted through this channel"


def check_channel(channel: str, rules: ConsentRules) -> None:
    """403 for a consent through a channel this deployment does not accept
    (XYD_CONSENT_CHANNELS)."""
    if not rules.accepts(channel):
        accepted = [kind for kind in CHANNEL_KINDS if kind in rules.channels]
        raise ChannelNotAccepted(
            f"channel {channel}: this gateway accepts consents through {', '.join(accepted)} only",
            channel=channel,
            accepted=accepted,
        )


def check_status(credit_code: str, status: str | None) -> None:
    """404 for an enterprise the registry does not know (`status` None), 422 for
    one that is closed.

    Every consent, however it arrives (the API, a platform's authorisation),
    names an enterprise that exists and can still grant it.
    """
    if status is None:
        raise UnknownEnterprise(
            f"credit_code: no enterprise with credit code {credit_code} in the registry"
        )
    if status in CLOSED:
        raise EnterpriseClosed(
            f"credit_code: enterprise {credit_code} is {CLOSED[status]}; "
            "it can no longer grant a consent",
            field="credit_code",
            status=status,
        )


def _check(body: ConsentTerms, rules: ConsentRules, now: datetime) -> tuple[datetime, datetime]:
    valid_from = body.valid_from or now
    until = body.valid_until
    rule = rules.purposes[body.purpose]
    if until <= valid_from:
        raise InvalidValue("valid_until: must be after valid_from")
    if until > valid_from + timedelta(days=rule.max_days):
        raise InvalidValue(
            f"valid_until: {body.purpose} consents last at most {rule.max_days} days"
        )
    if until > now + timedelta(days=rules.max_validity_days):
        raise InvalidValue(f"valid_until: at most {rules.max_validity_days} days ahead")
    unknown = sorted(set(body.scopes) - set(rules.sections))
    if unknown:
        raise InvalidValue(f"scopes: unknown section {', '.join(unknown)}")
    if body.max_daily_accesses is not None and body.purpose != "post_loan_monitoring":
        raise InvalidValue("max_daily_accesses: only for post_loan_monitoring")
    return valid_from, until


def create(
    conn: Connection, caller: Caller | PlatformPrincipal, body: ConsentIn, rules: ConsentRules
) -> dict[str, Any]:
    """A consent with document evidence: `direct` from a client's token,
    `platform:<key>` from a platform's adapter."""
    evidence = body.evidence.model_dump()
    consent_id = _register(conn, caller, channel_of(caller), body, evidence, rules)
    return get(conn, caller, consent_id)


def create_from_portal(
    conn: Connection,
    person: PortalPrincipal,
    terms: ConsentTerms,
    *,
    approved_at: datetime,
    page_sha256: str,
    rules: ConsentRules,
) -> dict[str, Any]:
    """A consent the enterprise's person approved on the consent page, for the bank
    that asked (`terms.grantee`): channel `portal`, with who approved (their
    subject's keyed hash), when, and the SHA-256 of the page.

    The caller has held the person to their own enterprise (the code flow, before
    the request is spent). 403 when the portal channel is not accepted; 422
    (pydantic's ValidationError) for a malformed page hash."""
    evidence = PortalEvidence(
        approver=person.subject_hash,
        approver_role=person.role,
        approved_at=approved_at,
        page_sha256=page_sha256,
    )
    # Times as every other answer writes them (`+00:00`, not pydantic's `Z`).
    stored = {**evidence.model_dump(), "approved_at": iso(evidence.approved_at)}
    consent_id = _register(conn, person, PORTAL, terms, stored, rules)
    return get(conn, person, consent_id)


class Checked(NamedTuple):
    valid_from: datetime
    valid_until: datetime
    grantee_id: str
    grantee_code: str | None


def check(
    conn: Connection, actor: Actor, terms: ConsentTerms, rules: ConsentRules, now: datetime
) -> Checked:
    """Everything a registration checks but its channel, creating nothing: the
    validity against the purpose's rules, the sections, the enterprise (known,
    not closed) and the grantee. The code flow checks a pushed request with it
    long before the enterprise approves it."""
    valid_from, until = _check(terms, rules, now)
    status = repository.enterprise_status(conn, terms.credit_code)
    return _checked(actor, terms, valid_from, until, status, repository.bank(conn, terms.grantee))


def _checked(
    actor: Actor,
    terms: ConsentTerms,
    valid_from: datetime,
    until: datetime,
    status: str | None,
    bank: tuple[str, str | None] | None,
) -> Checked:
    """`check`'s enterprise and grantee, on what was read of them: the enterprise's
    status (None: unknown) and the bank the grantee names (None: no bank)."""
    check_status(terms.credit_code, status)
    if bank is None:
        raise InvalidValue(f"grantee: no bank with client id or bank code {terms.grantee!r}")
    if actor.client_type == "bank" and bank[0] != actor.client_id:
        raise InvalidValue("grantee: a bank registers consents for itself only")
    return Checked(valid_from, until, *bank)


def _register(
    conn: Connection,
    actor: Actor,
    channel: str,
    terms: ConsentTerms,
    evidence: dict[str, Any],
    rules: ConsentRules,
) -> str:
    """The consent stored with its `created` event; its id. The channel is refused
    before anything else is looked at."""
    check_channel(channel, rules)
    now = datetime.now(UTC)
    checked = check(conn, actor, terms, rules, now)
    consent_id = f"cns_{secrets.token_urlsafe(16)}"
    row = _consent_row(consent_id, actor, channel, terms, evidence, rules, checked, now)
    repository.insert_consent(conn, row)
    repository.add_event(conn, consent_id, "created", actor.client_id, None, now)
    if terms.purpose == "post_loan_monitoring":
        note_baseline(conn, consent_id, terms.credit_code)
    return consent_id


def _consent_row(
    consent_id: str,
    actor: Actor,
    channel: str,
    terms: ConsentTerms,
    evidence: dict[str, Any],
    rules: ConsentRules,
    checked: Checked,
    now: datetime,
) -> dict[str, Any]:
    rule = rules.purposes[terms.purpose]
    return dict(
        id=consent_id,
        credit_code=terms.credit_code,
        grantee_client_id=checked.grantee_id,
        grantee_org_code=checked.grantee_code,
        registrant_client_id=actor.client_id,
        channel=channel,
        purpose=terms.purpose,
        scopes=sorted(set(terms.scopes)),
        valid_from=checked.valid_from,
        valid_until=checked.valid_until,
        evidence=evidence,
        max_daily_accesses=terms.max_daily_accesses or rule.max_daily_accesses
        if terms.purpose == "post_loan_monitoring" else None,
        created_at=now,
        updated_at=now,
    )  # fmt: skip


def create_many(
    conn: Connection,
    requests: Sequence[tuple[Caller | PlatformPrincipal, ConsentIn]],
    rules: ConsentRules,
    statuses: Mapping[str, str] | None = None,
) -> list[str | ProblemError]:
    """`create` for each request in turn, with one read of the enterprises and one
    of the banks they name, and one write of the consents and one of their
    events: each new consent's id, or the refusal `create` would have raised
    for it (then nothing is written for it). `statuses`: the enterprises' statuses
    (`enterprise_statuses`) when the caller has read them in this transaction."""
    if not requests:
        return []
    now = datetime.now(UTC)
    if statuses is None:
        statuses = repository.enterprise_statuses(conn, {body.credit_code for _, body in requests})
    banks = repository.banks(conn, {body.grantee for _, body in requests})
    results: list[str | ProblemError] = []
    rows: list[dict[str, Any]] = []
    for actor, body in requests:
        try:
            channel = channel_of(actor)
            check_channel(channel, rules)
            valid_from, until = _check(body, rules, now)
            status, bank = statuses.get(body.credit_code), banks.get(body.grantee)
            checked = _checked(actor, body, valid_from, until, status, bank)
        except ProblemError as exc:
            results.append(exc)
            continue
        consent_id = f"cns_{secrets.token_urlsafe(16)}"
        evidence = body.evidence.model_dump()
        rows.append(_consent_row(consent_id, actor, channel, body, evidence, rules, checked, now))
        results.append(consent_id)
    repository.insert_consents(conn, rows, now)
    for (_, body), result in zip(requests, results, strict=True):
        if isinstance(result, str) and body.purpose == "post_loan_monitoring":
            note_baseline(conn, result, body.credit_code)
    return results


def _visible(caller: Actor) -> ColumnElement[bool]:
    if isinstance(caller, PortalPrincipal):
        return repository.of_enterprise(caller.credit_code)
    witness = None
    if caller.client_type == "platform" and caller.org_code:
        # The platform's client is the witness its adapter registered: it revokes
        # what the enterprise withdraws on the platform (its org code is its key).
        witness = witness_of(caller.org_code)
    return repository.visible(caller.client_type in SEES_ALL, caller.client_id, witness)


def status_of(row: Row[Any], now: datetime) -> str:
    """`active`, `expired` or `revoked`: a consents row's state at `now`."""
    return "revoked" if row.revoked_at else "expired" if now >= row.valid_until else "active"


def _render(conn: Connection, row: Row[Any], now: datetime) -> dict[str, Any]:
    until = row.valid_until
    status = status_of(row, now)
    history = repository.history(conn, row.id)
    return {
        "id": row.id,
        "status": status,
        "credit_code": row.credit_code,
        "grantee": row.grantee_client_id,
        "grantee_bank_code": row.grantee_org_code,
        "registrant": row.registrant_client_id,
        "channel": row.channel,
        "purpose": row.purpose,
        "scopes": list(row.scopes),
        "valid_from": iso(row.valid_from),
        "valid_until": iso(until),
        "evidence": dict(row.evidence),
        "max_daily_accesses": row.max_daily_accesses,
        "updated_at": iso(row.updated_at),
        "history": [
            {"event": e.event, "by": e.actor_client_id, "reason": e.reason, "at": iso(e.at)}
            for e in history
        ],
    }


def get(conn: Connection, caller: Actor, consent_id: str) -> dict[str, Any]:
    row = repository.find(conn, consent_id, _visible(caller))
    if row is None:  # another tenant's consent looks exactly like a missing one
        raise UnknownConsent(f"no consent {consent_id}")
    return _render(conn, row, datetime.now(UTC))


def encode_cursor(updated_at: datetime, consent_id: str) -> str:
    raw = orjson.dumps([updated_at.astimezone(UTC).isoformat(), consent_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        when, consent_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return aware(datetime.fromisoformat(when)), str(consent_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidValue("cursor: not a cursor this endpoint gave out", field="cursor") from None


def list_for(
    conn: Connection,
    caller: Caller,
    *,
    credit_code: str | None = None,
    changed_since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Oldest change first, so a poller that keeps `next_cursor` misses nothing.

    Each item's `change` names its latest event (`consent.created`,
    `consent.revoked`): a bank polling `changed_since` learns of revocations.
    """
    now = datetime.now(UTC)
    rows = repository.changes(
        conn,
        _visible(caller),
        credit_code=credit_code,
        changed_since=changed_since,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = [_render(conn, row, now) for row in rows[:limit]]
    for item in items:
        item["change"] = f"consent.{item['history'][-1]['event']}"
    last = rows[limit - 1] if more else None
    return {
        "items": items,
        "next_cursor": encode_cursor(last.updated_at, last.id) if last else None,
    }


def revoke(conn: Connection, caller: Actor, consent_id: str, reason: str) -> dict[str, Any]:
    """Revoked now, with its history event and the bank's `consent.revoked` webhook
    queued; an actor that cannot see the consent gets 404, as for a missing one."""
    now = datetime.now(UTC)
    current = get(conn, caller, consent_id)
    if current["status"] == "revoked":
        raise Conflict("consent already revoked")
    repository.mark_revoked(conn, consent_id, now)
    repository.add_event(conn, consent_id, "revoked", caller.client_id, reason, now)
    # In this transaction: the bank is told exactly when the revocation commits.
    enqueue_event(
        conn,
        "consent.revoked",
        client_id=current["grantee"],
        consent_id=consent_id,
        credit_code=current["credit_code"],
        occurred_at=now,
    )
    return get(conn, caller, consent_id)
