"""The dashboard's words in Chinese (the default) and English.

Alert titles are written by the rules in Chinese and shown as they are; every
label around them is translated here, including the few the browser script
shows (it reads them from the page, it holds no text of its own).
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

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
        "skip": "跳到告警列表",
        "stale": "该告警已被他人处理，以下为最新状态。",
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
        "skip": "Skip to the alerts",
        "stale": "Someone else worked this alert first; this is its status now.",
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


def lang_of(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"


def label(table: dict[Lang, dict[str, str]], lang: Lang, key: str) -> str:
    """The translation, or the key itself for a value added after this table."""
    return table[lang].get(key, key)
