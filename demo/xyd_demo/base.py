"""The generator's building blocks: the spec, the rows of a chunk, one enterprise.

Enterprise i of seed s is always the same rows, whichever chunk or process
makes it: each enterprise draws from its own `random.Random`, and its
identity (profile, age, legal representative) comes first, so it can be
recomputed alone (`legal_representative`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from hashlib import sha256
from typing import Any

import orjson

from gateway.identifiers import CREDIT_ALPHABET, make_credit_code
from gateway.pii import keyed_hash, mask_name
from xyd_demo import names

# Record ids are enterprise id * RECORD_SLOTS + n, so chunks made in parallel
# never collide and no id has to be asked of the database first.
RECORD_SLOTS = 64
PROFILES = ("clean", "penalised", "black_listed", "repaired", "new", "deregistered")
_PROFILE_CUM = names.cumulative((78, 12, 1, 3, 4, 2))
_BODY_SPACE = len(CREDIT_ALPHABET) ** 8
# Prime, so coprime to 31**8: index -> organisation code body is one-to-one.
_BODY_STRIDE = 1_000_003
_SHARED_REP_BLOCK = 400  # enterprises per pool of people who run several of them
_SHARED_REP_POOL = 6

# The demo's world has gaps, as a real one does, so reports show every state of
# `completeness`: the housing fund centre has no feed connected (its records are
# drawn, keeping every other draw the same, but never stored), and the utilities'
# last feed is older than its section's fresh_days (config/report.yaml).
NOT_CONNECTED = frozenset({"housing_fund"})
STALE_FEEDS_DAYS = {"utility": 75}

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


@dataclass(frozen=True)
class Spec:
    seed: int
    as_of: date  # "today" of the data set: ages, periods and publication windows hang on it
    pii_key: bytes
    first_id: int = 1  # enterprise id of index 0


@dataclass
class Chunk:
    """Rows per table (tuples in the *_COLS order); versions carry the JSON as bytes."""

    enterprises: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    penalties: list[tuple[Any, ...]] = field(default_factory=list)
    licenses: list[tuple[Any, ...]] = field(default_factory=list)
    samples: list[tuple[str, str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Identity:
    profile: str
    registered: date
    representative: names.Person


def org_body(index: int, seed: int) -> str:
    value = (index * _BODY_STRIDE + seed * 7919) % _BODY_SPACE
    chars = []
    for _ in range(8):
        value, digit = divmod(value, len(CREDIT_ALPHABET))
        chars.append(CREDIT_ALPHABET[digit])
    return "".join(reversed(chars))


def enterprise_rng(spec: Spec, index: int) -> names.DemoRandom:
    return names.DemoRandom(spec.seed * 10_000_019 + index)


def identity(spec: Spec, index: int, rng: names.DemoRandom) -> Identity:
    """The first draws from an enterprise's generator: profile, age, legal representative."""
    profile = rng.weighted(PROFILES, _PROFILE_CUM)
    if profile == "new":
        registered = spec.as_of - timedelta(days=rng.randint(10, 170))
    else:
        # Skewed recent, as Chengdu's register is: most entities are under ten years old.
        years = min(30.5, rng.expovariate(1 / 6.5) + 0.5)
        registered = spec.as_of - timedelta(days=int(years * 365.25))
    if rng.random() < 0.03:
        # A few people stand behind several enterprises: a small pool per block.
        pool = index // _SHARED_REP_BLOCK * _SHARED_REP_POOL + rng.randint(0, _SHARED_REP_POOL - 1)
        rep = names.person(names.DemoRandom((1 << 40) + spec.seed * 7_000_003 + pool), 1955, 1975)
    else:
        rep = names.person(rng, max(1950, registered.year - 60), registered.year - 20)
    return Identity(profile, registered, rep)


def legal_representative(spec: Spec, index: int) -> names.Person:
    """Who runs enterprise `index` (the demo knows; the store keeps only hash and mask)."""
    return identity(spec, index, enterprise_rng(spec, index)).representative


def month_back(as_of: date, months: int) -> date:
    index = as_of.year * 12 + as_of.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


class Enterprise:
    """One enterprise being generated: its identity and a writer for its records."""

    def __init__(self, chunk: Chunk, spec: Spec, index: int) -> None:
        self.chunk, self.spec, self.index = chunk, spec, index
        self.rng = rng = enterprise_rng(spec, index)
        ident = identity(spec, index, rng)
        self.profile, self.registered = ident.profile, ident.registered
        self.id = spec.first_id + index
        self.slot = 0
        self.rep_masked = mask_name(ident.representative.name)
        self.rep_hash = keyed_hash(spec.pii_key, "person-id", ident.representative.resident_id)
        self.division, self.place = names.pick_division(rng, self.registered.year)
        # Deregistered enterprises stop producing records when they close.
        self.closed = (
            spec.as_of - timedelta(days=rng.randint(60, 900))
            if self.profile == "deregistered"
            else None
        )
        if self.closed and self.closed <= self.registered:
            self.closed = self.registered + timedelta(days=30)
        self.last_day = self.closed or spec.as_of
        self.code = self.name = ""
        self.status = "active"
        self.licence_kinds: tuple[str, ...] = ()

    def day(self, min_days_ago: int, max_days_ago: int) -> date:
        """A day between the bounds (days before the last active day), never before registration."""
        max_days_ago = min(max_days_ago, (self.last_day - self.registered).days)
        min_days_ago = min(min_days_ago, max_days_ago)
        return self.last_day - timedelta(days=self.rng.randint(min_days_ago, max_days_ago))

    def add(
        self, category: str, department: str, effective: date | None, fields: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Store one record (version 1); `fields` are the category's normalised fields."""
        if self.slot >= RECORD_SLOTS:
            raise OverflowError(f"enterprise {self.index}: more than {RECORD_SLOTS} records")
        record_id = self.id * RECORD_SLOTS + self.slot
        source_id = f"{category[:3].upper()}-{self.spec.seed}-{self.index:08d}-{self.slot:02d}"
        self.slot += 1
        if category in NOT_CONNECTED:
            return record_id, fields
        # Absent optional fields are left out, as normalise() leaves them out.
        data = fields
        if None in fields.values():
            data = {k: v for k, v in fields.items() if v is not None}
        data["record_id"] = source_id
        data["source_department"] = department
        data["credit_code"] = self.code
        data["subject_name"] = self.name
        payload = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        digest = sha256(payload).hexdigest()
        effective_iso = effective.isoformat() if effective else None
        # As the schemas have it: a licence or penalty is about its party category.
        kind = data.get("party_category", "legal_person")
        chunk = self.chunk
        chunk.records.append(
            (record_id, category, department, source_id, self.code, kind, 1, digest,
             effective_iso)
        )  # fmt: skip
        chunk.versions.append((record_id, 1, digest, payload))
        chunk.counts[category] += 1
        return record_id, data


def new_code(enterprise: Enterprise, org_type: str) -> str:
    body = org_body(enterprise.id, enterprise.spec.seed)
    return make_credit_code("9", org_type, enterprise.division, body)
