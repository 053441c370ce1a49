"""The printable report's words and units: Chinese labels, yuan, Beijing time.

The JSON report keeps our field names, codes, fen and UTC; a credit officer
reads none of those. Everything here turns one value into what the printed
page shows (as plain text: `html.py` escapes it).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway.dashboard.i18n import PLATFORM
from gateway.reports.build import CHENGDU

# Fen recorded from a source that gave 万元 (penalties' amounts, registered
# capital) print in 万元, as on the decision or the licence; all other money in 元.
WAN_FIELDS = frozenset({"fine_fen", "confiscation_fen", "registered_capital_fen"})

CATEGORIES = {
    "registration": "登记信息",
    "license": "行政许可",
    "penalty": "行政处罚",
    "red_list": "守信激励名单（红名单）",
    "black_list": "严重失信主体名单（黑名单）",
    "commitment": "信用承诺",
    "credit_repair": "信用修复",
    "tax_rating": "纳税信用评价",
    "social_insurance": "社会保险",
    "housing_fund": "住房公积金",
    "utility": "公用事业缴费",
    "judgment_debtor": "被执行人",
}
PURPOSES = {
    "loan_application": "贷款申请",
    "credit_review": "授信审查",
    "post_loan_monitoring": "贷后管理",
    "self_query": "本企业自查",
}
ENTERPRISE_STATUS = {
    "active": "存续",
    "deregistered": "注销",
    "revoked": "吊销",
    "moved_out": "迁出",
    "suspended": "停业",
}
_VALUES: dict[str, dict[str, str]] = {
    "entity_type": {
        "limited_company": "有限责任公司",
        "joint_stock_company": "股份有限公司",
        "individual_business": "个体工商户",
        "farmer_cooperative": "农民专业合作社",
        "sole_proprietorship": "个人独资企业",
        "partnership": "合伙企业",
        "other": "其他",
    },
    "party_category": {
        "legal_person": "法人及非法人组织",
        "natural_person": "自然人",
        "individual_business": "个体工商户",
    },
    "license_category": {
        "general": "普通",
        "franchise": "特许",
        "recognition": "认可",
        "approval": "核准",
        "registration": "登记",
        "other": "其他",
    },
    "procedure": {"simple": "简易程序", "general": "普通程序"},
    "severity": {"minor": "轻微", "general": "一般", "serious": "严重"},
    "performance": {
        "unperformed": "全部未履行",
        "partly_performed": "部分未履行",
        "performed": "已履行",
    },
    "utility_type": {"water": "水费", "electricity": "电费", "gas": "燃气费"},
    "borrower": {"enterprise": "企业", "natural_person": "自然人"},
    "category": {"red_list": "红名单", "black_list": "黑名单"},
    "platform": PLATFORM["zh"],
    # Licences, commitments and loans; their codes never collide.
    "status": {
        "valid": "有效",
        "invalid": "无效",
        "revoked": "已撤销",
        "cancelled": "已注销",
        "in_force": "履约中",
        "kept": "已履约",
        "breached": "违诺",
        "applied": "已申请",
        "approved": "已审批",
        "rejected": "已拒绝",
        "disbursed": "已放款",
        "overdue": "逾期",
        "defaulted": "违约",
        "settled": "已结清",
    },
}
DISPUTE_STATUS = {"open": "异议处理中", "upheld": "异议成立，已更正", "rejected": "异议不成立"}
COMPLETENESS = {"complete": "完整", "partial": "部分", "unavailable": "暂无数据"}

FIELDS = {
    "credit_code": "统一社会信用代码",
    "name": "企业名称",
    "subject_name": "主体名称",
    "entity_type": "企业类型",
    "division_code": "行政区划代码",
    "legal_rep_masked": "法定代表人",
    "registered_on": "成立日期",
    "registered_capital_fen": "注册资本",
    "industry_code": "行业代码",
    "address": "住所",
    "registration_authority": "登记机关",
    "party_category": "行政相对人类别",
    "document_name": "许可决定文书名称",
    "document_number": "许可决定文书号",
    "license_category": "许可类别",
    "certificate_name": "许可证书名称",
    "certificate_number": "许可编号",
    "content": "内容",
    "decision_date": "决定日期",
    "valid_from": "有效期自",
    "valid_until": "有效期至",
    "authority": "决定机关",
    "authority_code": "机关统一社会信用代码",
    "source_department_code": "来源单位统一社会信用代码",
    "decision_number": "处罚决定书文号",
    "violation_type": "违法行为类型",
    "facts": "违法事实",
    "legal_basis": "处罚依据",
    "penalty_types": "处罚类别",
    "fine_fen": "罚款金额",
    "confiscation_fen": "没收金额",
    "affected_license": "暂扣或吊销证照",
    "procedure": "程序类型",
    "severity": "违法情节",
    "publication_until": "公示截止期",
    "published_until": "公示至",
    "publication_rule_set": "公示依据",
    "list_name": "名单名称",
    "listing_authority": "认定部门",
    "reason": "列入原因",
    "listed_on": "列入日期",
    "removed_on": "移出日期",
    "measures": "奖惩措施",
    "commitment_type": "承诺类型",
    "made_on": "承诺日期",
    "rating_year": "评价年度",
    "rating": "纳税信用等级",
    "score": "评价得分",
    "published_on": "发布日期",
    "period": "所属期",
    "headcount": "人数",
    "paid_fen": "实缴金额",
    "overdue_fen": "欠缴金额",
    "overdue_months": "欠缴月数",
    "utility_type": "费用类型",
    "billed_fen": "应缴金额",
    "overdue_days": "逾期天数",
    "case_number": "案号",
    "court": "执行法院",
    "filed_on": "立案日期",
    "duty": "生效法律文书确定的义务",
    "performance": "履行情况",
    "dishonest": "失信被执行人",
    "dishonest_behaviour": "失信情形",
    "amount_fen": "金额",
    "platform": "融资平台",
    "loan_no": "贷款编号",
    "bank_code": "放款机构",
    "status": "状态",
    "outstanding_fen": "余额",
    "days_overdue": "逾期天数",
    "core_enterprise_code": "核心企业代码",
    "first_event_at": "首次记录",
    "last_event_at": "最近更新",
    "borrower": "借款人类型",
    "source_record_id": "来源记录标识",
    "source_department": "数据来源单位",
    "data_as_of": "数据时间",
    "version": "版本",
    "category": "类别",
}


def field(name: str) -> str:
    """A field's Chinese label; a field added after this table shows its own name."""
    return FIELDS.get(name, name)


def beijing(value: Any) -> str:
    """An instant in Beijing time (UTC+8) to the second; a bare date stays a date."""
    if isinstance(value, str):
        text = value
        if len(text) <= 10:
            return text
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        if value.tzinfo is None:  # never stored so; shown as given rather than guessed
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.astimezone(CHENGDU).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _number(amount: Decimal, places: int) -> str:
    text = f"{amount:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:,.2f} 元"


def wan(fen: int) -> str:
    """万元 with as many decimals as the amount needs (a fen is 0.000001 万元)."""
    return f"{_number(Decimal(fen) / 1_000_000, 6)} 万元"


def evidence(cited: list[Any]) -> str:
    """A reason's evidence as printed: records by their number (the sections'
    记录号 column), loans (`platform:loan_no`) by platform and loan number."""
    records = [str(i) for i in cited if not isinstance(i, str)]
    loans = []
    for ref in (i for i in cited if isinstance(i, str)):
        platform, _, loan_no = ref.partition(":")
        loans.append(f"{_VALUES['platform'].get(platform, platform)}贷款 {loan_no}")
    return "；".join(
        ([f"记录号 {'、'.join(records)}"] if records else [])
        + (["、".join(loans)] if loans else [])
    )


def value(name: str, raw: Any) -> str:
    """One field's value as printed: money in yuan, times in Beijing time, codes in Chinese."""
    if raw is None or raw == "" or raw == []:
        return "—"
    if isinstance(raw, bool):
        return "是" if raw else "否"
    if name.endswith("_fen") and isinstance(raw, int):
        return wan(raw) if name in WAN_FIELDS else yuan(raw)
    if name.endswith("_at") or name == "data_as_of":
        return beijing(raw)
    if isinstance(raw, list):
        return "、".join(value(name, item) for item in raw)
    if isinstance(raw, dict):
        return "；".join(f"{field(k)}：{value(k, v)}" for k, v in raw.items())
    if name == "rating_year":
        return f"{raw} 年度"
    text = str(raw)
    return _VALUES.get(name, {}).get(text, text)


_REASONS = (
    (re.compile(r"^no data source is connected yet$"), "尚未接入数据来源"),
    (re.compile(r"^no complete feed received for (.+)$"), "未收到完整数据：{0}"),
    (re.compile(r"^no complete feed for (\w+)$"), "未收到{0}的完整数据"),
    (
        re.compile(r"^(\w+) data is older than (\d+) days \(last feed ([\d-]+)\)$"),
        "{0}数据已超过 {1} 天未更新（最近一次 {2}）",
    ),
    (
        re.compile(r"^feeds delivered and current \(last complete feed: (.+)\)$"),
        "数据按时报送（最近一次完整报送：{0}）",
    ),
    (re.compile(r"^a section without records has none to show$"), "无记录即确无此类记录"),
    (re.compile(r"^platform ledger connected$"), "已接入融资平台台账"),
    (re.compile(r"^every loan shown$"), "列示全部贷款"),
)


def _names(group: str) -> str:
    """ "penalty, license" or "penalty 2026-11-01, license 2026-10-30" in Chinese."""
    out = []
    for item in group.split(","):
        category, _, day = item.strip().partition(" ")
        out.append(f"{CATEGORIES.get(category, category)} {day}".rstrip())
    return "、".join(out)


def completeness_reason(reason: str) -> str:
    """`completeness` reasons in Chinese, part by part; a wording this table does
    not know is shown as it is rather than dropped."""
    parts = []
    for part in reason.split("; "):
        for pattern, words in _REASONS:
            found = pattern.match(part)
            if found:
                parts.append(words.format(*(_names(g) for g in found.groups())))
                break
        else:
            parts.append(part)
    return "；".join(parts)
