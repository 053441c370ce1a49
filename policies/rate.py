"""The rate policy: plans from config/rates.yaml, one Protocol, two backends.

A check covers every limit that applies to one request and charges all of
them or none:

- `rate`: GCRA per client (`rate_per_s` with `burst`), each route charging its cost;
- `daily`: credit reports per client per calendar day;
- `enterprise`: reports about one enterprise per day, across all banks (the
  shared ceiling);
- `consent`: reports under one consent per day (`max_daily_accesses`);
- `bank_enterprise`: reports one bank takes about one enterprise per day (its
  share of the ceiling), so one bank's use cannot spend what another needs.

Days are Asia/Shanghai calendar days. `MemoryLimiter` is exact within one
process (the embedded mode); `RedisLimiter` (policies/rate_redis.py) is exact
across any number of processes.

An allowed check's outcome carries its `Charge`; `refund` gives it back when
the request then fails (a 5xx): the rate as if the request had not come, each
report count less the request's reports, never below zero and only on the day
they were counted. A refused check charged nothing and has nothing to give back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.configfile import load_yaml

LimitName = Literal["rate", "daily", "enterprise", "consent", "bank_enterprise"]
DAY_S = 86_400
SHANGHAI_OFFSET_S = 8 * 3600  # UTC+8 all year: no daylight saving to follow
NOT_APPLIED = -1
# The daily report counts, in this order everywhere: daily, enterprise, consent,
# bank_enterprise.
Limits = tuple[int, int, int, int]


class RatePlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_per_s: float = Field(gt=0, le=100_000)
    burst: int = Field(ge=1, le=1_000_000)
    reports_per_day: int = Field(ge=0, le=10_000_000)

    @property
    def interval_us(self) -> int:
        return max(1, round(1_000_000 / self.rate_per_s))

    def share(self, parts: int) -> RatePlan:
        """This plan divided among `parts` processes (never below one request)."""
        return RatePlan(
            rate_per_s=self.rate_per_s / parts,
            burst=max(1, self.burst // parts),
            reports_per_day=self.reports_per_day // parts if self.reports_per_day else 0,
        )


class RouteCost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cost: int = Field(1, ge=0, le=1000)
    reports: int = Field(0, ge=0, le=100)


FREE_ROUTE = RouteCost()


class RateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plans: dict[str, RatePlan] = Field(min_length=1)
    default_plan: str
    clients: dict[str, str] = Field(default_factory=dict)
    enterprise_reports_per_day: int = Field(ge=1, le=10_000_000)
    # Unset: no share, the ceiling alone (one bank can then use all of it).
    enterprise_reports_per_bank_per_day: int | None = Field(None, ge=1, le=10_000_000)
    routes: dict[str, RouteCost] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _plans_exist(self) -> RateConfig:
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan: no plan named {self.default_plan!r}")
        for client_id, plan in self.clients.items():
            if plan not in self.plans:
                raise ValueError(f"clients.{client_id}: no plan named {plan!r}")
        share = self.enterprise_reports_per_bank_per_day
        if share is not None and share > self.enterprise_reports_per_day:
            raise ValueError(
                "enterprise_reports_per_bank_per_day: over enterprise_reports_per_day, "
                "a bank's share would be the whole ceiling"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> RateConfig:
        """Read and validate; a bad file raises ValueError naming the field."""
        return load_yaml(path, cls.model_validate)

    def plan_for(self, client_id: str) -> RatePlan:
        return self.plans[self.clients.get(client_id, self.default_plan)]

    def route(self, key: str) -> RouteCost:
        return self.routes.get(key, FREE_ROUTE)

    @property
    def bank_share(self) -> int:
        """A bank's share of an enterprise's daily ceiling; NOT_APPLIED when unset."""
        share = self.enterprise_reports_per_bank_per_day
        return NOT_APPLIED if share is None else share

    def shared(self, parts: int) -> RateConfig:
        """Every limit divided among `parts` processes: the local fallback's view."""
        if parts <= 1:
            return self
        share = self.enterprise_reports_per_bank_per_day
        return self.model_copy(
            update={
                "plans": {name: plan.share(parts) for name, plan in self.plans.items()},
                "enterprise_reports_per_day": max(1, self.enterprise_reports_per_day // parts),
                "enterprise_reports_per_bank_per_day": (
                    None if share is None else max(1, share // parts)
                ),
            }
        )


@dataclass(frozen=True, slots=True)
class RateRequest:
    client_id: str
    plan: RatePlan
    cost: int
    reports: int = 0
    enterprise_cap: int = NOT_APPLIED
    credit_code: str | None = None
    consent_id: str | None = None
    consent_daily: int | None = None
    # The bank's share of the enterprise's ceiling, counted per (bank, enterprise).
    bank: str | None = None
    bank_share: int = NOT_APPLIED
    # Redis only: refuse if any of `deny_keys` exists, trusting them only while
    # `sentinel` exists. This is how the token denylist rides the same round trip.
    deny_keys: tuple[str, ...] = ()
    sentinel: str | None = None
    # Redis only: refuse as a replay if `once_key` is in the set `once_set`, else
    # add it, the set living at least `once_ms` more. This is how a DPoP proof's
    # jti rides the same round trip (gateway/identity/guard.py `spent_set`).
    once_set: str | None = None
    once_key: str | None = None
    once_ms: int = 0
    # ... and refuse it if `once_legacy` exists: the key the release before
    # marked a spent jti with (for one release, while both may be serving).
    once_legacy: str | None = None
    # Redis only: refuse, charging nothing, if `consent_mark` exists: the
    # caller decided from a cached consent that has changed since.
    consent_mark: str | None = None
    # Redis only: refuse as a replay a single-use key issued (`once_issued_s`,
    # seconds) before the second `once_floor` holds: it may have been spent in
    # data Redis has since lost (gateway/identity/guard.py sets the floor).
    once_floor: str | None = None
    once_issued_s: int = 0

    def limits(self) -> Limits:
        """(daily, enterprise, consent, bank_enterprise) report limits;
        NOT_APPLIED where none applies."""
        if self.reports <= 0:
            return NOT_APPLIED, NOT_APPLIED, NOT_APPLIED, NOT_APPLIED
        enterprise = self.enterprise_cap if self.credit_code else NOT_APPLIED
        consent = (
            self.consent_daily
            if self.consent_id and self.consent_daily is not None
            else NOT_APPLIED
        )
        share = self.bank_share if self.credit_code and self.bank else NOT_APPLIED
        return self.plan.reports_per_day, enterprise, consent, share


@dataclass(frozen=True, slots=True)
class Remaining:
    name: LimitName
    quota: int
    window_s: int
    remaining: int
    reset_s: int


Backend = Literal["memory", "redis"]


@dataclass(frozen=True, slots=True)
class Charge:
    """What an allowed check took: `request`'s cost and reports, counted on `day`
    (the Shanghai day's number) by `backend`."""

    request: RateRequest
    day: int
    backend: Backend


@dataclass(frozen=True, slots=True)
class RateOutcome:
    allowed: bool
    limits: tuple[Remaining, ...] = ()
    refused: LimitName | None = None
    retry_after_s: int = 0
    denylisted: bool = False
    stale_denylist: bool = False
    replayed: bool = False
    consent_changed: bool = False
    # What an allowed check took, to give back (`refund`) if the request fails.
    charge: Charge | None = None


class RateLimiter(Protocol):
    async def check(self, request: RateRequest) -> RateOutcome:
        """Every limit of `request` charged, or none (the outcome says which refused)."""
        ...

    async def refund(self, charge: Charge) -> None:
        """Give back what an allowed check took, once: call it for a request the
        gateway then failed on. A GCRA rate is moved back by the request's cost
        (what later requests spent stays spent); report counts drop by the
        request's reports, never below zero, and not at all once the day they
        were counted on is over."""
        ...


_DAILY: tuple[LimitName, ...] = ("daily", "enterprise", "consent", "bank_enterprise")
_CODES: dict[int, LimitName] = {
    1: "rate",
    2: "daily",
    3: "enterprise",
    4: "consent",
    5: "bank_enterprise",
}


def outcome(
    request: RateRequest,
    *,
    code: int,
    retry_us: int,
    backlog_us: int,
    used: Limits,
    to_midnight_s: int,
    day: int,
    backend: Backend,
) -> RateOutcome:
    """Both backends' raw results in one shape (code 0 = allowed, 1-5 = refused by)."""
    plan = request.plan
    tolerance = plan.burst * plan.interval_us
    rate = Remaining(
        "rate",
        quota=plan.burst,
        window_s=max(1, math.ceil(plan.burst / plan.rate_per_s)),
        remaining=max(0, (tolerance - backlog_us) // plan.interval_us),
        reset_s=math.ceil(max(0, backlog_us) / 1_000_000),
    )
    limits = [rate]
    for name, limit, count in zip(_DAILY, request.limits(), used, strict=True):
        if limit != NOT_APPLIED:
            limits.append(Remaining(name, limit, DAY_S, max(0, limit - count), to_midnight_s))
    return RateOutcome(
        allowed=code == 0,
        limits=tuple(limits),
        refused=_CODES.get(code),
        retry_after_s=max(1, math.ceil(retry_us / 1_000_000)) if code else 0,
        charge=Charge(request, day, backend) if code == 0 else None,
    )


def headers(result: RateOutcome) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` (IETF httpapi ratelimit-headers draft)."""
    policy = ", ".join(f'"{r.name}";q={r.quota};w={r.window_s}' for r in result.limits)
    state = ", ".join(f'"{r.name}";r={r.remaining};t={r.reset_s}' for r in result.limits)
    return {"RateLimit-Policy": policy, "RateLimit": state}


def day_bounds(now_s: float) -> tuple[int, int]:
    """(the Shanghai day's number, seconds until its midnight)."""
    local = int(now_s) + SHANGHAI_OFFSET_S
    day = local // DAY_S
    return day, (day + 1) * DAY_S - local


@dataclass
class MemoryLimiter:
    """Exact within one process: the embedded default, and Redis's local fallback."""

    clock: Callable[[], float] = time.time
    tats: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    day: int = -1

    async def check(self, request: RateRequest) -> RateOutcome:
        return self.check_now(request)

    def check_now(self, request: RateRequest) -> RateOutcome:
        now_s = self.clock()
        now = int(now_s * 1_000_000)
        day, to_midnight = day_bounds(now_s)
        if day != self.day:
            # A new day: yesterday's counters are done with.
            self.counts.clear()
            self.day = day
        plan = request.plan
        tolerance = plan.burst * plan.interval_us
        tat = max(self.tats.get(request.client_id, now), now)
        new_tat = tat + request.cost * plan.interval_us
        keys = _count_keys(request)
        limits = request.limits()
        used = tuple(
            self.counts.get(key, 0) if limit != NOT_APPLIED else 0
            for key, limit in zip(keys, limits, strict=True)
        )
        code, retry_us = 0, 0
        if new_tat - tolerance > now:
            code, retry_us = 1, new_tat - tolerance - now
        else:
            for index, (limit, count) in enumerate(zip(limits, used, strict=True)):
                if limit != NOT_APPLIED and count + request.reports > limit:
                    code, retry_us = 2 + index, to_midnight * 1_000_000
                    break
        if code == 0:
            self.tats[request.client_id] = new_tat
            for key, limit in zip(keys, limits, strict=True):
                if limit != NOT_APPLIED:
                    self.counts[key] = self.counts.get(key, 0) + request.reports
            used = tuple(
                count + request.reports if limit != NOT_APPLIED else 0
                for count, limit in zip(used, limits, strict=True)
            )
        return outcome(
            request,
            code=code,
            retry_us=retry_us,
            backlog_us=(new_tat if code == 0 else tat) - now,
            used=(used[0], used[1], used[2], used[3]),
            to_midnight_s=to_midnight,
            day=day,
            backend="memory",
        )

    async def refund(self, charge: Charge) -> None:
        self.refund_now(charge)

    def restore_now(self, counts: dict[str, int], day: int) -> None:
        """Raise today's counts to at least `counts` (by `count_keys` name), counted
        elsewhere on `day`: what this process admitted before it started again."""
        now_day, _ = day_bounds(self.clock())
        if day != now_day:
            return
        if self.day != day:
            self.counts.clear()
            self.day = day
        for key, count in counts.items():
            self.counts[key] = max(self.counts.get(key, 0), count)

    def refund_now(self, charge: Charge) -> None:
        request = charge.request
        now_s = self.clock()
        now = int(now_s * 1_000_000)
        tat = self.tats.get(request.client_id)
        if tat is not None:
            # An arrival time at or before now means a full burst either way.
            self.tats[request.client_id] = max(now, tat - request.cost * request.plan.interval_us)
        day, _ = day_bounds(now_s)
        if day != charge.day or day != self.day:
            return  # the counts it was taken from are done with
        for key, limit in zip(_count_keys(request), request.limits(), strict=True):
            if limit != NOT_APPLIED and key in self.counts:
                self.counts[key] = max(0, self.counts[key] - request.reports)


def _count_keys(request: RateRequest) -> tuple[str, str, str, str]:
    """The daily counts' keys, in `RateRequest.limits()` order."""
    return count_keys(request.client_id, request.credit_code, request.consent_id, request.bank)


def bank_key(client_id: str, org_code: str | None) -> str:
    """Who a bank share belongs to: the bank's code, which all its clients share,
    else the client alone."""
    return f"org:{org_code}" if org_code else f"client:{client_id}"


def count_keys(
    client_id: str, credit_code: str | None, consent_id: str | None, bank: str | None
) -> tuple[str, str, str, str]:
    """The daily counts' names, in `RateRequest.limits()` order (both backends)."""
    return (
        f"client:{client_id}",
        f"ent:{credit_code}",
        f"consent:{consent_id}",
        f"bank:{bank}:{credit_code}",
    )
