"""Every denial reason of the consent policy, with times on both sides of each edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policies.consent import ConsentRules, StoredConsent, decide

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CODE = "9144030071526726XG"


def consent(**overrides: object) -> StoredConsent:
    values: dict[str, object] = {
        "id": "cns_1",
        "credit_code": CODE,
        "grantee_client_id": "bank-a",
        "registrant_client_id": "platform-p",
        "purpose": "loan_application",
        "scopes": frozenset({"basic", "tax"}),
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=1),
        "revoked": False,
    }
    values.update(overrides)
    return StoredConsent(**values)  # type: ignore[arg-type]


def run(stored: StoredConsent | None, client: str = "bank-a", **kwargs: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "consent_id": "cns_1",
        "client_id": client,
        "credit_code": CODE,
        "wanted": frozenset({"basic", "penalties"}),
        "now": NOW,
    }
    args.update(kwargs)
    return decide(stored, **args)  # type: ignore[arg-type]


def test_allows_with_the_permitted_sections() -> None:
    decision = run(consent())
    assert decision.allowed
    assert decision.sections == {"basic"}


@pytest.mark.parametrize(
    ("stored", "kwargs", "reason"),
    [
        (consent(), {"consent_id": None}, "missing"),
        (None, {}, "not_found"),
        (consent(grantee_client_id="bank-b", registrant_client_id="bank-b"), {}, "not_found"),
        (consent(grantee_client_id="bank-b", registrant_client_id="bank-a"), {}, "wrong_grantee"),
        (consent(credit_code="914403001922038216"), {}, "wrong_enterprise"),
        (consent(revoked=True), {}, "revoked"),
        (consent(valid_until=NOW), {}, "expired"),
        (consent(valid_from=NOW + timedelta(seconds=1)), {}, "not_yet_valid"),
        (consent(), {"purposes": frozenset({"credit_review"})}, "purpose_not_allowed"),
    ],
)
def test_each_denial_reason(stored: StoredConsent | None, kwargs: dict, reason: str) -> None:
    decision = run(stored, **kwargs)
    assert not decision.allowed
    assert decision.reason == reason


def test_edges_of_validity() -> None:
    assert run(consent(valid_until=NOW + timedelta(microseconds=1))).allowed
    assert run(consent(valid_from=NOW)).allowed


def test_rules_file_is_validated(tmp_path: Path) -> None:
    rules = ConsentRules.load(Path("config/consent.yaml"))
    assert rules.purposes["loan_application"].max_days == 90
    bad = tmp_path / "consent.yaml"
    bad.write_text(
        "max_validity_days: 30\npurposes:\n  loan_application: {max_days: 90}\nsections: [basic]\n"
    )
    with pytest.raises(ValueError, match="max_days exceeds"):
        ConsentRules.load(bad)
    bad.write_text("purposes: {nonsense: {max_days: 1}}\nsections: [basic]\n")
    with pytest.raises(ValueError, match=r"consent\.yaml"):
        ConsentRules.load(bad)
