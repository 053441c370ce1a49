"""The sandbox monitor's risk rules, each fed events through a MemoryHistory."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policies.risk.base import Finding, MonitorEvent, Rule
from policies.risk.common import MAX_EVIDENCE, SHANGHAI
from policies.risk.config import RiskRules, build_rules
from policies.risk.memory import MemoryHistory
from policies.risk.multi_lending import MultiLendingRule
from policies.risk.new_entity_risk import NewEntityRiskRule, months_before
from policies.risk.overdue_default import OverdueDefaultConfig, OverdueDefaultRule
from policies.risk.platform_stress import PlatformStressRule
from policies.risk.post_loan_deterioration import PostLoanDeteriorationRule
from policies.risk.query_abuse import QueryAbuseRule
from policies.risk.supply_chain_cluster import SupplyChainClusterRule
from testkit.builders import code

CONFIG_FILE = Path(__file__).parents[2] / "config" / "risk_rules.yaml"
CONFIG = RiskRules.load(CONFIG_FILE)
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)
CORE = code(900)
REP = "ab" * 32
_seq = itertools.count(1)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def loan(
    event_type: str, when: datetime, *, n: int = 1, platform: str = "kechuangtong", **attrs: Any
) -> MonitorEvent:
    attrs = {"platform": platform, "event_type": event_type, "loan_no": f"L-{n}", **attrs}
    return MonitorEvent(f"loan:{platform}:m{next(_seq):05d}", "loan", when, code(n), attrs)


def record(category: str, when: datetime, *, n: int = 1, **data: Any) -> MonitorEvent:
    seq = next(_seq)
    attrs = {"category": category, "record_id": f"R-{seq}", "version": 1, "data": data}
    return MonitorEvent(f"record:{seq:05d}:v1", "record", when, code(n), attrs)


def query(when: datetime, *, n: int = 1, bank: str = "BOCD", client: str = "bocd") -> MonitorEvent:
    attrs = {"client_id": client, "bank_code": bank, "route": "report"}
    return MonitorEvent(f"query:{next(_seq):06d}", "query", when, code(n), attrs)


def denied(when: datetime, *, client: str = "bocd") -> MonitorEvent:
    attrs = {"client_id": client, "bank_code": "BOCD", "reason": "no_consent"}
    return MonitorEvent(f"denied:{next(_seq):06d}", "consent_denied", when, code(1), attrs)


def run(rules: Rule | Sequence[Rule], events: Iterable[MonitorEvent]) -> list[Finding]:
    rules = [rules] if not isinstance(rules, Sequence) else rules
    history, found = MemoryHistory(), list[Finding]()
    for event in events:
        history.add(event)
        for rule in rules:
            found.extend(rule.evaluate(event, history))
    return found


def subjects(findings: Iterable[Finding]) -> set[tuple[str, str, str]]:
    return {(f.rule, f.subject, f.severity) for f in findings}


# -- config -------------------------------------------------------------------------------------


def test_shipped_config_builds_every_rule_in_order() -> None:
    names = [rule.name for rule in build_rules(CONFIG)]
    assert names == [
        "multi_lending",
        "post_loan_deterioration",
        "overdue_default",
        "supply_chain_cluster",
        "query_abuse",
        "new_entity_risk",
        "platform_stress",
    ]
    assert CONFIG.retention == timedelta(days=2 * 1095)


def test_disabled_rule_is_not_built(tmp_path: Path) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    path = tmp_path / "rules.yaml"
    path.write_text(
        text.replace("platform_stress:\n  enabled: true", "platform_stress:\n  enabled: false")
    )
    assert "platform_stress" not in [r.name for r in build_rules(RiskRules.load(path))]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "  window_days: 30\n  min_platforms",
            "  window_days: 0\n  min_platforms",
            "multi_lending.window_days",
        ),
        ("  min_suppliers: 3", "  min_supplier: 3", "supply_chain_cluster.min_supplier"),
        ("  spike_severity: medium", "  spike_severity: urgent", "query_abuse.spike_severity"),
        (
            "    - {days_overdue: 60, severity: high}",
            "    - {days_overdue: 20, severity: high}",
            "overdue_default.ladder",
        ),
        (
            "    - {days_overdue: 90, severity: critical}",
            "    - {days_overdue: 90, severity: low}",
            "overdue_default.ladder",
        ),
        ("  tax_ratings: [C, D]", "  tax_ratings: [C, E]", "post_loan_deterioration.tax_ratings"),
        (
            "  max_overdue_ratio: 0.15",
            "  max_overdue_ratio: 1.5",
            "platform_stress.max_overdue_ratio",
        ),
        ("new_entity_risk:", "old_entity_risk:", "new_entity_risk: Field required"),
        ("  min_fine_fen: 1000000", "  min_fine_fen: lots", "post_loan_deterioration.min_fine_fen"),
    ],
)
def test_broken_config_names_file_and_field(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ValueError, match=r"rules\.yaml") as caught:
        RiskRules.load(path)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "(top level)"), ("multi_lending: [1\n", "while parsing"), ("- a\n- b\n", "(top level)")],
)
def test_unreadable_config_names_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"rules\.yaml") as caught:
        RiskRules.load(path)
    assert problem in str(caught.value)


def test_missing_config_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"absent\.yaml"):
        RiskRules.load(tmp_path / "absent.yaml")


# -- memory history -----------------------------------------------------------------------------


def test_memory_history_is_idempotent_and_ordered_by_event_time() -> None:
    history = MemoryHistory()
    late, early = query(at(hours=2)), query(at())
    assert history.add(late) and history.add(early)
    assert not history.add(late)
    assert list(history.events(since=at(-1), until=at(1))) == [early, late]
    assert history.events(since=at(hours=1), until=at(1), kind="query") == [late]
    assert history.events(since=at(-1), until=at(1), credit_code=code(2)) == []
    assert history.events(since=at(-1), until=at(1), attr=("client_id", "other")) == []


def test_memory_history_keeps_latest_registration_by_event_time() -> None:
    history = MemoryHistory()
    history.add(record("registration", at(5), registered_on="2024-12-01", legal_rep_hash=REP))
    history.add(record("registration", at(1), registered_on="2020-01-01", legal_rep_hash="old"))
    assert history.registered_on(code(1)) == date(2024, 12, 1)
    assert history.legal_rep_hash(code(1)) == REP
    assert history.registered_on(code(2)) is None


def test_prune_drops_old_events_but_not_registrations_or_ids() -> None:
    history = MemoryHistory(retention=timedelta(days=30))
    old = record("registration", at(), registered_on="2024-12-01", legal_rep_hash=REP)
    history.add(old)
    history.add(query(at(40)))
    assert history.prune() == 1
    assert len(history) == 1
    assert history.events(since=at(-1), until=at(50), credit_code=code(1), kind="query")
    assert history.registered_on(code(1)) == date(2024, 12, 1)
    assert not history.add(old)


# -- multi_lending ------------------------------------------------------------------------------

MULTI = MultiLendingRule(CONFIG.multi_lending)


def test_multi_lending_fires_on_three_platforms_within_thirty_days() -> None:
    events = [
        loan("application_submitted", at(0), platform="kechuangtong"),
        loan("application_submitted", at(10), platform="tianfu_rongtong"),
        loan("application_submitted", at(30), platform="nongdaitong"),
    ]
    [finding] = run(MULTI, events)
    assert finding.subject == f"enterprise:{code(1)}"
    assert finding.severity == "high"
    assert finding.evidence == tuple(sorted(e.id for e in events))
    assert finding.details["platforms"] == ["kechuangtong", "nongdaitong", "tianfu_rongtong"]


def test_multi_lending_needs_distinct_platforms_inside_the_window() -> None:
    twice = [
        loan("application_submitted", at(0), platform="kechuangtong"),
        loan("application_submitted", at(1), platform="kechuangtong"),
        loan("application_submitted", at(2), platform="nongdaitong"),
    ]
    spread = [
        loan("application_submitted", at(0), platform="kechuangtong"),
        loan("application_submitted", at(10), platform="tianfu_rongtong"),
        loan("application_submitted", at(30, minutes=1), platform="nongdaitong"),
    ]
    others = [loan("application_submitted", at(i), n=i + 1, platform=f"p{i}") for i in range(3)]
    assert run(MULTI, twice) == []
    assert run(MULTI, spread) == []
    assert run(MULTI, others) == []


def test_multi_lending_counts_banks_that_queried() -> None:
    five = [query(at(i), bank=f"B{i}", client=f"c{i}") for i in range(5)]
    assert run(MULTI, five[:4]) == []
    findings = run(MULTI, five)
    assert subjects(findings) == {("multi_lending", f"enterprise:{code(1)}", "medium")}
    assert findings[-1].details["banks"] == ["B0", "B1", "B2", "B3", "B4"]


def test_multi_lending_judges_a_late_application_in_its_own_window() -> None:
    late = loan("application_submitted", at(-5), platform="nongdaitong")
    events = [
        loan("application_submitted", at(0), platform="kechuangtong"),
        loan("application_submitted", at(20), platform="tianfu_rongtong"),
        loan("application_submitted", at(40), platform="kechuangtong"),
        late,
    ]
    [finding] = run(MULTI, events)
    assert late.id in finding.evidence
    assert finding.details["until"] == (late.occurred_at + timedelta(days=30)).isoformat()


def test_multi_lending_ignores_events_missing_attrs() -> None:
    bare = MonitorEvent("loan:x:1", "loan", at(), code(1), {"event_type": "application_submitted"})
    anonymous = MonitorEvent(
        "loan:x:2", "loan", at(), None, {"event_type": "application_submitted"}
    )
    assert run(MULTI, [bare, anonymous]) == []


# -- post_loan_deterioration --------------------------------------------------------------------

POST_LOAN = PostLoanDeteriorationRule(CONFIG.post_loan_deterioration)


@pytest.mark.parametrize(
    ("category", "data", "severity"),
    [
        ("penalty", {"fine_fen": 1_000_000}, "high"),
        ("black_list", {"list_name": "严重失信主体名单"}, "critical"),
        ("judgment_debtor", {"dishonest": True}, "critical"),
        ("tax_rating", {"rating": "D"}, "high"),
        ("tax_rating", {"rating": "C"}, "high"),
    ],
)
def test_post_loan_deterioration_fires_while_a_loan_is_live(
    category: str, data: dict[str, Any], severity: str
) -> None:
    disbursed = loan("loan_disbursed", at(0))
    bad = record(category, at(100), **data)
    [finding] = run(POST_LOAN, [disbursed, bad])
    assert finding.subject == f"enterprise:{code(1)}"
    assert finding.severity == severity
    assert finding.evidence == tuple(sorted([disbursed.id, bad.id]))
    assert finding.details["live_loans"] == ["kechuangtong:L-1"]


@pytest.mark.parametrize(
    ("category", "data"),
    [
        ("penalty", {"fine_fen": 999_999}),
        ("penalty", {}),
        ("judgment_debtor", {"dishonest": False}),
        ("tax_rating", {"rating": "B"}),
        ("tax_rating", {"rating": "M"}),
        ("license", {}),
    ],
)
def test_post_loan_deterioration_ignores_records_below_the_bar(
    category: str, data: dict[str, Any]
) -> None:
    assert run(POST_LOAN, [loan("loan_disbursed", at(0)), record(category, at(1), **data)]) == []


def test_post_loan_deterioration_needs_a_live_loan() -> None:
    penalty = record("penalty", at(100), fine_fen=5_000_000)
    settled = [loan("loan_disbursed", at(0)), loan("loan_settled", at(50)), penalty]
    too_old = [loan("loan_disbursed", at(-1096)), penalty]
    before = [record("black_list", at(-1)), loan("loan_disbursed", at(0))]
    other = [loan("loan_disbursed", at(0), n=2), penalty]
    for events in (settled, too_old, before, other):
        assert run(POST_LOAN, events) == []


def test_post_loan_deterioration_judges_a_late_disbursal() -> None:
    penalty = record("penalty", at(100), fine_fen=5_000_000)
    disbursed = loan("loan_disbursed", at(0))
    [finding] = run(POST_LOAN, [penalty, disbursed])
    assert finding.evidence == tuple(sorted([disbursed.id, penalty.id]))
    settled_first = [penalty, loan("loan_settled", at(50)), loan("loan_disbursed", at(0))]
    assert run(POST_LOAN, settled_first) == []


def test_post_loan_deterioration_ignores_malformed_records() -> None:
    broken = MonitorEvent("record:1:v1", "record", at(1), code(1), {"category": "penalty"})
    strings = record("penalty", at(2), fine_fen="a lot")
    assert run(POST_LOAN, [loan("loan_disbursed", at(0)), broken, strings]) == []


# -- overdue_default ----------------------------------------------------------------------------

OVERDUE = OverdueDefaultRule(CONFIG.overdue_default)


@pytest.mark.parametrize(
    ("days", "severity"),
    [(29, None), (30, "medium"), (59, "medium"), (60, "high"), (89, "high"), (90, "critical")],
)
def test_overdue_severity_ladder(days: int, severity: str | None) -> None:
    event = loan("repayment_overdue", at(), n=7, days_overdue=days)
    found = run(OVERDUE, [event])
    assert [f.severity for f in found] == ([severity] if severity else [])
    for finding in found:
        assert finding.subject == "loan:kechuangtong:L-7"
        assert finding.credit_code == code(7)
        assert finding.evidence == (event.id,)


def test_default_is_critical_and_ladder_is_configurable() -> None:
    [finding] = run(OVERDUE, [loan("loan_defaulted", at())])
    assert finding.severity == "critical"
    strict = OverdueDefaultRule(
        OverdueDefaultConfig.model_validate({"ladder": [{"days_overdue": 1, "severity": "low"}]})
    )
    [finding] = run(strict, [loan("repayment_overdue", at(), days_overdue=1)])
    assert finding.severity == "low"


def test_overdue_ignores_events_missing_attrs() -> None:
    events = [
        loan("repayment_overdue", at()),
        loan("repayment_overdue", at(), days_overdue=True),
        loan("repayment_received", at(), days_overdue=90),
        MonitorEvent("loan:x:1", "loan", at(), code(1), {"event_type": "loan_defaulted"}),
    ]
    assert run(OVERDUE, events) == []


# -- supply_chain_cluster -----------------------------------------------------------------------

CLUSTER = SupplyChainClusterRule(CONFIG.supply_chain_cluster)


def overdue_supplier(n: int, days: float) -> MonitorEvent:
    return loan("repayment_overdue", at(days), n=n, days_overdue=3, core_enterprise_code=CORE)


def test_supply_chain_cluster_fires_on_three_suppliers() -> None:
    events = [overdue_supplier(1, 0), overdue_supplier(2, 15), overdue_supplier(3, 30)]
    [finding] = run(CLUSTER, events)
    assert finding.subject == f"core:{CORE}"
    assert finding.severity == "high"
    assert finding.details["suppliers"] == sorted([code(1), code(2), code(3)])


def test_supply_chain_cluster_needs_distinct_suppliers_in_the_window() -> None:
    same_twice = [overdue_supplier(1, 0), overdue_supplier(1, 1), overdue_supplier(2, 2)]
    spread = [overdue_supplier(1, 0), overdue_supplier(2, 15), overdue_supplier(3, 30.01)]
    other_core = [
        overdue_supplier(1, 0),
        overdue_supplier(2, 1),
        loan("repayment_overdue", at(2), n=3, core_enterprise_code=code(901)),
    ]
    disbursed = [
        overdue_supplier(1, 0),
        overdue_supplier(2, 1),
        loan("loan_disbursed", at(2), n=3, core_enterprise_code=CORE),
    ]
    for events in (same_twice, spread, other_core, disbursed):
        assert run(CLUSTER, events) == []


def test_supply_chain_cluster_judges_a_late_event() -> None:
    on_time = [overdue_supplier(1, 0), overdue_supplier(2, 25), overdue_supplier(3, 40)]
    assert run(CLUSTER, on_time) == []
    late = overdue_supplier(3, -4)
    [finding] = run(CLUSTER, [*on_time, late])
    assert late.id in finding.evidence


# -- query_abuse --------------------------------------------------------------------------------

ABUSE = QueryAbuseRule(CONFIG.query_abuse)


def test_query_abuse_fires_on_five_denials_within_an_hour() -> None:
    denials = [denied(at(minutes=15 * i)) for i in range(5)]
    assert run(ABUSE, denials[:4]) == []
    [finding] = run(ABUSE, denials)
    assert finding.subject == "bank:bocd"
    assert finding.severity == "high"
    assert finding.credit_code is None
    assert finding.evidence == tuple(sorted(e.id for e in denials))


def test_query_abuse_denials_spread_or_from_other_clients_do_not_fire() -> None:
    spread = [denied(at(minutes=15.1 * i)) for i in range(5)]
    mixed = [denied(at(minutes=i), client=f"c{i % 2}") for i in range(8)]
    assert run(ABUSE, spread) == []
    assert run(ABUSE, mixed) == []


def test_query_abuse_judges_a_late_denial() -> None:
    on_time = [denied(at(minutes=20 + 10 * i)) for i in range(4)] + [denied(at(hours=2))]
    assert run(ABUSE, on_time) == []
    [finding] = run(ABUSE, [*on_time, denied(at(minutes=5))])
    assert finding.details["denials"] == 5


def habit(per_hour: int, client: str = "bocd") -> list[MonitorEvent]:
    """Evenly spaced queries for 8 days up to T0 - 64 min: exactly `per_hour` in any baseline."""
    step = timedelta(minutes=60 / per_hour)
    last = at(minutes=-64)
    return [query(last - j * step, client=client) for j in range(8 * 24 * per_hour)]


def burst(count: int, client: str = "bocd") -> list[MonitorEvent]:
    return [query(at(minutes=-59 + 59 * i / count), client=client) for i in range(count)]


def test_query_spike_fires_far_above_the_banks_own_habit() -> None:
    found = run(ABUSE, [*habit(1), *burst(20)])
    assert subjects(found) == {("query_abuse", "bank:bocd", "medium")}
    assert found[-1].details["queries"] == 20
    assert found[-1].details["hourly_average"] == 1.0


def test_query_spike_needs_both_the_factor_and_the_minimum() -> None:
    assert run(ABUSE, [*habit(4), *burst(20)]) == []  # 20 is not above 5 x 4
    assert run(ABUSE, [*habit(4), *burst(21)]) != []
    assert run(ABUSE, burst(19)) == []  # a new bank: its average is zero, the minimum holds
    assert run(ABUSE, [query(at(hours=-3)), query(at())]) == []


def test_query_spike_judges_a_late_query_in_its_own_hour() -> None:
    # 19 queries in the hour, the 20th arrives last but happened first.
    recent = burst(20)
    found = run(ABUSE, [*habit(1), *recent[1:], recent[0]])
    assert subjects(found) == {("query_abuse", "bank:bocd", "medium")}
    assert recent[0].id in found[-1].evidence


def test_query_abuse_ignores_events_without_a_client() -> None:
    event = MonitorEvent("denied:x", "consent_denied", at(), code(1), {"reason": "no_consent"})
    assert run(ABUSE, [event] * 6) == []


# -- new_entity_risk ----------------------------------------------------------------------------

NEW_ENTITY = NewEntityRiskRule(CONFIG.new_entity_risk)
BIG = 500_000_000


def registered(n: int, on: str, rep: str = REP) -> MonitorEvent:
    return record("registration", at(-400), n=n, registered_on=on, legal_rep_hash=rep)


def test_young_enterprise_applying_for_a_large_loan() -> None:
    # T0 is 2025-03-03: six months before is 2024-09-03.
    young = [registered(1, "2024-09-04"), loan("application_submitted", at(), amount_fen=BIG)]
    [finding] = run(NEW_ENTITY, young)
    assert finding.subject == f"enterprise:{code(1)}"
    assert finding.severity == "medium"
    assert finding.details == {
        "registered_on": "2024-09-04",
        "applied_on": "2025-03-03",
        "amount_fen": BIG,
    }


@pytest.mark.parametrize(
    ("registered_on", "amount"),
    [("2024-09-03", BIG), ("2024-09-04", BIG - 1), (None, BIG), ("not a day", BIG)],
)
def test_young_enterprise_just_below_the_bars(registered_on: str | None, amount: int) -> None:
    events = [loan("application_submitted", at(), amount_fen=amount)]
    if registered_on is not None:
        events.insert(0, registered(1, registered_on))
    assert run(NEW_ENTITY, events) == []


def test_months_before_clamps_to_the_end_of_the_month() -> None:
    assert months_before(date(2025, 8, 31), 6) == date(2025, 2, 28)
    assert months_before(date(2025, 3, 3), 6) == date(2024, 9, 3)
    assert months_before(date(2025, 1, 15), 13) == date(2023, 12, 15)


def test_one_legal_representative_behind_three_applicants() -> None:
    events = [registered(n, "2015-01-01") for n in (1, 2, 3)]
    events += [loan("application_submitted", at(10 * i), n=n) for i, n in enumerate((1, 2, 3))]
    [finding] = run(NEW_ENTITY, events)
    assert finding.subject == f"legal_rep:{REP[:12]}"
    assert finding.severity == "high"
    assert finding.credit_code is None
    assert finding.details["enterprises"] == sorted([code(1), code(2), code(3)])


def test_legal_representative_needs_three_distinct_enterprises_in_the_window() -> None:
    regs = [registered(1, "2015-01-01"), registered(2, "2015-01-01")]
    regs.append(registered(3, "2015-01-01", rep="cd" * 32))
    two = [loan("application_submitted", at(i), n=n) for i, n in enumerate((1, 2, 3, 1))]
    spread = [loan("application_submitted", at(31 * i), n=n) for i, n in enumerate((1, 2))]
    assert run(NEW_ENTITY, regs + two) == []
    assert run(NEW_ENTITY, [*regs, registered(3, "2015-01-01"), *spread]) == []


def test_legal_representative_judges_a_late_application() -> None:
    events = [registered(n, "2015-01-01") for n in (1, 2, 3)]
    events += [loan("application_submitted", at(d), n=n) for d, n in ((0, 1), (25, 2))]
    assert run(NEW_ENTITY, events) == []
    [finding] = run(NEW_ENTITY, [*events, loan("application_submitted", at(-4), n=3)])
    assert len(finding.details["enterprises"]) == 3


# -- platform_stress ----------------------------------------------------------------------------

STRESS = PlatformStressRule(CONFIG.platform_stress)


def book(loans: int, overdue: int, *, day: float = 0) -> list[MonitorEvent]:
    disbursed = [loan("loan_disbursed", at(day), n=n) for n in range(loans)]
    late = [loan("repayment_overdue", at(day + 5), n=n, days_overdue=3) for n in range(overdue)]
    return disbursed + late


def test_platform_stress_fires_above_the_ratio() -> None:
    found = run(STRESS, book(20, 4))
    assert subjects(found) == {("platform_stress", "platform:kechuangtong", "high")}
    assert found[-1].details["ratio"] == 0.2
    assert len(found[-1].evidence) == 4


def test_platform_stress_below_the_bars() -> None:
    assert run(STRESS, book(20, 3)) == []  # exactly 15%: not above
    assert run(STRESS, book(19, 19)) == []  # too few loans for a ratio
    repeated = [*book(20, 3), loan("repayment_overdue", at(6), n=0, days_overdue=4)]
    assert run(STRESS, repeated) == []  # one loan overdue twice is one loan


def test_platform_stress_judges_a_late_event_in_its_own_window() -> None:
    # The platform disbursed 20 loans at day 0 and 20 more at day 40; a late
    # overdue event from day 5 is judged against the first 20 only.
    events = book(20, 3) + [loan("loan_disbursed", at(40), n=n) for n in range(100, 120)]
    late = loan("repayment_overdue", at(5), n=3, days_overdue=3)
    found = run(STRESS, [*events, late])
    [finding] = found
    assert finding.details["until"] == at(5).isoformat()
    assert finding.details["disbursed_loans"] == 20
    assert late.id in finding.evidence


def test_evidence_is_capped() -> None:
    found = run(STRESS, book(200, 120))
    assert len(found[-1].evidence) == MAX_EVIDENCE
    assert list(found[-1].evidence) == sorted(found[-1].evidence)


# -- determinism --------------------------------------------------------------------------------


def registrations() -> list[MonitorEvent]:
    regs = [registered(n, "2014-05-01") for n in (1, 2, 3)]
    return [*regs, registered(4, "2025-01-10", rep="cd" * 32)]


def scenario() -> list[MonitorEvent]:
    """A month of events that raises every order-independent rule."""
    return [
        loan("loan_disbursed", at(-30), n=1),
        record("judgment_debtor", at(3), n=1, dishonest=True),
        *(loan("application_submitted", at(i), n=1, platform=f"p{i}") for i in range(3)),
        loan("application_submitted", at(4), n=2),
        loan("application_submitted", at(5), n=3),
        loan("application_submitted", at(6), n=4, amount_fen=BIG),
        *(overdue_supplier(n, n) for n in (5, 6, 7)),
        loan("repayment_overdue", at(8), n=8, days_overdue=61),
        loan("loan_defaulted", at(9), n=9),
        *(denied(at(minutes=5 * i)) for i in range(5)),
        *(query(at(i), n=2, bank=f"B{i}", client=f"c{i}") for i in range(5)),
    ]


def test_findings_do_not_depend_on_arrival_order() -> None:
    rules = [r for r in build_rules(CONFIG) if r.name != "platform_stress"]
    # Registration facts are not windowed: new_entity_risk reads them as known
    # when an application arrives, so they lead in every order.
    facts, events = registrations(), scenario()
    expected = subjects(run(rules, facts + events))
    assert {rule for rule, _, _ in expected} == {r.name for r in rules}
    for seed in range(5):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert subjects(run(rules, facts + shuffled)) == expected
        assert subjects(run(rules, facts + shuffled[::-1])) == expected
