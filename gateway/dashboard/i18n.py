"""The dashboard's words in Chinese (the default) and English.

Alert titles are written by the rules in Chinese and stored so; English pages
translate them by the rules' own wording (`alert_title`). Every label around
them is translated here, including the evidence's field names (`FIELD`) and
the few words the browser script shows (it reads them from the page, it
holds no text of its own).
"""

from __future__ import annotations

import re

from gateway.webpages import Lang

TEXT: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "信易贷风险看板",
        "login": "登录",
        "name": "用户名",
        "password": "密码",
        "wrong": "用户名或密码错误",
        "locked": "尝试次数过多，请稍后再试",
        "switch": "English",
        "signed_in": "已登录：",
        "logout": "退出登录",
        "alerts": "告警",
        "open_by_severity": "未处理告警（按级别）",
        "dead_letters": "监测未能处理的事件（死信）",
        "dead_letters_note": "以下事件多次处理失败，已停止重试，请运维人员排查：",
        "filters": "筛选",
        "apply": "应用",
        "reset": "重置",
        "status": "状态",
        "severity": "级别",
        "rule": "规则",
        "credit_code": "统一社会信用代码",
        "subject": "对象",
        "alert_title": "告警内容",
        "first_seen": "首次发现",
        "last_seen": "最近更新",
        "evidence": "证据",
        "details": "详情",
        "any": "全部",
        "active": "未关闭",
        "empty": "没有符合条件的告警。",
        "shown": "显示 {shown} / 共 {total} 条",
        "live": "实时更新中",
        "reconnecting": "连接中断，正在重连…",
        "charts": "统计",
        "per_day": "近 14 天每日新增告警（按规则）",
        "per_platform": "各平台放款规模与逾期率",
        "volume": "放款金额（万元）",
        "overdue_ratio": "逾期率",
        "loans": "笔",
        "back": "返回告警列表",
        "alert": "告警",
        "history": "处理记录",
        "at": "时间",
        "actor": "处理人",
        "action": "操作",
        "note": "备注",
        "acknowledge": "确认告警",
        "resolve": "关闭告警",
        "note_hint": "说明处理情况（必填）",
        "read_only": "审计员只读，不能处理告警。",
        "closed": "告警已关闭。",
        "event": "事件",
        "kind": "类型",
        "occurred_at": "发生时间",
        "attrs": "内容",
        "not_stored": "（事件未留存）",
        "role_risk_officer": "风险专员",
        "role_auditor": "审计员",
        "role_department_reviewer": "部门审核员",
        "repairs_overdue": "超过审核时限的信用修复申请",
        "repair_id": "申请编号",
        "repair_department": "审核部门",
        "repair_applied": "申请时间",
        "repair_due": "审核时限",
        "skip": "跳到告警列表",
        "stale": "该告警已被他人处理，以下为最新状态。",
        "enterprise": "企业",
        "enterprise_loans": "企业贷款台账",
        "loans_of": "{name} 的贷款",
        "no_loans": "台账中没有该企业的贷款。",
        "view_loans": "查看该企业的贷款",
        "times_note": "时间均为北京时间（UTC+8），金额单位为元。",
        "facts": "规则发现",
        "refused": "请求被拒绝",
        "csrf_refused": "表单已过期或校验失败（CSRF 令牌缺失或错误），请返回后重新提交。",
        "role_refused": "您的角色无权执行此操作。",
        "note_refused": "备注必须填写，且不超过 2000 字。",
        "form_refused": "表单无法处理，请返回后重试。",
        "back_to": "返回",
        "yes": "是",
        "no": "否",
    },
    "en": {
        "title": "Xin Yi Dai risk dashboard",
        "login": "Log in",
        "name": "Name",
        "password": "Password",
        "wrong": "Wrong name or password",
        "locked": "Too many attempts, try again later",
        "switch": "中文",
        "signed_in": "Logged in as ",
        "logout": "Log out",
        "alerts": "Alerts",
        "open_by_severity": "Open alerts by severity",
        "dead_letters": "Monitor events dead-lettered",
        "dead_letters_note": "These events failed every delivery and are no longer retried; "
        "operators should look into them:",
        "filters": "Filters",
        "apply": "Apply",
        "reset": "Reset",
        "status": "Status",
        "severity": "Severity",
        "rule": "Rule",
        "credit_code": "Credit code",
        "subject": "Subject",
        "alert_title": "Alert",
        "first_seen": "First seen",
        "last_seen": "Last update",
        "evidence": "Evidence",
        "details": "Details",
        "any": "Any",
        "active": "Not resolved",
        "empty": "No alert matches.",
        "shown": "Showing {shown} of {total}",
        "live": "Live",
        "reconnecting": "Connection lost, reconnecting…",
        "charts": "Statistics",
        "per_day": "New alerts per day, last 14 days, by rule",
        "per_platform": "Loan volume and overdue ratio per platform",
        "volume": "Volume (10k yuan)",
        "overdue_ratio": "Overdue ratio",
        "loans": "loans",
        "back": "Back to alerts",
        "alert": "Alert",
        "history": "History",
        "at": "At",
        "actor": "By",
        "action": "Action",
        "note": "Note",
        "acknowledge": "Acknowledge",
        "resolve": "Resolve",
        "note_hint": "What was done (required)",
        "read_only": "Auditors have read-only access.",
        "closed": "This alert is resolved.",
        "event": "Event",
        "kind": "Kind",
        "occurred_at": "Occurred",
        "attrs": "Content",
        "not_stored": "(event not stored)",
        "role_risk_officer": "Risk officer",
        "role_auditor": "Auditor",
        "role_department_reviewer": "Department reviewer",
        "repairs_overdue": "Credit repair applications past their review time",
        "repair_id": "Application",
        "repair_department": "Reviewing department",
        "repair_applied": "Applied",
        "repair_due": "Review due",
        "skip": "Skip to the alerts",
        "stale": "Someone else worked this alert first; this is its status now.",
        "enterprise": "Enterprise",
        "enterprise_loans": "Enterprise loan ledger",
        "loans_of": "Loans of {name}",
        "no_loans": "The ledger holds no loan of this enterprise.",
        "view_loans": "View this enterprise's loans",
        "times_note": "Times are Beijing time (UTC+8); amounts in yuan.",
        "facts": "What the rule found",
        "refused": "Request refused",
        "csrf_refused": "The form has expired or failed its check (missing or wrong CSRF "
        "token). Go back and submit it again.",
        "role_refused": "Your role does not allow this action.",
        "note_refused": "A note is required, at most 2,000 characters.",
        "form_refused": "The form could not be processed; go back and try again.",
        "back_to": "Back",
        "yes": "Yes",
        "no": "No",
    },
}

SEVERITY: dict[Lang, dict[str, str]] = {
    "zh": {"critical": "严重", "high": "高", "medium": "中", "low": "低"},
    "en": {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low"},
}

STATUS: dict[Lang, dict[str, str]] = {
    "zh": {"open": "待处理", "acknowledged": "已确认", "resolved": "已关闭"},
    "en": {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"},
}

ACTION: dict[Lang, dict[str, str]] = {
    "zh": {"raised": "发现", "updated": "更新证据", "acknowledged": "确认", "resolved": "关闭"},
    "en": {"raised": "Raised", "updated": "New evidence", "acknowledged": "Acknowledged",
           "resolved": "Resolved"},
}  # fmt: skip

RULE: dict[Lang, dict[str, str]] = {
    "zh": {
        "multi_lending": "多头借贷",
        "post_loan_deterioration": "贷后信用恶化",
        "overdue_default": "逾期与违约",
        "supply_chain_cluster": "供应链集中逾期",
        "query_abuse": "异常查询",
        "new_entity_risk": "新设主体风险",
        "platform_stress": "平台风险",
    },
    "en": {
        "multi_lending": "Multi-lending",
        "post_loan_deterioration": "Post-loan deterioration",
        "overdue_default": "Overdue and default",
        "supply_chain_cluster": "Supply-chain cluster",
        "query_abuse": "Query abuse",
        "new_entity_risk": "New-entity risk",
        "platform_stress": "Platform stress",
    },
}

PLATFORM: dict[Lang, dict[str, str]] = {
    "zh": {
        "kechuangtong": "科创通",
        "nongdaitong": "农贷通",
        "yingchuang": "盈创动力",
        "tianfu-rongtong": "天府融通",
        "chuangfu-tianfu": "创富天府",
    },
    "en": {
        "kechuangtong": "Kechuangtong",
        "nongdaitong": "Nongdaitong",
        "yingchuang": "Yingchuang",
        "tianfu-rongtong": "Tianfu Rongtong",
        "chuangfu-tianfu": "Chuangfu Tianfu",
    },
}


# Every field an alert's evidence or a ledger row shows: the rules' details, the
# monitor's event attributes, the ledger's columns and the record fields the
# rules read. A record's other fields take their catalogue name (`facts.py`).
FIELD: dict[Lang, dict[str, str]] = {
    "zh": {
        "platform": "平台", "platforms": "申请平台", "banks": "查询银行",
        "loan_no": "贷款编号", "bank_code": "放款银行", "amount_fen": "金额",
        "outstanding_fen": "贷款余额", "days_overdue": "逾期天数", "status": "状态",
        "core_enterprise_code": "核心企业", "event_type": "事件类型",
        "first_event_at": "首次事件时间", "last_event_at": "最近事件时间",
        "window_days": "统计窗口（天）", "window_hours": "统计窗口（小时）",
        "since": "起始时间", "until": "截止时间", "registered_on": "成立日期",
        "applied_on": "申请日期", "enterprises": "涉及企业", "suppliers": "逾期供应商",
        "overdue_loans": "逾期贷款笔数", "disbursed_loans": "放款笔数", "ratio": "逾期率",
        "trigger": "触发情形", "category": "信息类别", "record_id": "记录编号",
        "version": "版本", "live_loans": "在贷贷款", "queries": "查询次数",
        "hourly_average": "日常每小时查询次数", "denials": "被拒次数", "client_id": "查询方",
        "route": "接口", "reason": "原因", "credit_code": "统一社会信用代码",
        "fine_fen": "罚款金额", "confiscation_fen": "没收金额",
        "registered_capital_fen": "注册资本", "severity": "违法情节", "list_name": "名单名称",
        "dishonest": "是否失信", "rating": "纳税信用等级", "data": "记录内容",
    },
    "en": {
        "platform": "Platform", "platforms": "Platforms", "banks": "Banks",
        "loan_no": "Loan number", "bank_code": "Bank", "amount_fen": "Amount",
        "outstanding_fen": "Outstanding", "days_overdue": "Days overdue", "status": "Status",
        "core_enterprise_code": "Core enterprise", "event_type": "Event type",
        "first_event_at": "First event", "last_event_at": "Last event",
        "window_days": "Window (days)", "window_hours": "Window (hours)",
        "since": "From", "until": "Until", "registered_on": "Registered on",
        "applied_on": "Applied on", "enterprises": "Enterprises", "suppliers": "Overdue suppliers",
        "overdue_loans": "Overdue loans", "disbursed_loans": "Disbursed loans",
        "ratio": "Overdue ratio", "trigger": "Trigger", "category": "Record category",
        "record_id": "Record id", "version": "Version", "live_loans": "Live loans",
        "queries": "Queries", "hourly_average": "Usual queries per hour", "denials": "Refusals",
        "client_id": "Client", "route": "Route", "reason": "Reason", "credit_code": "Credit code",
        "fine_fen": "Fine", "confiscation_fen": "Confiscated", "registered_capital_fen":
        "Registered capital", "severity": "Severity", "list_name": "List",
        "dishonest": "Dishonest", "rating": "Tax credit rating", "data": "Record",
    },
}  # fmt: skip

KIND: dict[Lang, dict[str, str]] = {
    "zh": {"loan": "贷款事件", "record": "信用记录", "query": "报告查询",
           "consent_denied": "授权不符被拒"},
    "en": {"loan": "Loan event", "record": "Credit record", "query": "Report query",
           "consent_denied": "Refused query"},
}  # fmt: skip

EVENT_TYPE: dict[Lang, dict[str, str]] = {
    "zh": {
        "application_submitted": "提交申请", "consent_granted": "授权", "loan_approved": "审批通过",
        "loan_rejected": "拒贷", "loan_disbursed": "放款", "repayment_received": "还款",
        "repayment_overdue": "还款逾期", "loan_defaulted": "违约", "loan_settled": "结清",
    },
    "en": {
        "application_submitted": "Application submitted", "consent_granted": "Consent granted",
        "loan_approved": "Approved", "loan_rejected": "Rejected", "loan_disbursed": "Disbursed",
        "repayment_received": "Repayment received", "repayment_overdue": "Repayment overdue",
        "loan_defaulted": "Defaulted", "loan_settled": "Settled",
    },
}  # fmt: skip

CATEGORY: dict[Lang, dict[str, str]] = {
    "zh": {
        "registration": "登记注册", "license": "行政许可", "penalty": "行政处罚",
        "red_list": "红名单", "black_list": "黑名单", "commitment": "信用承诺",
        "credit_repair": "信用修复", "tax_rating": "纳税信用", "social_insurance": "社会保险",
        "housing_fund": "住房公积金", "utility": "水电气缴费", "judgment_debtor": "被执行人",
    },
    "en": {
        "registration": "Registration", "license": "License", "penalty": "Penalty",
        "red_list": "Red list", "black_list": "Black list", "commitment": "Commitment",
        "credit_repair": "Credit repair", "tax_rating": "Tax rating",
        "social_insurance": "Social insurance", "housing_fund": "Housing fund",
        "utility": "Utilities", "judgment_debtor": "Judgment debtor",
    },
}  # fmt: skip

TRIGGER: dict[Lang, dict[str, str]] = {
    "zh": {"penalty": "行政处罚", "black_list": "列入黑名单", "dishonest": "失信被执行人",
           "tax_rating": "纳税信用降级"},
    "en": {"penalty": "Administrative penalty", "black_list": "Black-listed",
           "dishonest": "Dishonest judgment debtor", "tax_rating": "Tax rating fall"},
}  # fmt: skip

LOAN_STATUS: dict[Lang, dict[str, str]] = {
    "zh": {"applied": "已申请", "approved": "已审批", "rejected": "已拒绝", "disbursed": "已放款",
           "overdue": "逾期", "defaulted": "违约", "settled": "已结清"},
    "en": {"applied": "Applied", "approved": "Approved", "rejected": "Rejected",
           "disbursed": "Disbursed", "overdue": "Overdue", "defaulted": "Defaulted",
           "settled": "Settled"},
}  # fmt: skip

PENALTY_SEVERITY: dict[Lang, dict[str, str]] = {
    "zh": {"minor": "轻微", "general": "一般", "serious": "严重"},
    "en": {"minor": "Minor", "general": "General", "serious": "Serious"},
}

# Fields whose values are codes with words of their own.
VALUE_WORDS: dict[str, dict[Lang, dict[str, str]]] = {
    "platform": PLATFORM, "platforms": PLATFORM, "event_type": EVENT_TYPE,
    "category": CATEGORY, "trigger": TRIGGER, "status": LOAN_STATUS,
    "severity": PENALTY_SEVERITY,
}  # fmt: skip

# The rules' titles (policies/risk/*.py), as they word them, in English.
_TITLES_EN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), english)
    for pattern, english in (
        (r"还款逾期 (\d+) 天", "Repayment {0} days overdue"),
        (r"贷款违约", "Loan defaulted"),
        (r"(\d+)天内在(\d+)个平台申请贷款", "Loan applications on {1} platforms within {0} days"),
        (r"(\d+)天内被(\d+)家银行查询", "Queried by {1} banks within {0} days"),
        (r"成立不足(\d+)个月的企业申请大额贷款",
         "A large loan applied for by an enterprise less than {0} months old"),
        (r"同一法定代表人的(\d+)家企业在(\d+)天内申请贷款",
         "{0} enterprises of one legal representative applied for loans within {1} days"),
        (r"平台(\d+)天逾期率 (\d+)%", "Platform overdue ratio {1}% over {0} days"),
        (r"贷后新增行政处罚", "New administrative penalty after lending"),
        (r"贷后列入黑名单", "Black-listed after lending"),
        (r"贷后成为失信被执行人", "Became a dishonest judgment debtor after lending"),
        (r"贷后纳税信用等级降为 (\w+)", "Tax credit rating fell to {0} after lending"),
        (r"(\d+)小时内查询(\d+)次，远超日常", "{1} queries within {0} hours, far above usual"),
        (r"(\d+)小时内(\d+)次查询因授权不符被拒",
         "{1} queries refused within {0} hours: consent mismatch"),
        (r"核心企业的(\d+)家供应商在(\d+)天内逾期",
         "{0} suppliers of a core enterprise overdue within {1} days"),
    )
)  # fmt: skip


def alert_title(title: str, rule: str, lang: Lang) -> str:
    """The title in `lang`: stored in Chinese; in English by the rule's wording, or
    the rule's English name for a title worded in a way this table does not know."""
    if lang == "zh":
        return title
    for pattern, english in _TITLES_EN:
        found = pattern.fullmatch(title)
        if found:
            return english.format(*found.groups())
    return label(RULE, lang, rule)


def label(table: dict[Lang, dict[str, str]], lang: Lang, key: str) -> str:
    """The translation, or the key itself for a value added after this table."""
    return table[lang].get(key, key)
