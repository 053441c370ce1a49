"""An enterprise's registration: entity type, name, credit code, its `enterprises` row."""

from __future__ import annotations

from xyd_demo import names
from xyd_demo.base import Enterprise, new_code

_CAPITALS_WAN = ("1", "3", "5", "10", "20", "30", "50", "100", "200", "500", "1000", "12.5")


def _naming(e: Enterprise) -> tuple[str, str, str]:
    """Entity type, organisation-type character of the code, industry code; sets the name."""
    rng, kind = e.rng, e.rng.random()
    if kind < 0.70:
        e.name, industry, e.licence_kinds = names.company_name(rng, "有限公司")
        return "limited_company", "1", industry
    if kind < 0.71:
        e.name, industry, e.licence_kinds = names.company_name(rng, "股份有限公司")
        return "joint_stock_company", "1", industry
    if kind < 0.89:
        e.name, industry, e.licence_kinds = names.shop_name(rng, e.place)
        return "individual_business", "2", industry
    if kind < 0.94:
        e.name = names.coop_name(rng, e.place)
        return "farmer_cooperative", "3", "A01"
    if kind < 0.97:
        e.name, industry, e.licence_kinds = names.company_name(rng, rng.choice(("厂", "商行")))
        return "sole_proprietorship", "1", industry
    e.name, industry, e.licence_kinds = names.company_name(rng, "中心（有限合伙）")
    return "partnership", "1", industry


def _status(e: Enterprise) -> str:
    if e.profile == "deregistered":
        return "deregistered"
    # Some seriously untrustworthy enterprises lose their business licence too.
    if e.profile == "black_listed" and e.rng.random() < 0.3:
        return "revoked"
    return "active"


def register(e: Enterprise) -> None:
    """The registration record and the `enterprises` row, which agree field for field."""
    rng = e.rng
    entity_type, org_type, industry = _naming(e)
    e.code = new_code(e, org_type)
    e.status = _status(e)
    capital_wan = "1" if entity_type == "individual_business" else rng.choice(_CAPITALS_WAN)
    authority = names.DISTRICT_MARKET.get(e.division, (names.MARKET,))[0]
    street = f"{rng.choice(names.SYLLABLES)}{rng.choice(names.SYLLABLES)}路{rng.randint(1, 999)}号"
    place = "" if e.place == "成都市" else e.place
    e.add("registration", names.MARKET, e.registered, {
        "entity_type": entity_type,
        "registered_on": e.registered.isoformat(),
        "status": e.status,
        "registered_capital_wan": capital_wan,
        "industry_code": industry,
        "address": f"四川省成都市{place}{street}",
        "registration_authority": authority,
        "legal_rep_masked": e.rep_masked,
        "legal_rep_hash": e.rep_hash,
    })  # fmt: skip
    capital_fen = int(float(capital_wan) * 1_000_000)
    e.chunk.enterprises.append(
        (e.id, e.code, e.name, entity_type, e.division, e.rep_hash, e.rep_masked,
         e.registered.isoformat(), e.status, capital_fen, industry, 1)
    )  # fmt: skip
