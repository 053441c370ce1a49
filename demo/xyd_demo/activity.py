"""Records an enterprise accumulates: periodic ones, and its profile's history.

Periodic: tax credit ratings (yearly), social insurance and housing fund
contributions (monthly), utility bills. History: licences, commitments and,
by profile, penalties, credit repair, lists and judgment debts.
"""

from __future__ import annotations

from datetime import date

from xyd_demo import names, publicity
from xyd_demo.base import Enterprise, month_back

# A, B, C, D among rated enterprises past their first year.
_TAX_CUM = names.cumulative((30, 58, 9, 3))
_SCORE_RANGES = {"A": (900, 1000), "B": (700, 899), "M": (700, 899), "C": (400, 699), "D": (0, 399)}
_LICENCE_COUNT_CUM = names.cumulative((40, 45, 15))
_SOCIAL_PER_HEAD = 118_000  # fen a month, employer and employee shares together
_HOUSING_PER_HEAD = 48_000


def periodic(e: Enterprise) -> None:
    # A few enterprises fall behind on payments; black-listed ones do.
    troubled = e.profile == "black_listed" or e.rng.random() < 0.04
    headcount = max(1, int(e.rng.lognormvariate(1.8, 1.0)))
    tax_ratings(e)
    contributions(e, headcount, troubled)
    utilities(e, headcount, troubled)


def tax_ratings(e: Enterprise) -> None:
    rng = e.rng
    for year in range(e.spec.as_of.year - 3, e.spec.as_of.year):
        published = date(year + 1, 4, rng.randint(10, 25))
        if year < e.registered.year or published > e.last_day:
            continue
        if year == e.registered.year:
            rating = "M"  # newly established: no full year to judge
        elif e.profile == "black_listed":
            rating = rng.choice("CDD")
        else:
            rating = rng.weighted("ABCD", _TAX_CUM)
        low, high = _SCORE_RANGES[rating]
        score = rng.randint(low, high)
        e.add("tax_rating", names.TAX, published, {
            "rating_year": year, "rating": rating, "score": f"{score // 10}.{score % 10}",
            "authority": names.TAX, "published_on": published.isoformat(),
        })  # fmt: skip


def contributions(e: Enterprise, headcount: int, troubled: bool) -> None:
    """The last two months of social insurance, and of housing fund for half."""
    behind = e.rng.randint(1, 6) if troubled else 0
    months = [month_back(e.last_day, back) for back in (2, 1)]
    housing = e.rng.random() < 0.5
    for position, month in enumerate(months):
        if month < e.registered.replace(day=1):
            continue
        overdue = max(0, behind - (len(months) - 1 - position))  # arrears grow month by month
        period = f"{month.year:04d}-{month.month:02d}"
        for category, department, per_head in (
            ("social_insurance", names.HR, _SOCIAL_PER_HEAD),
            ("housing_fund", names.HOUSING, _HOUSING_PER_HEAD),
        ):
            if category == "housing_fund" and not housing:
                continue
            due = headcount * per_head
            e.add(category, department, month, {
                "period": period, "headcount": headcount, "paid_fen": 0 if overdue else due,
                "overdue_fen": due * overdue, "overdue_months": overdue,
            })  # fmt: skip


def utilities(e: Enterprise, headcount: int, troubled: bool) -> None:
    month = month_back(e.last_day, 1)
    if month < e.registered.replace(day=1):
        return
    period = f"{month.year:04d}-{month.month:02d}"
    kinds = [("electricity", names.ELECTRICITY), ("water", names.WATER)]
    if e.rng.random() < 0.3:
        kinds.append(("gas", names.GAS))
    for kind, department in kinds:
        billed = e.rng.randint(3_000, 60_000) * headcount
        late = e.rng.randint(15, 120) if troubled and e.rng.random() < 0.5 else 0
        e.add("utility", department, month, {
            "utility_type": kind, "period": period, "billed_fen": billed,
            "paid_fen": 0 if late else billed, "overdue_days": late,
        })  # fmt: skip


def history(e: Enterprise) -> None:
    rng, profile = e.rng, e.profile
    for _ in range(rng.weighted((0, 1, 2), _LICENCE_COUNT_CUM)):
        publicity.licence(e)
    if rng.random() < 0.35:
        publicity.commitment(e)
    if profile != "new" and rng.random() < 0.05:
        # Small, often simple-procedure penalties: in the store, not in reports.
        publicity.penalty(e, rng.choice(("simple", "minor")), 0, 900)
    if profile == "penalised":
        for _ in range(rng.choice((1, 1, 1, 2))):
            publicity.penalty(e, rng.choice(("general", "general", "serious")), 10, 330)
        if rng.random() < 0.03:
            publicity.judgment(e, dishonest=False)
    elif profile == "repaired":
        penalty_id, authority, number, decided = publicity.penalty(e, "general", 120, 330)
        publicity.repair(e, penalty_id, authority, number, decided)
    elif profile == "black_listed":
        publicity.black_listed(e)
    elif profile == "clean" and rng.random() < 0.04:
        publicity.red_list(e)
