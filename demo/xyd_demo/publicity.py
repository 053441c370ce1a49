"""Double-publicity records (licences, penalties) and what follows from them.

Penalties follow the publication rules of the design notes: minor and
simple-procedure ones are not published (publication ends on the decision
date), general ones for a year, serious ones for three; an approved credit
repair points at the penalty it lifts by the penalty's record id and
department.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from xyd_demo import names
from xyd_demo.base import LICENSE_COLS, PENALTY_COLS, Enterprise

REFUSED = "有履行能力而拒不履行生效法律文书确定义务"
_FINE_YUAN = {
    "simple": (50, 200),
    "minor": (200, 5_000),
    "general": (5_000, 200_000),
    "serious": (100_000, 2_000_000),
}
_PUBLISHED_DAYS = {"simple": 0, "minor": 0, "general": 365, "serious": 3 * 365}
_DEFAULT_LICENCES = ("food", "health", "pollution")


def _party(e: Enterprise) -> dict[str, Any]:
    category = "individual_business" if e.code[1] == "2" else "legal_person"
    return {
        "party_category": category,
        "legal_rep_masked": e.rep_masked,
        "legal_rep_hash": e.rep_hash,
    }


def _licence_number(e: Enterprise, kind: str, decided: date) -> str:
    serial = e.rng.randint(1, 999_999)
    if kind == "food":
        return f"JY{'2' if e.code[1] == '2' else '1'}{e.division}{serial:07d}{serial % 10}"
    if kind == "pollution":
        return f"{e.code}001{e.rng.choice('PUVW')}"
    if kind == "transport":
        return f"川交运管许可成字{e.division}{serial:06d}号"
    if kind == "safety":
        return f"（川）JZ安许证字〔{decided.year}〕{serial:06d}"
    return f"成卫公证字〔{decided.year}〕第{e.division}{serial:06d}号"


def licence(e: Enterprise) -> None:
    rng = e.rng
    kind = rng.choice(e.licence_kinds or _DEFAULT_LICENCES)
    title, category, authority = names.LICENSES[kind]
    decided = e.day(0, 3650)
    until = decided + timedelta(days=5 * 365)
    number = _licence_number(e, kind, decided)
    status = "cancelled" if e.closed else ("valid" if until >= e.spec.as_of else "invalid")
    record_id, data = e.add("license", authority, decided, {
        **_party(e),
        "document_name": f"准予{title}行政许可决定书",
        "document_number": f"{authority[:2]}许决〔{decided.year}〕{rng.randint(1, 99_999)}号",
        "license_category": category, "certificate_name": title, "certificate_number": number,
        "content": f"核发{title}", "decision_date": decided.isoformat(),
        "valid_from": decided.isoformat(), "valid_until": until.isoformat(),
        "authority": authority, "authority_code": names.DEPARTMENTS[authority],
        "source_department_code": names.DEPARTMENTS[authority], "status": status,
    })  # fmt: skip
    e.chunk.licenses.append((record_id, 1, *[data.get(column) for column in LICENSE_COLS]))


def _penalty_authority(e: Enterprise) -> tuple[str, str, tuple[str, str]]:
    authority, prefix, violations = e.rng.choice(names.PENALTY_AUTHORITIES)
    violation = e.rng.choice(violations)
    if authority == names.MARKET and e.division in names.DISTRICT_MARKET and e.rng.random() < 0.6:
        authority, prefix = names.DISTRICT_MARKET[e.division]
    return authority, prefix, violation


def _sanctions(e: Enterprise, severity: str) -> tuple[list[str], int, int, str | None]:
    """Penalty types, fine and confiscated amount (yuan), and the licence revoked, if any."""
    fine = e.rng.randint(*_FINE_YUAN[severity])
    if severity in ("simple", "minor"):
        return (["警告"], 0, 0, None) if e.rng.random() < 0.3 else (["罚款"], fine, 0, None)
    if e.status == "revoked":
        return ["罚款", "吊销营业执照"], fine, 0, f"营业执照（{e.code}）"
    if e.rng.random() < 0.15:
        return ["罚款", "没收违法所得"], fine, e.rng.randint(1_000, 50_000), None
    return (["警告", "罚款"] if severity == "general" else ["罚款"]), fine, 0, None


def _content(types: list[str], fine: int, confiscated: int) -> str:
    parts = [kind for kind in types if kind not in ("罚款", "没收违法所得")]
    if fine:
        parts.append(f"罚款人民币{fine}元")
    if confiscated:
        parts.append(f"没收违法所得人民币{confiscated}元")
    return "，".join(parts)


def penalty(
    e: Enterprise, severity: str, min_days: int, max_days: int
) -> tuple[str, str, str, date]:
    """Add a penalty; returns its record id, department, decision number and date."""
    rng = e.rng
    authority, prefix, (violation, basis) = _penalty_authority(e)
    decided = e.day(min_days, max_days)
    types, fine, confiscated, revoked = _sanctions(e, severity)
    number = f"{prefix}〔{decided.year}〕{rng.randint(1, 9999)}号"
    record_id, data = e.add("penalty", authority, decided, {
        **_party(e), "decision_number": number, "violation_type": violation,
        "facts": f"经查，当事人存在{violation}的违法行为", "legal_basis": basis,
        "penalty_types": types, "content": _content(types, fine, confiscated),
        "fine_fen": fine * 100, "confiscation_fen": confiscated * 100,
        "affected_license": revoked,
        "procedure": "simple" if severity == "simple" else "general",
        "severity": "minor" if severity == "simple" else severity,
        "decision_date": decided.isoformat(),
        "publication_until": (decided + timedelta(days=_PUBLISHED_DAYS[severity])).isoformat(),
        "authority": authority, "authority_code": names.DEPARTMENTS[authority],
        "source_department_code": names.DEPARTMENTS[authority],
    })  # fmt: skip
    e.chunk.penalties.append((record_id, 1, *[data.get(column) for column in PENALTY_COLS]))
    return data["record_id"], authority, number, decided


def repair(e: Enterprise, penalty_id: str, department: str, number: str, decided: date) -> None:
    # Repair may be applied for after the minimum publication period (3 months).
    effective = min(e.spec.as_of, decided + timedelta(days=e.rng.randint(95, 200)))
    e.add("credit_repair", names.CREDIT_OFFICE, effective, {
        "repaired_category": "penalty", "repaired_record_id": penalty_id,
        "repaired_source_department": department, "decision_number": number,
        "repair_authority": department, "effective_on": effective.isoformat(),
        "status": "approved",
    })  # fmt: skip


def _listed(e: Enterprise, category: str, list_name: str, authority: str, reason: str) -> None:
    listed_on = e.day(30, 700)
    measures = (
        ["限制获得政府补贴", "从严审核融资", "限制高消费"]
        if category == "black_list"
        else ["绿色通道", "容缺受理", "优先支持融资"]
    )
    e.add(category, names.CREDIT_OFFICE, listed_on, {
        "list_name": list_name, "listing_authority": authority, "reason": reason,
        "listed_on": listed_on.isoformat(),
        "valid_until": (listed_on + timedelta(days=3 * 365)).isoformat(), "measures": measures,
    })  # fmt: skip


def black_listed(e: Enterprise) -> None:
    """A serious penalty, a black-list entry and a dishonest judgment debt, as in life."""
    penalty(e, "serious", 30, 600)
    _listed(e, "black_list", "严重失信主体名单", names.MARKET, "拒不履行行政处罚决定")
    judgment(e, dishonest=True)


def red_list(e: Enterprise) -> None:
    if e.rng.random() < 0.6:
        _listed(e, "red_list", "纳税信用A级纳税人名单", names.TAX, "连续三年纳税信用A级")
    else:
        _listed(e, "red_list", "守合同重信用企业名单", names.MARKET, "连续两年守合同重信用")


def judgment(e: Enterprise, dishonest: bool) -> None:
    filed = e.day(60, 900)
    published = min(filed + timedelta(days=e.rng.randint(30, 90)), e.spec.as_of)
    e.add("judgment_debtor", names.COURT, published, {
        "case_number": f"（{filed.year}）川01执{e.rng.randint(100, 9999)}号",
        "court": names.COURT, "filed_on": filed.isoformat(),
        "published_on": published.isoformat(), "duty": "支付货款及利息",
        "amount_fen": e.rng.randint(10_000, 5_000_000) * 100,
        "performance": "unperformed" if dishonest else "partly_performed",
        "dishonest": dishonest, "dishonest_behaviour": REFUSED if dishonest else None,
    })  # fmt: skip


def commitment(e: Enterprise) -> None:
    made = e.day(0, 3650)
    if e.profile == "black_listed":
        status = "breached"
    else:
        status = e.rng.choice(("kept", "kept", "in_force"))
    e.add("commitment", names.CREDIT_OFFICE, made, {
        "commitment_type": "信用承诺制审批", "content": "承诺所提交材料真实有效并依法经营",
        "made_on": made.isoformat(), "status": status, "authority": names.SERVICE_OFFICE,
    })  # fmt: skip
