"""Pools of plausible Chengdu names, divisions, departments and authorities."""

from __future__ import annotations

import random

from gateway.identifiers import make_credit_code, resident_id_check_char

# Current districts and counties, city level, and two retired county codes
# that old credit codes still carry (郫县 510124, 新津县 510132).
DIVISIONS = (
    ("510104", "锦江区"), ("510105", "青羊区"), ("510106", "金牛区"), ("510107", "武侯区"),
    ("510108", "成华区"), ("510112", "龙泉驿区"), ("510113", "青白江区"), ("510114", "新都区"),
    ("510115", "温江区"), ("510116", "双流区"), ("510117", "郫都区"), ("510118", "新津区"),
    ("510121", "金堂县"), ("510129", "大邑县"), ("510131", "蒲江县"), ("510181", "都江堰市"),
    ("510182", "彭州市"), ("510183", "邛崃市"), ("510184", "崇州市"), ("510185", "简阳市"),
    ("510100", "成都市"),
)  # fmt: skip
RETIRED_DIVISIONS = (("510124", "郫县"), ("510132", "新津县"))

SYLLABLES = tuple(
    "蜀锦蓉天府川峨岷青城金沙宏达鑫源华瑞祥和泰丰盛恒通鼎嘉德兴隆"
    "新诚信佳汇博智远航星辰海云山林竹茶香麻辣味巴熊猫芙蓉银杏桂兰"
)
INDUSTRIES = (
    ("科技", "I65"), ("信息技术", "I65"), ("商贸", "F51"), ("餐饮管理", "H62"),
    ("建筑工程", "E48"), ("农业开发", "A01"), ("生物医药", "C27"), ("文化传媒", "R86"),
    ("物流", "G58"), ("电子", "C39"), ("食品", "C14"), ("机械制造", "C34"),
    ("环保科技", "N77"), ("教育咨询", "P83"), ("旅游开发", "N78"), ("家具", "C21"),
)  # fmt: skip
SHOP_KINDS = ("餐馆", "火锅店", "便利店", "茶馆", "五金店", "理发店", "水果店", "汽修部")
COOP_KINDS = ("种植专业合作社", "养殖专业合作社", "茶叶专业合作社", "猕猴桃专业合作社")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰红建国志强春梅海燕晓东小龙雪梅"

# Departments that provide records, with the credit code each is known by.
DEPARTMENTS = {
    name: make_credit_code("1", "1", "510100", f"{index:08d}")
    for index, name in enumerate(
        (
            "成都市市场监督管理局",
            "国家税务总局成都市税务局",
            "成都市人力资源和社会保障局",
            "成都住房公积金管理中心",
            "成都市中级人民法院",
            "成都市生态环境局",
            "成都市应急管理局",
            "成都海关",
            "国网四川省电力公司成都供电公司",
            "成都市自来水有限责任公司",
            "成都市发展和改革委员会",
            "成都市卫生健康委员会",
            "成都市交通运输局",
        ),
        start=1,
    )
}
SERVICE_OFFICE = "成都市政务服务管理和网络理政办公室"
PENALTY_AUTHORITIES = (
    ("成都市市场监督管理局", "成市监罚", ("虚假宣传", "产品质量不合格", "无照经营", "价格违法")),
    ("成都市生态环境局", "成环罚", ("超标排放", "未批先建", "危险废物处置不当")),
    ("成都市应急管理局", "成应急罚", ("安全生产隐患未整改", "未按规定培训")),
    ("成都海关", "蓉关缉违字", ("申报不实", "逃避监管")),
    ("成都市卫生健康委员会", "成卫罚", ("卫生许可过期", "职业病防治违规")),
    ("成都市交通运输局", "成交罚", ("超限运输", "无证运营")),
)  # fmt: skip
LICENSES = (
    ("食品经营许可证", "JY", "成都市市场监督管理局", "general"),
    ("排污许可证", "91510", "成都市生态环境局", "general"),
    ("道路运输经营许可证", "川交运管许可成字", "成都市交通运输局", "franchise"),
    ("安全生产许可证", "(川)JZ安许证字", "成都市应急管理局", "approval"),
    ("卫生许可证", "成卫公证字", "成都市卫生健康委员会", "general"),
)  # fmt: skip


def company_name(rng: random.Random, place: str) -> tuple[str, str]:
    brand = rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
    industry, code = rng.choice(INDUSTRIES)
    prefix = "成都" if rng.random() < 0.8 else "四川"
    return f"{prefix}{brand}{industry}有限公司", code


def shop_name(rng: random.Random, place: str) -> str:
    return f"{place}{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}{rng.choice(SHOP_KINDS)}"


def coop_name(rng: random.Random, place: str) -> str:
    return f"{place}{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}{rng.choice(COOP_KINDS)}"


def person_name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def resident_id(rng: random.Random) -> str:
    division = rng.choice(DIVISIONS[:20])[0]
    born = f"{rng.randint(1960, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{division}{born}{rng.randint(0, 999):03d}"
    return first17 + resident_id_check_char(first17)
