"""The rate policy's rules, on the in-process backend with a hand-driven clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies.rate import MemoryLimiter, RateConfig, RatePlan, RateRequest, headers

# 2026-11-27 15:59:50 UTC is 23:59:50 in Chengdu: ten seconds before the day turns.
BEFORE_MIDNIGHT = datetime(2026, 11, 27, 15, 59, 50, tzinfo=UTC).timestamp()
PLAN = RatePlan(rate_per_s=10, burst=5, reports_per_day=3)


class Clock:
    def __init__(self, now: float = BEFORE_MIDNIGHT - 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def report(client: str = "bank-a", **overrides: object) -> RateRequest:
    fields: dict[str, object] = {
        "client_id": client,
        "plan": PLAN.model_copy(update={"reports_per_day": 1000}),
        "cost": 1,
        "reports": 1,
        "enterprise_cap": 1000,
        "credit_code": "91510100MA61R8XX1B",
    }
    fields.update(overrides)
    return RateRequest(**fields)  # type: ignore[arg-type]


def test_burst_is_admitted_exactly_then_refused_until_one_interval_passes() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    request = RateRequest("bank-a", PLAN, cost=1)
    admitted = [limiter.check_now(request).allowed for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    refused = limiter.check_now(request)
    assert refused.refused == "rate"
    assert refused.retry_after_s == 1  # 0.1 s rounds up to a whole second
    clock.now += 0.1
    assert limiter.check_now(request).allowed
    assert not limiter.check_now(request).allowed


def test_cost_spends_several_units_and_a_refusal_spends_none() -> None:
    limiter = MemoryLimiter(clock=Clock())
    heavy = RateRequest("bank-a", PLAN, cost=3)
    assert limiter.check_now(heavy).allowed
    assert not limiter.check_now(heavy).allowed  # 3 + 3 > 5
    light = RateRequest("bank-a", PLAN, cost=2)
    assert limiter.check_now(light).allowed  # the refusal above charged nothing


def test_clients_are_counted_apart() -> None:
    limiter = MemoryLimiter(clock=Clock())
    for _ in range(5):
        assert limiter.check_now(RateRequest("bank-a", PLAN, cost=1)).allowed
    assert not limiter.check_now(RateRequest("bank-a", PLAN, cost=1)).allowed
    assert limiter.check_now(RateRequest("bank-b", PLAN, cost=1)).allowed


def test_daily_quota_resets_at_chengdu_midnight_not_utc() -> None:
    clock = Clock(BEFORE_MIDNIGHT)
    limiter = MemoryLimiter(clock=clock)
    request = report(plan=PLAN)
    for _ in range(3):
        assert limiter.check_now(request).allowed
        clock.now += 1
    refused = limiter.check_now(request)
    assert refused.refused == "daily"
    assert refused.retry_after_s == 7  # 23:59:53 → midnight
    clock.now = BEFORE_MIDNIGHT + 10  # 00:00:00 Asia/Shanghai
    assert limiter.check_now(request).allowed


def test_enterprise_cap_counts_every_bank_together() -> None:
    limiter = MemoryLimiter(clock=Clock())
    assert limiter.check_now(report("bank-a", enterprise_cap=2)).allowed
    assert limiter.check_now(report("bank-b", enterprise_cap=2)).allowed
    refused = limiter.check_now(report("bank-c", enterprise_cap=2))
    assert refused.refused == "enterprise"
    other = report("bank-c", enterprise_cap=2, credit_code="91510100MA6CGUGA1W")
    assert limiter.check_now(other).allowed


def test_consent_cap_applies_only_to_its_consent() -> None:
    limiter = MemoryLimiter(clock=Clock())
    capped = report(consent_id="cns_1", consent_daily=2)
    assert limiter.check_now(capped).allowed
    assert limiter.check_now(capped).allowed
    assert limiter.check_now(capped).refused == "consent"
    assert limiter.check_now(report(consent_id="cns_2", consent_daily=2)).allowed


def test_a_refusal_by_one_limit_charges_none_of_the_others() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    assert limiter.check_now(report("bank-a", enterprise_cap=1)).allowed
    before = limiter.check_now(report("bank-b", enterprise_cap=1, reports=0))
    assert limiter.check_now(report("bank-b", enterprise_cap=1)).refused == "enterprise"
    after = limiter.check_now(report("bank-b", enterprise_cap=1, reports=0))
    # bank-b's rate went down by one per admitted probe, not for the refusal.
    assert before.limits[0].remaining - after.limits[0].remaining == 1


def test_headers_name_every_applicable_limit() -> None:
    limiter = MemoryLimiter(clock=Clock())
    result = limiter.check_now(report(consent_id="cns_1", consent_daily=4))
    rendered = headers(result)
    assert rendered["RateLimit-Policy"] == (
        '"rate";q=5;w=1, "daily";q=1000;w=86400, "enterprise";q=1000;w=86400, "consent";q=4;w=86400'
    )
    assert rendered["RateLimit"].startswith('"rate";r=4;t=1, "daily";r=999;t=')
    plain = headers(limiter.check_now(RateRequest("bank-b", PLAN, cost=1)))
    assert plain["RateLimit-Policy"] == '"rate";q=5;w=1'


def test_local_share_divides_every_limit() -> None:
    config = RateConfig.load(Path("config/rates.yaml"))
    shared = config.shared(2)
    standard, half = config.plans["standard"], shared.plans["standard"]
    assert half.rate_per_s == standard.rate_per_s / 2
    assert half.burst == standard.burst // 2
    assert half.reports_per_day == standard.reports_per_day // 2
    assert shared.enterprise_reports_per_day == config.enterprise_reports_per_day // 2
    assert config.shared(1) is config


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("plans: {}\ndefault_plan: x\nenterprise_reports_per_day: 1", "plans"),
        (
            "plans: {a: {rate_per_s: 1, burst: 1, reports_per_day: 1}}\n"
            "default_plan: b\nenterprise_reports_per_day: 1",
            "default_plan",
        ),
        (
            "plans: {a: {rate_per_s: 1, burst: 1, reports_per_day: 1}}\n"
            "default_plan: a\nclients: {bank-x: gold}\nenterprise_reports_per_day: 1",
            "clients.bank-x",
        ),
        (
            "plans: {a: {rate_per_s: 0, burst: 1, reports_per_day: 1}}\n"
            "default_plan: a\nenterprise_reports_per_day: 1",
            "rate_per_s",
        ),
        ("plans: [", "rates.yaml"),
    ],
)
def test_a_bad_rates_file_names_the_problem(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "rates.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        RateConfig.load(path)


# --- giving back what a failed request took -------------------------------------


def test_a_refund_gives_back_the_rate_and_every_count_it_took() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    capped = report(consent_id="cns_1", consent_daily=2, enterprise_cap=2)
    first = limiter.check_now(capped)
    assert first.charge is not None
    second = limiter.check_now(capped)
    assert second.charge is not None
    limiter.refund_now(first.charge)
    again = limiter.check_now(capped)
    assert again.allowed  # the consent's and the enterprise's second use, not a third
    assert {r.name: r.remaining for r in again.limits} == {
        "rate": 3,  # a burst of five, two taken
        "daily": 998,
        "enterprise": 0,
        "consent": 0,
    }
    assert limiter.check_now(capped).refused == "enterprise"


def test_a_refund_moves_the_rate_back_by_its_cost_alone() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    request = RateRequest("bank-a", PLAN, cost=2)
    taken = limiter.check_now(request)
    assert taken.charge is not None
    # Later requests spent theirs: those stay spent.
    assert limiter.check_now(RateRequest("bank-a", PLAN, cost=3)).allowed
    assert not limiter.check_now(RateRequest("bank-a", PLAN, cost=1)).allowed
    limiter.refund_now(taken.charge)
    assert limiter.check_now(RateRequest("bank-a", PLAN, cost=2)).allowed
    assert not limiter.check_now(RateRequest("bank-a", PLAN, cost=1)).allowed


def test_a_refund_after_the_burst_refilled_leaves_a_full_burst_not_more() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    request = RateRequest("bank-a", PLAN, cost=1)
    taken = limiter.check_now(request)
    assert taken.charge is not None
    clock.now += 60
    limiter.refund_now(taken.charge)
    assert [limiter.check_now(request).allowed for _ in range(6)] == [True] * 5 + [False]


def test_no_count_goes_below_zero_and_yesterdays_are_not_refunded() -> None:
    clock = Clock(BEFORE_MIDNIGHT)
    limiter = MemoryLimiter(clock=clock)
    yesterday = limiter.check_now(report())
    assert yesterday.charge is not None
    clock.now += 20  # 00:00:10 in Chengdu: a new day
    today = limiter.check_now(report())
    assert today.charge is not None
    limiter.refund_now(yesterday.charge)
    assert limiter.counts["client:bank-a"] == 1  # today's report stays counted
    limiter.refund_now(today.charge)
    limiter.refund_now(today.charge)
    assert limiter.counts["client:bank-a"] == 0


def test_a_refused_check_has_nothing_to_give_back() -> None:
    limiter = MemoryLimiter(clock=Clock())
    capped = report(enterprise_cap=1)
    assert limiter.check_now(capped).charge is not None
    refused = limiter.check_now(capped)
    assert refused.refused == "enterprise"
    assert refused.charge is None
