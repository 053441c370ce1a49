"""The portal's and the consent page's words, Chinese (the default) and English."""

from __future__ import annotations

from gateway.webpages import Lang

TEXT: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "企业信用服务门户",
        "switch": "English",
        "acting_for": "当前企业：",
        "logout": "退出登录",
        "nav_consents": "授权管理",
        "nav_access": "访问记录",
        "nav_report": "我的信用报告",
        "nav_disputes": "异议申请",
        "nav_repairs": "信用修复",
        "welcome": "在这里管理贵企业对金融机构的查询授权，查看谁查询了贵企业的信用信息，"
        "查阅本企业信用报告，提出异议和申请信用修复。",
        "consent_title": "信用报告查询授权",
        "consent_intro": "以下金融机构申请查询贵企业的信用报告。请核对后决定是否授权：",
        "bank": "金融机构",
        "enterprise": "企业",
        "purpose": "查询用途",
        "sections": "报告内容",
        "valid_until": "授权有效期至",
        "valid": "有效期",
        "daily_limit": "每日查询上限",
        "no_limit": "无（按用途规则）",
        "approve": "同意授权",
        "decline": "拒绝",
        "consents_title": "贵企业的查询授权",
        "channel": "授权方式",
        "status": "状态",
        "used": "已查询次数",
        "actions": "操作",
        "none": "暂无授权。",
        "revoke": "撤销",
        "revoke_title": "确认撤销授权",
        "revoke_text": "撤销后，该金融机构的下一次查询即被拒绝，且无法恢复；如需再次授权，"
        "须由该机构重新申请。",
        "revoke_yes": "确认撤销",
        "cancel": "取消",
        "revoked": "授权已撤销，该机构的下一次查询将被拒绝。",
        "error_title": "无法完成请求",
        "back": "返回",
        "login_again": "重新登录",
        "logged_out": "您已退出登录。",
        "login": "登录",
        "status_active": "有效",
        "status_expired": "已过期",
        "status_revoked": "已撤销",
        "channel_portal": "企业在线授权",
        "channel_direct": "机构提交授权书",
        "channel_platform": "融资平台授权",
        "role_legal_representative": "法定代表人",
        "role_agent": "经办人",
    },
    "en": {
        "title": "Enterprise credit portal",
        "switch": "中文",
        "acting_for": "Acting for: ",
        "logout": "Log out",
        "nav_consents": "Consents",
        "nav_access": "Access history",
        "nav_report": "My report",
        "nav_disputes": "Disputes",
        "nav_repairs": "Credit repair",
        "welcome": "Manage which banks may read your enterprise's credit report, see who read "
        "it, read your own report, raise disputes and apply for credit repair.",
        "consent_title": "Authorise a credit report",
        "consent_intro": "This bank asks to read your enterprise's credit report. Check what "
        "it asks for, then decide:",
        "bank": "Bank",
        "enterprise": "Enterprise",
        "purpose": "Purpose",
        "sections": "Sections",
        "valid_until": "Valid until",
        "valid": "Validity",
        "daily_limit": "Reports a day at most",
        "no_limit": "none (the purpose's rules)",
        "approve": "Approve",
        "decline": "Decline",
        "consents_title": "Your enterprise's consents",
        "channel": "Given through",
        "status": "State",
        "used": "Reports read",
        "actions": "Actions",
        "none": "No consents yet.",
        "revoke": "Revoke",
        "revoke_title": "Revoke this consent?",
        "revoke_text": "Once revoked, the bank's very next request is refused; this cannot be "
        "undone. To grant access again the bank must ask again.",
        "revoke_yes": "Revoke",
        "cancel": "Cancel",
        "revoked": "The consent is revoked: the bank's next request will be refused.",
        "error_title": "The request cannot be completed",
        "back": "Back",
        "login_again": "Log in again",
        "logged_out": "You are logged out.",
        "login": "Log in",
        "status_active": "active",
        "status_expired": "expired",
        "status_revoked": "revoked",
        "channel_portal": "approved here",
        "channel_direct": "document sent by the bank",
        "channel_platform": "signed on a financing platform",
        "role_legal_representative": "legal representative",
        "role_agent": "agent",
    },
}

SECTIONS: dict[Lang, dict[str, str]] = {
    "zh": {
        "basic": "基本信息", "licenses": "行政许可", "penalties": "行政处罚",
        "lists": "红黑名单", "commitments": "信用承诺", "tax": "纳税信用",
        "social_insurance": "社会保险", "housing_fund": "住房公积金",
        "utilities": "公用事业缴费", "judicial": "司法信息", "loans": "融资信息",
    },
    "en": {
        "basic": "Basic information", "licenses": "Licences", "penalties": "Penalties",
        "lists": "Red and black lists", "commitments": "Credit commitments", "tax": "Tax rating",
        "social_insurance": "Social insurance", "housing_fund": "Housing fund",
        "utilities": "Utility payments", "judicial": "Court records", "loans": "Loans",
    },
}  # fmt: skip

PURPOSES: dict[Lang, dict[str, str]] = {
    "zh": {
        "loan_application": "贷款申请", "credit_review": "授信审查",
        "post_loan_monitoring": "贷后管理",
    },
    "en": {
        "loan_application": "Loan application", "credit_review": "Credit review",
        "post_loan_monitoring": "Post-loan monitoring",
    },
}  # fmt: skip

# What the consent page says when it cannot be used: what happened and what to
# do, in the person's words, not the grant service's detail (`request_uri expired`).
REFUSALS: dict[Lang, dict[str, str]] = {
    "zh": {
        "request_gone": "这份授权申请已无法处理：它已被同意或拒绝、已过期，或并非本平台发出。"
        "如仍需授权，请回到该金融机构的页面重新发起申请。",
        "other_enterprise": "这份授权申请针对的是另一家企业，与您当前登录的企业不一致。"
        "请使用该企业的账号重新登录。",
        "incomplete_link": "授权链接不完整。请回到该金融机构的页面重新进入。",
        "session_ended": "您的登录已过期，本次操作未生效。请重新登录后再作决定。",
        "form_stale": "页面已失效（可能来自另一次登录），本次操作未生效。请重新打开授权申请。",
    },
    "en": {
        "request_gone": "This request can no longer be decided: it was already approved or "
        "declined, it has expired, or it was not issued here. To authorise, start again "
        "from the bank's site.",
        "other_enterprise": "This request is for another enterprise than the one you are "
        "logged in for. Log in again with that enterprise's account.",
        "incomplete_link": "The link is incomplete. Go back to the bank's site and start again.",
        "session_ended": "Your login has expired and nothing was decided. Log in again, "
        "then decide.",
        "form_stale": "This page is no longer valid (it may come from another login) and "
        "nothing was decided. Open the request again.",
    },
}


def word(table: dict[Lang, dict[str, str]], lang: Lang, key: str) -> str:
    """The translation, or the key itself for a value added after this table."""
    return table[lang].get(key, key)
