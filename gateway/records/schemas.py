"""One schema per category of the public credit information catalogue.

Field names are ours (snake_case); each field also accepts the Chinese column
name published under double publicity (双公示) and the catalogue, so feeds can
be ingested as they are delivered. `normalise()` turns a validated record into
what is stored: personal identifiers replaced by keyed hashes and masks;
`personal_clear()` is what is sealed beside it for lawful recovery (`gateway.keys.pii`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gateway.identifiers import InvalidIdentifier, validate_resident_id
from gateway.pii import keyed_hash, mask_name
from gateway.records.fields import (
    Amount,
    Cleaned,
    Count,
    CreditCode,
    Day,
    Fen,
    Flag,
    LongText,
    NotBool,
    OptionalDay,
    Period,
    RecordId,
    Score,
    ShortText,
    blank_to_none,
    present,
    wan_to_fen,
)


def alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _choice(mapping: dict[str, str]) -> BeforeValidator:
    """Accept our code or any of its published Chinese spellings."""

    def convert(value: Any) -> Any:
        value = blank_to_none(value)
        if isinstance(value, str):
            value = value.strip()
            return mapping.get(value, value)
        return value

    return BeforeValidator(convert)


PARTY_CATEGORIES = {
    "法人及非法人组织": "legal_person",
    "法人": "legal_person",
    "非法人组织": "legal_person",
    "自然人": "natural_person",
    "个体工商户": "individual_business",
}
PartyCategory = Annotated[
    Literal["legal_person", "natural_person", "individual_business"], _choice(PARTY_CATEGORIES)
]


class RecordBase(BaseModel):
    """Fields every record carries: who provides it, its id there, whom it is about."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    category: ClassVar[str]
    personal_fields: ClassVar[tuple[str, ...]] = ()

    record_id: RecordId = Field(
        validation_alias=alias("record_id", "信息唯一标识", "记录编号", "数据标识", "唯一标识")
    )
    source_department: ShortText = Field(
        validation_alias=alias("source_department", "数据来源单位", "提供部门", "来源部门")
    )
    credit_code: CreditCode | None = Field(
        None,
        validation_alias=alias(
            "credit_code",
            "统一社会信用代码",
            "行政相对人代码_1(统一社会信用代码)",
            "行政相对人代码_1",
        ),
    )
    subject_name: ShortText | None = Field(
        None, validation_alias=alias("subject_name", "行政相对人名称", "企业名称", "主体名称")
    )

    @property
    def subject_kind(self) -> str:
        return "legal_person"

    def effective_date(self) -> date | None:
        return None

    @model_validator(mode="before")
    @classmethod
    def _blanks_are_absent(cls, data: Any) -> Any:
        return present(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _code_required_for_enterprises(self) -> RecordBase:
        if self.credit_code is None and self.subject_kind != "natural_person":
            raise ValueError("credit_code: required for a record about an enterprise")
        return self

    def normalise(self, pii_key: bytes) -> dict[str, Any]:
        """The stored form: JSON-safe, with personal identifiers hashed or masked."""
        data = self.model_dump(mode="json", exclude_none=True)
        for name in self.personal_fields:
            data.pop(name, None)
        data.update(self._personal_data(pii_key))
        return data

    def _personal_data(self, pii_key: bytes) -> dict[str, str]:
        return {}

    def personal_clear(self) -> dict[str, str]:
        """The personal values `normalise()` leaves out, as given: sealed, never stored clear."""
        fields = self.__dict__
        return {name: fields[name] for name in self.personal_fields if fields.get(name)}


class LegalRepresentative(BaseModel):
    """The legal representative block, in its 2017–2019 and 2021 spellings."""

    legal_rep_name: ShortText | None = Field(
        None, validation_alias=alias("legal_rep_name", "法定代表人", "法定代表人姓名")
    )
    legal_rep_id_type: ShortText | None = Field(
        None, validation_alias=alias("legal_rep_id_type", "法定代表人证件类型")
    )
    legal_rep_id_number: ShortText | None = Field(
        None,
        validation_alias=alias(
            "legal_rep_id_number",
            "法定代表人证件号码",
            "法定代表人身份证号",
            "法定代表人身份证号码",
        ),
    )

    @model_validator(mode="after")
    def _check_resident_id(self) -> LegalRepresentative:
        number, kind = self.legal_rep_id_number, self.legal_rep_id_type
        if number and (kind is None or kind in ("身份证", "居民身份证", "resident_id")):
            try:
                validate_resident_id(number)
            except InvalidIdentifier as exc:
                raise ValueError(f"legal_rep_id_number: {exc}") from None
        return self

    def legal_rep_data(self, pii_key: bytes) -> dict[str, str]:
        data: dict[str, str] = {}
        if self.legal_rep_name:
            data["legal_rep_masked"] = mask_name(self.legal_rep_name)
        if self.legal_rep_id_number:
            data["legal_rep_hash"] = keyed_hash(pii_key, "person-id", self.legal_rep_id_number)
        elif self.legal_rep_name:
            data["legal_rep_hash"] = keyed_hash(pii_key, "person-name", self.legal_rep_name)
        return data


_REP_FIELDS = ("legal_rep_name", "legal_rep_id_type", "legal_rep_id_number")


class PartyRecord(RecordBase, LegalRepresentative):
    """Double-publicity records (licences, penalties): the party may be a person."""

    personal_fields = (*_REP_FIELDS, "party_id_number")

    party_category: PartyCategory = Field(
        "legal_person", validation_alias=alias("party_category", "行政相对人类别")
    )
    party_id_number: ShortText | None = Field(
        None, validation_alias=alias("party_id_number", "证件号码", "行政相对人证件号码")
    )

    @property
    def subject_kind(self) -> str:
        return self.party_category

    def _personal_data(self, pii_key: bytes) -> dict[str, str]:
        data = self.legal_rep_data(pii_key)
        if self.party_category == "natural_person":
            # The party is a person: keep nothing that names them.
            if self.subject_name:
                data["subject_name"] = mask_name(self.subject_name)
            if self.party_id_number:
                data["party_hash"] = keyed_hash(pii_key, "person-id", self.party_id_number)
        return data

    def personal_clear(self) -> dict[str, str]:
        clear = super().personal_clear()
        if self.party_category == "natural_person" and self.subject_name:
            clear["subject_name"] = self.subject_name  # stored masked
        return clear


ENTITY_TYPES = {
    "有限责任公司": "limited_company",
    "股份有限公司": "joint_stock_company",
    "个体工商户": "individual_business",
    "农民专业合作社": "farmer_cooperative",
    "个人独资企业": "sole_proprietorship",
    "合伙企业": "partnership",
    "其他": "other",
}
EntityType = Annotated[
    Literal[
        "limited_company",
        "joint_stock_company",
        "individual_business",
        "farmer_cooperative",
        "sole_proprietorship",
        "partnership",
        "other",
    ],
    _choice(ENTITY_TYPES),
]
ENTERPRISE_STATUSES = {
    "存续": "active",
    "在业": "active",
    "开业": "active",
    "注销": "deregistered",
    "吊销": "revoked",
    "迁出": "moved_out",
    "停业": "suspended",
}
EnterpriseStatus = Annotated[
    Literal["active", "deregistered", "revoked", "moved_out", "suspended"],
    _choice(ENTERPRISE_STATUSES),
]


class Registration(RecordBase, LegalRepresentative):
    category = "registration"
    personal_fields = _REP_FIELDS

    subject_name: ShortText = Field(validation_alias=alias("subject_name", "企业名称", "名称"))
    entity_type: EntityType = Field(validation_alias=alias("entity_type", "企业类型", "类型"))
    registered_on: Day = Field(validation_alias=alias("registered_on", "成立日期", "注册日期"))
    status: EnterpriseStatus = Field(
        "active", validation_alias=alias("status", "登记状态", "经营状态")
    )
    registered_capital_wan: Amount | None = Field(
        None, validation_alias=alias("registered_capital_wan", "注册资本(万元)", "注册资本")
    )
    industry_code: Annotated[str, Field(max_length=8), Cleaned] | None = Field(
        None, validation_alias=alias("industry_code", "行业代码")
    )
    address: Annotated[str, Field(max_length=300), Cleaned] | None = Field(
        None, validation_alias=alias("address", "住所", "地址")
    )
    registration_authority: ShortText | None = Field(
        None, validation_alias=alias("registration_authority", "登记机关")
    )

    def effective_date(self) -> date | None:
        return self.registered_on

    @property
    def registered_capital_fen(self) -> int | None:
        if self.registered_capital_wan is None:
            return None
        return wan_to_fen(self.registered_capital_wan)

    def _personal_data(self, pii_key: bytes) -> dict[str, str]:
        return self.legal_rep_data(pii_key)


LICENSE_CATEGORIES = {
    "普通": "general",
    "特许": "franchise",
    "认可": "recognition",
    "核准": "approval",
    "登记": "registration",
    "其他": "other",
}
LICENSE_STATUSES = {"有效": "valid", "无效": "invalid", "撤销": "revoked", "注销": "cancelled"}


class License(PartyRecord):
    category = "license"

    document_name: ShortText | None = Field(
        None, validation_alias=alias("document_name", "行政许可决定文书名称")
    )
    document_number: RecordId = Field(
        validation_alias=alias("document_number", "行政许可决定文书号")
    )
    license_category: Annotated[
        Literal["general", "franchise", "recognition", "approval", "registration", "other"],
        _choice(LICENSE_CATEGORIES),
    ] = Field(validation_alias=alias("license_category", "许可类别"))
    certificate_name: ShortText | None = Field(
        None, validation_alias=alias("certificate_name", "许可证书名称")
    )
    certificate_number: RecordId | None = Field(
        None, validation_alias=alias("certificate_number", "许可编号")
    )
    content: LongText | None = Field(None, validation_alias=alias("content", "许可内容"))
    decision_date: Day = Field(validation_alias=alias("decision_date", "许可决定日期"))
    valid_from: OptionalDay = Field(None, validation_alias=alias("valid_from", "有效期自"))
    valid_until: OptionalDay = Field(None, validation_alias=alias("valid_until", "有效期至"))
    authority: ShortText = Field(validation_alias=alias("authority", "许可机关"))
    authority_code: CreditCode | None = Field(
        None, validation_alias=alias("authority_code", "许可机关统一社会信用代码")
    )
    source_department_code: CreditCode | None = Field(
        None, validation_alias=alias("source_department_code", "数据来源单位统一社会信用代码")
    )
    status: Annotated[
        Literal["valid", "invalid", "revoked", "cancelled"], _choice(LICENSE_STATUSES)
    ] = Field("valid", validation_alias=alias("status", "当前状态"))

    def effective_date(self) -> date | None:
        return self.decision_date

    @model_validator(mode="after")
    def _window_in_order(self) -> License:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until: before valid_from")
        return self


PROCEDURES = {"简易程序": "simple", "普通程序": "general", "一般程序": "general"}
SEVERITIES = {"轻微": "minor", "一般": "general", "较重": "general", "严重": "serious"}


def _split_list(value: Any) -> Any:
    value = blank_to_none(value)
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("；", ";").replace("、", ";").split(";")]
        return [p for p in parts if p]
    return value


class Penalty(PartyRecord):
    category = "penalty"

    decision_number: RecordId = Field(
        validation_alias=alias("decision_number", "行政处罚决定书文号")
    )
    violation_type: ShortText | None = Field(
        None, validation_alias=alias("violation_type", "违法行为类型")
    )
    facts: LongText | None = Field(None, validation_alias=alias("facts", "违法事实"))
    legal_basis: LongText | None = Field(None, validation_alias=alias("legal_basis", "处罚依据"))
    penalty_types: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=40), Cleaned]],
        BeforeValidator(_split_list),
        Field(min_length=1, max_length=10),
    ] = Field(validation_alias=alias("penalty_types", "处罚类别"))
    content: LongText | None = Field(None, validation_alias=alias("content", "处罚内容"))
    fine_wan: Amount | None = Field(None, validation_alias=alias("fine_wan", "罚款金额(万元)"))
    fine_fen: Fen | None = None
    confiscation_wan: Amount | None = Field(
        None,
        validation_alias=alias(
            "confiscation_wan", "没收违法所得、没收非法财物的金额(万元)", "没收金额(万元)"
        ),
    )
    confiscation_fen: Fen | None = None
    affected_license: ShortText | None = Field(
        None, validation_alias=alias("affected_license", "暂扣或吊销证照名称及编号")
    )
    procedure: Annotated[Literal["simple", "general"], _choice(PROCEDURES)] = Field(
        "general", validation_alias=alias("procedure", "程序类型", "适用程序")
    )
    severity: Annotated[Literal["minor", "general", "serious"], _choice(SEVERITIES)] | None = Field(
        None, validation_alias=alias("severity", "违法情节", "严重程度")
    )
    decision_date: Day = Field(validation_alias=alias("decision_date", "处罚决定日期"))
    valid_until: OptionalDay = Field(None, validation_alias=alias("valid_until", "处罚有效期"))
    publication_until: OptionalDay = Field(
        None, validation_alias=alias("publication_until", "公示截止期")
    )
    authority: ShortText = Field(validation_alias=alias("authority", "处罚机关"))
    authority_code: CreditCode | None = Field(
        None, validation_alias=alias("authority_code", "处罚机关统一社会信用代码")
    )
    source_department_code: CreditCode | None = Field(
        None, validation_alias=alias("source_department_code", "数据来源单位统一社会信用代码")
    )

    def effective_date(self) -> date | None:
        return self.decision_date

    @model_validator(mode="after")
    def _amounts_in_fen(self) -> Penalty:
        for wan, fen in (("fine_wan", "fine_fen"), ("confiscation_wan", "confiscation_fen")):
            given_wan, given_fen = getattr(self, wan), getattr(self, fen)
            if given_wan is None:
                continue
            converted = wan_to_fen(given_wan)
            if given_fen is not None and given_fen != converted:
                raise ValueError(f"{fen}: {given_fen} disagrees with {wan} {given_wan}")
            object.__setattr__(self, fen, converted)
        if self.publication_until and self.publication_until < self.decision_date:
            raise ValueError("publication_until: before decision_date")
        return self

    def normalise(self, pii_key: bytes) -> dict[str, Any]:
        data = super().normalise(pii_key)
        # Fen is the unit of record; the 10,000-yuan figures were only the input.
        data.pop("fine_wan", None)
        data.pop("confiscation_wan", None)
        data["fine_fen"] = self.fine_fen or 0
        data["confiscation_fen"] = self.confiscation_fen or 0
        return data


class ListEntry(RecordBase):
    """Red and black lists (联合奖惩): who listed, why, when, with what measures."""

    list_name: ShortText = Field(validation_alias=alias("list_name", "名单名称"))
    listing_authority: ShortText = Field(
        validation_alias=alias("listing_authority", "认定部门", "列入部门")
    )
    reason: LongText | None = Field(None, validation_alias=alias("reason", "列入原因", "认定依据"))
    listed_on: Day = Field(validation_alias=alias("listed_on", "列入日期", "认定日期"))
    valid_until: OptionalDay = Field(None, validation_alias=alias("valid_until", "有效期至"))
    removed_on: OptionalDay = Field(None, validation_alias=alias("removed_on", "移出日期"))
    measures: Annotated[list[ShortText], BeforeValidator(_split_list)] = Field(
        default_factory=list, validation_alias=alias("measures", "奖惩措施", "惩戒措施")
    )

    def effective_date(self) -> date | None:
        return self.listed_on


class RedList(ListEntry):
    category = "red_list"


class BlackList(ListEntry):
    category = "black_list"


class Commitment(RecordBase):
    category = "commitment"

    commitment_type: ShortText = Field(
        validation_alias=alias("commitment_type", "承诺类型", "承诺事项")
    )
    content: LongText | None = Field(None, validation_alias=alias("content", "承诺内容"))
    made_on: Day = Field(validation_alias=alias("made_on", "承诺日期"))
    status: Annotated[
        Literal["in_force", "kept", "breached"],
        _choice({"履约中": "in_force", "已履约": "kept", "守诺": "kept", "违诺": "breached"}),
    ] = Field("in_force", validation_alias=alias("status", "履约状态"))
    authority: ShortText | None = Field(None, validation_alias=alias("authority", "受理单位"))

    def effective_date(self) -> date | None:
        return self.made_on


class CreditRepair(RecordBase):
    category = "credit_repair"

    repaired_category: Annotated[
        Literal["penalty", "black_list", "judgment_debtor"],
        _choice({"行政处罚": "penalty", "严重失信主体名单": "black_list"}),
    ] = Field("penalty", validation_alias=alias("repaired_category", "修复类别"))
    repaired_record_id: RecordId = Field(
        validation_alias=alias("repaired_record_id", "修复信息标识", "原处罚信息标识")
    )
    repaired_source_department: ShortText | None = Field(
        None, validation_alias=alias("repaired_source_department", "原数据来源单位")
    )
    decision_number: ShortText | None = Field(
        None, validation_alias=alias("decision_number", "行政处罚决定书文号")
    )
    repair_authority: ShortText = Field(
        validation_alias=alias("repair_authority", "修复决定机关", "修复机关")
    )
    effective_on: Day = Field(validation_alias=alias("effective_on", "修复生效日期", "修复日期"))
    status: Annotated[
        Literal["approved", "rejected", "withdrawn"],
        _choice(
            {
                "同意修复": "approved",
                "已修复": "approved",
                "不予修复": "rejected",
                "撤销修复": "withdrawn",
            }
        ),
    ] = Field("approved", validation_alias=alias("status", "修复结果"))

    def effective_date(self) -> date | None:
        return self.effective_on


class TaxRating(RecordBase):
    category = "tax_rating"

    rating_year: Annotated[int, Field(ge=2000, le=2100)] = Field(
        validation_alias=alias("rating_year", "评价年度")
    )
    rating: Literal["A", "B", "M", "C", "D"] = Field(
        validation_alias=alias("rating", "信用等级", "纳税信用等级")
    )
    score: Score | None = Field(None, validation_alias=alias("score", "评价得分"))
    authority: ShortText | None = Field(None, validation_alias=alias("authority", "评价机关"))
    published_on: OptionalDay = Field(None, validation_alias=alias("published_on", "发布日期"))

    def effective_date(self) -> date | None:
        return self.published_on or date(self.rating_year + 1, 4, 1)


class ContributionRecord(RecordBase):
    """Monthly contributions (social insurance, housing fund): paid, owed, months overdue."""

    period: Period = Field(validation_alias=alias("period", "所属期", "缴费期间"))
    headcount: Count | None = Field(
        None, validation_alias=alias("headcount", "参保人数", "缴存人数")
    )
    paid_fen: Fen = Field(0, validation_alias=alias("paid_fen", "实缴金额(分)"))
    overdue_fen: Fen = Field(0, validation_alias=alias("overdue_fen", "欠缴金额(分)"))
    overdue_months: Annotated[int, Field(ge=0, le=600), NotBool] = Field(
        0, validation_alias=alias("overdue_months", "欠缴月数")
    )

    def effective_date(self) -> date | None:
        year, month = self.period.split("-")
        return date(int(year), int(month), 1)


class SocialInsurance(ContributionRecord):
    category = "social_insurance"


class HousingFund(ContributionRecord):
    category = "housing_fund"


class Utility(RecordBase):
    category = "utility"

    utility_type: Annotated[
        Literal["water", "electricity", "gas"],
        _choice({"水": "water", "电": "electricity", "气": "gas", "燃气": "gas"}),
    ] = Field(validation_alias=alias("utility_type", "费用类型"))
    period: Period = Field(validation_alias=alias("period", "所属期"))
    billed_fen: Fen = Field(validation_alias=alias("billed_fen", "应缴金额(分)"))
    paid_fen: Fen = Field(validation_alias=alias("paid_fen", "实缴金额(分)"))
    overdue_days: Annotated[int, Field(ge=0, le=36500), NotBool] = Field(
        0, validation_alias=alias("overdue_days", "逾期天数")
    )

    def effective_date(self) -> date | None:
        year, month = self.period.split("-")
        return date(int(year), int(month), 1)


class JudgmentDebtor(RecordBase):
    """Judgment debtors (被执行人), dishonest ones (失信被执行人) flagged."""

    category = "judgment_debtor"

    case_number: RecordId = Field(validation_alias=alias("case_number", "案号"))
    court: ShortText = Field(validation_alias=alias("court", "执行法院"))
    filed_on: Day = Field(validation_alias=alias("filed_on", "立案时间", "立案日期"))
    published_on: OptionalDay = Field(None, validation_alias=alias("published_on", "发布时间"))
    duty: LongText | None = Field(None, validation_alias=alias("duty", "生效法律文书确定的义务"))
    performance: Annotated[
        Literal["unperformed", "partly_performed", "performed"],
        _choice(
            {
                "全部未履行": "unperformed",
                "部分未履行": "partly_performed",
                "部分履行": "partly_performed",
                "已履行": "performed",
                "全部履行": "performed",
            }
        ),
    ] = Field("unperformed", validation_alias=alias("performance", "被执行人的履行情况"))
    dishonest: Flag = Field(False, validation_alias=alias("dishonest", "是否失信"))
    dishonest_behaviour: LongText | None = Field(
        None, validation_alias=alias("dishonest_behaviour", "失信被执行人行为具体情形")
    )
    amount_fen: Fen | None = Field(None, validation_alias=alias("amount_fen", "执行标的(分)"))
    removed_on: OptionalDay = Field(None, validation_alias=alias("removed_on", "撤销日期"))

    def effective_date(self) -> date | None:
        return self.published_on or self.filed_on


SCHEMAS: dict[str, type[RecordBase]] = {
    cls.category: cls
    for cls in (
        Registration,
        License,
        Penalty,
        RedList,
        BlackList,
        Commitment,
        CreditRepair,
        TaxRating,
        SocialInsurance,
        HousingFund,
        Utility,
        JudgmentDebtor,
    )
}
