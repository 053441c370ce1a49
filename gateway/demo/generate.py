"""Generate one chunk of demo enterprises and their records as table rows.

Pure and deterministic: chunk k of seed s is always the same rows, whichever
process makes it. Record `data` has the shape ingestion stores (the schemas'
`normalise()`), so reports and rules cannot tell seeded from ingested data.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from gateway.demo import names
from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from gateway.pii import keyed_hash, mask_name

RECORD_SLOTS = 64  # record ids are enterprise_id * 64 + n: parallel chunks never collide
PROFILES = ("clean", "penalised", "black_listed", "repaired", "new", "deregistered")
_PROFILE_WEIGHTS = (78, 12, 1, 3, 4, 2)
_BODY_SPACE = len(CREDIT_ALPHABET) ** 8
_BODY_STRIDE = 1_000_003  # coprime to 31**8, so index -> org code body is one-to-one

ENTERPRISE_COLS = (
    "id", "credit_code", "name", "entity_type", "division_code", "legal_rep_hash",
    "legal_rep_masked", "registered_on", "status", "registered_capital_fen", "industry_code",
    "data_version",
)  # fmt: skip
RECORD_COLS = (
    "id", "category", "source_department", "source_record_id", "credit_code", "subject_kind",
    "version", "content_sha256", "effective_date",
)  # fmt: skip
VERSION_COLS = ("record_id", "version", "content_sha256", "data")
PENALTY_COLS = (
    "party_category", "decision_number", "violation_type", "facts", "legal_basis",
    "penalty_types", "content", "fine_fen", "confiscation_fen", "affected_license", "procedure",
    "severity", "decision_date", "valid_until", "publication_until", "authority",
    "authority_code", "source_department_code",
)  # fmt: skip
LICENSE_COLS = (
    "party_category", "document_name", "document_number", "license_category",
    "certificate_name", "certificate_number", "content", "decision_date", "valid_from",
    "valid_until", "authority", "authority_code", "source_department_code", "status",
)  # fmt: skip


@dataclass
class Chunk:
    enterprises: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    penalties: list[tuple[Any, ...]] = field(default_factory=list)
    licenses: list[tuple[Any, ...]] = field(default_factory=list)
    samples: list[tuple[str, str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    seed: int
    as_of: date
    pii_key: bytes
    first_id: int  # id of enterprise index 0


def org_body(index: int, seed: int) -> str:
    value = (index * _BODY_STRIDE + seed * 7919) % _BODY_SPACE
    chars = []
    for _ in range(8):
        value, digit = divmod(value, len(CREDIT_ALPHABET))
        chars.append(CREDIT_ALPHABET[digit])
    return "".join(reversed(chars))


REFUSED = "有履行能力而拒不履行生效法律文书确定义务"


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


class _Enterprise:
    """Builds one enterprise's rows into a chunk."""

    def __init__(self, chunk: Chunk, spec: Spec, rng: random.Random, index: int) -> None:
        self.chunk, self.spec, self.rng, self.index = chunk, spec, rng, index
        self.id = spec.first_id + index
        self.slot = 0
        self.profile = rng.choices(PROFILES, _PROFILE_WEIGHTS)[0]
        self.code = ""
        self.name = ""

    def day(self, min_days_ago: int, max_days_ago: int) -> date:
        return self.spec.as_of - timedelta(days=self.rng.randint(min_days_ago, max_days_ago))

    def add(
        self, category: str, department: str, effective: date | None, fields: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        record_id = self.id * RECORD_SLOTS + self.slot
        source_id = f"{category[:3].upper()}{self.spec.seed}-{self.index:08d}-{self.slot:02d}"
        self.slot += 1
        data = {
            "record_id": source_id,
            "source_department": department,
            "credit_code": self.code,
            "subject_name": self.name,
        }
        data.update((k, v) for k, v in fields.items() if v is not None)
        payload = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256(payload).hexdigest()
        self.chunk.records.append(
            (record_id, category, department, source_id, self.code, "legal_person", 1, digest,
             _iso(effective))
        )  # fmt: skip
        self.chunk.versions.append((record_id, 1, digest, payload))
        self.chunk.counts[category] = self.chunk.counts.get(category, 0) + 1
        return record_id, data

    # --- registration ------------------------------------------------------
    def register(self) -> None:
        rng, as_of = self.rng, self.spec.as_of
        if self.profile == "new":
            registered = self.day(10, 170)
        else:
            years = min(30.0, rng.expovariate(1 / 7)) + 0.5
            registered = as_of - timedelta(days=int(years * 365))
        retired = registered.year < 2017 and rng.random() < 0.1
        division, place = rng.choice(names.RETIRED_DIVISIONS if retired else names.DIVISIONS)
        kind = rng.random()
        if kind < 0.72:
            entity_type, org_type = "limited_company", "1"
            self.name, industry = names.company_name(rng, place)
        elif kind < 0.90:
            entity_type, org_type, industry = "individual_business", "2", "F52"
            self.name = names.shop_name(rng, place)
        elif kind < 0.95:
            entity_type, org_type, industry = "farmer_cooperative", "3", "A01"
            self.name = names.coop_name(rng, place)
        else:
            entity_type, org_type = rng.choice(("sole_proprietorship", "partnership")), "1"
            self.name, industry = names.company_name(rng, place)
            self.name = self.name.replace(
                "有限公司", "合伙企业" if entity_type == "partnership" else "厂"
            )
        self.code = make_credit_code("9", org_type, division, org_body(self.id, self.spec.seed))
        rep = names.person_name(rng)
        # A few people stand behind several enterprises: reuse a small pool.
        rep_id = (
            names.resident_id(random.Random(rng.randint(0, 999)))
            if rng.random() < 0.03
            else names.resident_id(rng)
        )
        rep_hash = keyed_hash(self.spec.pii_key, "person-id", rep_id)
        status = {"deregistered": "deregistered"}.get(self.profile, "active")
        street_no = rng.randint(1, 999)
        capital_wan = rng.choice((1, 3, 5, 10, 20, 50, 100, 200, 500, 1000))
        self.add(
            "registration",
            "成都市市场监督管理局",
            registered,
            {
                "entity_type": entity_type,
                "registered_on": registered.isoformat(),
                "status": status,
                "registered_capital_wan": str(capital_wan),
                "industry_code": industry,
                "address": f"四川省成都市{place}{rng.choice(names.SYLLABLES)}路{street_no}号",
                "registration_authority": "成都市市场监督管理局",
                "legal_rep_masked": mask_name(rep),
                "legal_rep_hash": rep_hash,
            },
        )
        self.registered = registered
        self.chunk.enterprises.append(
            (self.id, self.code, self.name, entity_type, division, rep_hash, mask_name(rep),
             registered.isoformat(), status, capital_wan * 1_000_000, industry, 1)
        )  # fmt: skip
        self.rep_hash, self.rep_masked = rep_hash, mask_name(rep)

    # --- periodic records ----------------------------------------------------
    def periodic(self) -> None:
        rng, as_of = self.rng, self.spec.as_of
        troubled = self.profile in ("black_listed",) or rng.random() < 0.04
        for year in (as_of.year - 2, as_of.year - 1):
            if self.registered.year > year:
                continue
            if self.registered.year == year:
                rating = "M"
            elif self.profile == "black_listed":
                rating = rng.choice("CDD")
            else:
                rating = rng.choices("ABCD", (28, 60, 9, 3))[0]
            published = date(year + 1, 4, 15)
            if published > as_of:
                continue
            self.add("tax_rating", "国家税务总局成都市税务局", published, {
                "rating_year": year, "rating": rating,
                "score": {"A": "95", "B": "82", "M": "75", "C": "55", "D": "30"}[rating],
                "authority": "国家税务总局成都市税务局", "published_on": published.isoformat(),
            })  # fmt: skip
        months = 1 if self.profile == "deregistered" else 3
        headcount = max(1, int(rng.lognormvariate(2, 1)))
        for back in range(months):
            month = _month_back(as_of, back + 1)
            overdue = rng.randint(1, 6) if troubled else 0
            self.add("social_insurance", "成都市人力资源和社会保障局", month, {
                "period": month.strftime("%Y-%m"), "headcount": headcount,
                "paid_fen": headcount * 120_000 * (0 if overdue else 1),
                "overdue_fen": headcount * 120_000 * overdue, "overdue_months": overdue,
            })  # fmt: skip
        month = _month_back(as_of, 1)
        if rng.random() < 0.7:
            overdue = rng.randint(1, 4) if troubled else 0
            self.add("housing_fund", "成都住房公积金管理中心", month, {
                "period": month.strftime("%Y-%m"), "headcount": headcount,
                "paid_fen": headcount * 50_000, "overdue_fen": headcount * 50_000 * overdue,
                "overdue_months": overdue,
            })  # fmt: skip
        utilities = [("electricity", "国网四川省电力公司成都供电公司")]
        utilities.append(("water", "成都市自来水有限责任公司"))
        if rng.random() < 0.3:
            utilities.append(("gas", "成都城市燃气有限责任公司"))
        for utility, department in utilities:
            billed = rng.randint(5_000, 2_000_000)
            late = rng.randint(15, 120) if troubled and rng.random() < 0.5 else 0
            self.add("utility", department, month, {
                "utility_type": utility, "period": month.strftime("%Y-%m"),
                "billed_fen": billed, "paid_fen": 0 if late else billed, "overdue_days": late,
            })  # fmt: skip

    # --- double publicity ----------------------------------------------------
    def party(self) -> dict[str, Any]:
        return {
            "party_category": "legal_person",
            "legal_rep_masked": self.rep_masked,
            "legal_rep_hash": self.rep_hash,
        }

    def licence(self) -> None:
        rng = self.rng
        title, prefix, authority, category = rng.choice(names.LICENSES)
        decided = self.day(0, max(1, (self.spec.as_of - self.registered).days))
        number = f"{prefix}{decided.year}{rng.randint(10000, 99999)}"
        fields = {
            **self.party(),
            "document_name": f"{title}准予许可决定书",
            "document_number": number,
            "license_category": category,
            "certificate_name": title,
            "certificate_number": number,
            "content": f"准予{title}",
            "decision_date": decided.isoformat(),
            "valid_from": decided.isoformat(),
            "valid_until": (decided + timedelta(days=365 * 5)).isoformat(),
            "authority": authority,
            "authority_code": names.DEPARTMENTS[authority],
            "source_department_code": names.DEPARTMENTS[authority],
            "status": "valid",
        }
        record_id, data = self.add("license", authority, decided, fields)
        self.chunk.licenses.append((record_id, 1, *(data.get(column) for column in LICENSE_COLS)))

    def penalty(self, severity: str, min_days: int, max_days: int) -> tuple[str, str, date]:
        rng = self.rng
        authority, prefix, violations = rng.choice(names.PENALTY_AUTHORITIES)
        decided = self.day(min_days, max_days)
        simple = severity == "simple"
        fine_yuan = {
            "simple": rng.randint(50, 200),
            "minor": rng.randint(200, 2_000),
            "general": rng.randint(2_000, 200_000),
            "serious": rng.randint(100_000, 2_000_000),
        }[severity]
        published_for = {"simple": 0, "minor": 0, "general": 365, "serious": 3 * 365}[severity]
        violation = rng.choice(violations)
        fields = {
            **self.party(),
            "decision_number": f"{prefix}〔{decided.year}〕{rng.randint(1, 9999)}号",
            "violation_type": violation,
            "facts": f"当事人存在{violation}行为",
            "legal_basis": "《中华人民共和国行政处罚法》第二十八条",
            "penalty_types": ["罚款"] if simple or severity == "minor" else ["警告", "罚款"],
            "content": f"罚款人民币{fine_yuan}元",
            "fine_fen": fine_yuan * 100,
            "confiscation_fen": 0,
            "procedure": "simple" if simple else "general",
            "severity": "minor" if simple else severity,
            "decision_date": decided.isoformat(),
            "publication_until": (decided + timedelta(days=published_for)).isoformat(),
            "authority": authority,
            "authority_code": names.DEPARTMENTS[authority],
            "source_department_code": names.DEPARTMENTS[authority],
        }
        record_id, data = self.add("penalty", authority, decided, fields)
        self.chunk.penalties.append((record_id, 1, *(data.get(column) for column in PENALTY_COLS)))
        return data["record_id"], authority, decided

    def repair(self, penalty_id: str, department: str, decided: date) -> None:
        effective = min(self.spec.as_of, decided + timedelta(days=self.rng.randint(95, 200)))
        self.add("credit_repair", "成都市发展和改革委员会", effective, {
            "repaired_category": "penalty", "repaired_record_id": penalty_id,
            "repaired_source_department": department, "repair_authority": department,
            "effective_on": effective.isoformat(), "status": "approved",
        })  # fmt: skip

    def listed(self, category: str, list_name: str, authority: str, reason: str) -> None:
        listed_on = self.day(30, 700)
        self.add(category, "成都市发展和改革委员会", listed_on, {
            "list_name": list_name, "listing_authority": authority, "reason": reason,
            "listed_on": listed_on.isoformat(),
            "valid_until": (listed_on + timedelta(days=3 * 365)).isoformat(),
            "measures": ["限制获得政府补贴", "从严审核融资"] if category == "black_list"
            else ["绿色通道", "容缺受理"],
        })  # fmt: skip

    def judgment(self, dishonest: bool) -> None:
        filed = self.day(60, 900)
        published = filed + timedelta(days=self.rng.randint(30, 90))
        self.add("judgment_debtor", "成都市中级人民法院", min(published, self.spec.as_of), {
            "case_number": f"（{filed.year}）川01执{self.rng.randint(100, 9999)}号",
            "court": "成都市中级人民法院", "filed_on": filed.isoformat(),
            "published_on": min(published, self.spec.as_of).isoformat(),
            "duty": "支付货款及利息", "amount_fen": self.rng.randint(10_000, 5_000_000) * 100,
            "performance": "unperformed" if dishonest else "partly_performed",
            "dishonest": dishonest,
            "dishonest_behaviour": REFUSED if dishonest else None,
        })  # fmt: skip

    def commitment(self) -> None:
        made = self.day(0, max(1, (self.spec.as_of - self.registered).days))
        status = (
            "breached"
            if self.profile == "black_listed"
            else self.rng.choice(("kept", "kept", "in_force"))
        )
        self.add("commitment", "成都市发展和改革委员会", made, {
            "commitment_type": "信用承诺制审批", "content": "承诺所提交材料真实有效并依法经营",
            "made_on": made.isoformat(), "status": status, "authority": names.SERVICE_OFFICE,
        })  # fmt: skip

    def history(self) -> None:
        rng, profile = self.rng, self.profile
        for _ in range(rng.choices((0, 1, 2), (40, 45, 15))[0]):
            self.licence()
        if rng.random() < 0.35:
            self.commitment()
        if profile != "new" and rng.random() < 0.05:
            self.penalty(rng.choice(("simple", "minor")), 0, 700)
        if profile == "penalised":
            for _ in range(rng.choice((1, 1, 2))):
                self.penalty(rng.choice(("general", "general", "serious")), 10, 300)
        elif profile == "repaired":
            penalty_id, department, decided = self.penalty("general", 120, 330)
            self.repair(penalty_id, department, decided)
        elif profile == "black_listed":
            self.penalty("serious", 30, 600)
            self.listed(
                "black_list", "严重失信主体名单", "成都市市场监督管理局", "拒不履行行政处罚决定"
            )
            self.judgment(dishonest=True)
        if profile == "clean" and rng.random() < 0.04:
            self.listed(
                "red_list", "守信激励对象名单", "成都市发展和改革委员会", "连续三年纳税信用A级"
            )
        if profile == "penalised" and rng.random() < 0.08:
            self.judgment(dishonest=False)


def _month_back(as_of: date, months: int) -> date:
    index = as_of.year * 12 + as_of.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def make_chunk(spec: Spec, start: int, count: int, samples_per_profile: int) -> Chunk:
    """Enterprises start .. start+count-1 with all their records."""
    chunk = Chunk()
    for index in range(start, start + count):
        # One generator per enterprise: the data does not depend on chunking.
        rng = random.Random(spec.seed * 10_000_019 + index)
        enterprise = _Enterprise(chunk, spec, rng, index)
        enterprise.register()
        enterprise.periodic()
        enterprise.history()
        if sum(1 for s in chunk.samples if s[2] == enterprise.profile) < samples_per_profile:
            chunk.samples.append((enterprise.code, enterprise.name, enterprise.profile))
    return chunk
