"""The code flow's purge: what is spent and can revoke nothing goes, a bounded batch
at a time; a redeemed code and a rotated refresh token stay while a second use
could still revoke what they issued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from gateway.background import purge_grants
from gateway.client import ConsentGrant, CreditReportAsk, GatewayClient, Pushed, RefusedToken
from gateway.consents.principal import PortalPrincipal
from gateway.grants.purge import Purged, purge_spent
from gateway.state import state_of
from gateway.store.tables import oauth_codes, oauth_refresh_tokens, oauth_requests
from testkit.builders import code
from testkit.clients import ISSUER, register

REDIRECT = "https://bank-a.example/callback"
PERSON = PortalPrincipal.of(b"k" * 32, "oidc-sub-1", code(1), "legal_representative")
DAY = timedelta(days=1)


def bank_on(client: TestClient, engine: Engine) -> GatewayClient:
    bank = register(engine, "bank-a", org_code="BOCD", redirect_uris=[REDIRECT])
    return GatewayClient(ISSUER, bank.client_id, bank.key, kid=bank.kid, http=client)


def approved(client: TestClient, bank: GatewayClient) -> tuple[Pushed, str]:
    ask = CreditReportAsk(code(1), "credit_review", ["basic"], datetime.now(UTC) + 30 * DAY)
    pushed = bank.push(ask, REDIRECT)
    flow = state_of(client.app).code_flow  # type: ignore[arg-type]
    url = client.portal.call(flow.approve, pushed.request_uri, "bank-a", PERSON)  # type: ignore[union-attr]
    return pushed, bank.callback(str(url), pushed)


def rows(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            len(conn.execute(select(table)).all())
            for table in (oauth_requests, oauth_codes, oauth_refresh_tokens)
        )


def purge(engine: Engine, at: datetime, limit: int = 100) -> Purged:
    with engine.begin() as conn:
        return purge_spent(conn, limit, DAY, now=at)


def test_spent_and_dead_rows_go_live_ones_stay(app_client: TestClient, engine: Engine) -> None:
    bank = bank_on(app_client, engine)
    now = datetime.now(UTC)
    pushed, redeemed = approved(app_client, bank)
    grant = bank.redeem(redeemed, pushed)
    approved(app_client, bank)  # a code never redeemed
    bank.push(CreditReportAsk(code(1), "credit_review", ["basic"], now + DAY), REDIRECT)
    assert rows(engine) == (3, 2, 1)
    assert purge(engine, now) == (0, 0, 0)  # nothing has expired yet
    # An hour on: every request and the unredeemed code have expired; the
    # redeemed code's refresh family lives, so the code stays to catch a reuse.
    assert purge(engine, now + timedelta(hours=1)) == (3, 1, 0)
    # Past the consent's end the family is dead: the code can revoke nothing
    # more and goes; the family's tokens are kept the retention after its end.
    assert purge(engine, now + 30 * DAY + timedelta(hours=1)) == (0, 1, 0)
    assert purge(engine, now + 31 * DAY + timedelta(hours=1)) == (0, 0, 1)
    assert rows(engine) == (0, 0, 0)
    assert grant.refresh_token is not None


def test_a_kept_code_still_revokes_on_reuse_and_a_revoked_family_goes_later(
    app_client: TestClient, engine: Engine
) -> None:
    bank = bank_on(app_client, engine)
    pushed, redeemed = approved(app_client, bank)
    grant = bank.redeem(redeemed, pushed)
    rotated = ConsentGrant(**{f: getattr(grant, f) for f in ConsentGrant.__slots__})
    bank.refresh(grant)
    now = datetime.now(UTC)
    purge(engine, now + timedelta(hours=1))
    with pytest.raises(RefusedToken, match="already used"):
        bank.redeem(redeemed, pushed)  # the kept code: its reuse revokes the family
    with pytest.raises(RefusedToken):
        bank.refresh(grant)
    # Revoked now: kept for the retention, then purged with the code.
    assert purge(engine, now + timedelta(hours=2)) == (0, 0, 0)
    assert purge(engine, now + 2 * DAY) == (0, 1, 2)
    with pytest.raises(RefusedToken, match="unknown"):
        bank.refresh(rotated)


def test_a_round_is_bounded(app_client: TestClient, engine: Engine) -> None:
    bank = bank_on(app_client, engine)
    for _ in range(3):
        approved(app_client, bank)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert purge(engine, later, limit=2) == (2, 2, 0)
    assert purge(engine, later, limit=2) == (1, 1, 0)


def test_the_background_round_uses_the_settings(app_client: TestClient, engine: Engine) -> None:
    approved(app_client, bank_on(app_client, engine))
    state = state_of(app_client.app)  # type: ignore[arg-type]
    assert app_client.portal.call(purge_grants, state) == (0, 0, 0)  # type: ignore[union-attr]
    assert rows(engine) == (1, 1, 0)
