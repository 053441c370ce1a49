"""Pools of plausible Chengdu names, divisions, departments and people.

Everything here is a fixed pool or a pure function of a `DemoRandom`, so
the demo data set is a function of its seed alone.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

from gateway.identifiers import make_credit_code, resident_id_check_char

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

# (division code, place name, weight). Weights follow where Chengdu's market
# entities are registered: the central districts and the city level (高新区
# and 天府新区 registrations carry 510100) dominate.
DIVISIONS = (
    ("510104", "锦江区", 8), ("510105", "青羊区", 7), ("510106", "金牛区", 9),
    ("510107", "武侯区", 10), ("510108", "成华区", 8), ("510112", "龙泉驿区", 5),
    ("510113", "青白江区", 2), ("510114", "新都区", 6), ("510115", "温江区", 4),
    ("510116", "双流区", 6), ("510117", "郫都区", 4), ("510118", "新津区", 2),
    ("510121", "金堂县", 2), ("510129", "大邑县", 1), ("510131", "蒲江县", 1),
    ("510181", "都江堰市", 2), ("510182", "彭州市", 2), ("510183", "邛崃市", 1),
    ("510184", "崇州市", 1), ("510185", "简阳市", 2), ("510100", "成都市", 12),
)  # fmt: skip
DIVISION_WEIGHTS = tuple(weight for _, _, weight in DIVISIONS)
# Codes issued before a county became a district keep the old county code:
# 郫县 became 郫都区 in December 2016, 新津县 新津区 in 2020.
RETIRED_DIVISIONS = (("510124", "郫县", 2016), ("510132", "新津县", 2019))

SYLLABLES = (
    "蜀锦蓉府川峨岷青城金沙宏达鑫源华瑞祥和泰丰盛恒通鼎嘉德兴隆新诚信佳汇博智远航星辰海云山林竹"
    "茶香味巴熊猫芙蓉银杏桂兰卓越正大东方西南天元中联创合力美康宁安益众邦锐思睿铭宇晟昊骏腾飞"
    "汇聚百川千里万家久长乐福禄寿顺利永昌旺兆明阳光辉煌耀新晨曦锦程鹏尚品优客乾坤道弘毅"
)
# (industry word, industry code, licence kinds it tends to hold)
INDUSTRIES = (
    ("科技", "I65", ()), ("信息技术", "I65", ()), ("网络科技", "I64", ()),
    ("商贸", "F51", ("food",)), ("餐饮管理", "H62", ("food", "health")),
    ("建筑工程", "E48", ("safety",)), ("农业开发", "A01", ()), ("生物医药", "C27", ("pollution",)),
    ("文化传媒", "R86", ()), ("物流", "G58", ("transport",)), ("电子", "C39", ("pollution",)),
    ("食品", "C14", ("food", "pollution")), ("机械制造", "C34", ("pollution", "safety")),
    ("环保科技", "N77", ("pollution",)), ("教育咨询", "P83", ()), ("旅游开发", "N78", ()),
    ("家具", "C21", ("pollution",)), ("企业管理咨询", "L72", ()), ("房地产经纪", "K70", ()),
    ("汽车服务", "O81", ()), ("医疗器械", "C35", ("health",)), ("酒业", "C15", ("food",)),
)  # fmt: skip
SHOPS = (
    ("餐馆", "H62", ("food",)), ("火锅店", "H62", ("food",)), ("串串香店", "H62", ("food",)),
    ("便利店", "F52", ("food",)), ("茶馆", "H62", ("food", "health")), ("五金店", "F52", ()),
    ("理发店", "O80", ("health",)), ("水果店", "F52", ()), ("汽修部", "O81", ()),
    ("面馆", "H62", ("food",)), ("副食店", "F52", ("food",)), ("服装店", "F52", ()),
)  # fmt: skip
COOPS = ("种植专业合作社", "养殖专业合作社", "茶叶专业合作社", "猕猴桃专业合作社", "蔬菜专业合作社")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰红建国志春梅海燕晓东龙雪琴川渝蓉婷浩宇轩"

MARKET = "成都市市场监督管理局"
TAX = "国家税务总局成都市税务局"
HR = "成都市人力资源和社会保障局"
HOUSING = "成都住房公积金管理中心"
COURT = "成都市中级人民法院"
CREDIT_OFFICE = "成都市发展和改革委员会"
SERVICE_OFFICE = "成都市政务服务管理和网络理政办公室"
ELECTRICITY = "国网四川省电力公司成都供电公司"
WATER = "成都市自来水有限责任公司"
GAS = "成都城市燃气有限责任公司"

# Departments and authorities, each with the credit code it is known by
# (government bodies: authority 1, type 1; utilities are companies: 9, 1).
_BODIES = (
    (MARKET, "11"), (TAX, "11"), (HR, "11"), (HOUSING, "12"), (COURT, "11"),
    ("成都市生态环境局", "11"), ("成都市应急管理局", "11"), ("成都海关", "11"),
    (ELECTRICITY, "91"), (WATER, "91"), (GAS, "91"), (CREDIT_OFFICE, "11"),
    ("成都市卫生健康委员会", "11"), ("成都市交通运输局", "11"), ("成都市行政审批局", "11"),
)  # fmt: skip
# District market regulators decide most small penalties.
DISTRICT_MARKET = {
    division: (f"成都市{place}市场监督管理局", f"{place[:2]}市监罚")
    for division, place, _ in DIVISIONS
    if division != "510100"
}


def _departments() -> dict[str, str]:
    codes = {
        name: make_credit_code(kind[0], kind[1], "510100", f"{n:04d}{n * 37 % 9973:04d}")
        for n, (name, kind) in enumerate(_BODIES, start=1)
    }
    for n, (division, (name, _)) in enumerate(DISTRICT_MARKET.items(), start=100):
        codes[name] = make_credit_code("1", "1", division, f"{n:04d}{n * 37:04d}")
    return codes


DEPARTMENTS = _departments()

# (authority, decision-number prefix, ((violation, legal basis), ...))
PENALTY_AUTHORITIES = (
    (MARKET, "成市监罚", (
        ("虚假宣传", "《中华人民共和国反不正当竞争法》第二十条"),
        ("销售不合格产品", "《中华人民共和国产品质量法》第四十九条"),
        ("未按规定公示年度报告", "《企业信息公示暂行条例》第十八条"),
        ("价格违法", "《中华人民共和国价格法》第四十二条"),
    )),
    ("成都市生态环境局", "成环罚", (
        ("超标排放大气污染物", "《中华人民共和国大气污染防治法》第九十九条"),
        ("未批先建", "《中华人民共和国环境影响评价法》第三十一条"),
        ("危险废物处置不当", "《中华人民共和国固体废物污染环境防治法》第一百一十二条"),
    )),
    ("成都市应急管理局", "成应急罚", (
        ("安全生产隐患未整改", "《中华人民共和国安全生产法》第一百零二条"),
        ("未按规定开展安全培训", "《中华人民共和国安全生产法》第九十七条"),
    )),
    ("成都海关", "蓉关缉违字", (("申报不实", "《中华人民共和国海关行政处罚实施条例》第十五条"),)),
    ("成都市卫生健康委员会", "成卫罚", (
        ("公共场所卫生许可证过期", "《公共场所卫生管理条例实施细则》第三十五条"),
    )),
    ("成都市交通运输局", "成交罚", (("超限运输", "《公路安全保护条例》第六十四条"),)),
)  # fmt: skip

# kind -> (licence, category, authority)
LICENSES = {
    "food": ("食品经营许可证", "general", "成都市行政审批局"),
    "pollution": ("排污许可证", "general", "成都市生态环境局"),
    "transport": ("道路运输经营许可证", "franchise", "成都市交通运输局"),
    "safety": ("安全生产许可证", "approval", "成都市应急管理局"),
    "health": ("公共场所卫生许可证", "general", "成都市行政审批局"),
}


T = TypeVar("T")


class DemoRandom(random.Random):
    """Random with lean randint/choice: the library's versions cost ~0.5 µs a
    call, which over ~60 draws an enterprise is a tenth of the generator's time.
    (Scaling random() is biased by at most one part in 2**53 per draw.)"""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def weighted(self, items: Sequence[T], cumulative: Sequence[float]) -> T:
        """One of `items`, by the running totals of their weights (see `cumulative`)."""
        return items[bisect(cumulative, self.random() * cumulative[-1])]


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    return tuple(accumulate(weights))


_DIVISION_CUM = cumulative(DIVISION_WEIGHTS)
_PERSON_DIVISIONS = DIVISIONS[:-1]  # people are born in a district or county, not "the city"
_PERSON_CUM = cumulative(DIVISION_WEIGHTS[:-1])


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    resident_id: str


def pick_division(rng: DemoRandom, registered_year: int) -> tuple[str, str]:
    if registered_year <= 2019 and rng.random() < 0.06:
        division, place, until = rng.choice(RETIRED_DIVISIONS)
        if registered_year <= until:
            return division, place
    division, place, _ = rng.weighted(DIVISIONS, _DIVISION_CUM)
    return division, place


def brand(rng: DemoRandom) -> str:
    return rng.choice(SYLLABLES) + rng.choice(SYLLABLES)


def company_name(rng: DemoRandom, suffix: str) -> tuple[str, str, tuple[str, ...]]:
    word, code, licences = rng.choice(INDUSTRIES)
    prefix = "成都" if rng.random() < 0.75 else ("四川" if rng.random() < 0.8 else "成都市")
    return f"{prefix}{brand(rng)}{word}{suffix}", code, licences


def shop_name(rng: DemoRandom, place: str) -> tuple[str, str, tuple[str, ...]]:
    kind, code, licences = rng.choice(SHOPS)
    # Many individual businesses trade under the owner's surname: 张记, 李氏.
    mark = rng.choice(SURNAMES) + rng.choice("记氏家") if rng.random() < 0.3 else brand(rng)
    return f"{place}{mark}{kind}", code, licences


def coop_name(rng: DemoRandom, place: str) -> str:
    town = rng.choice(SYLLABLES) + rng.choice(("镇", "乡", "村"))
    return f"{place}{town}{rng.choice(SYLLABLES)}{rng.choice(COOPS)}"


def person(rng: DemoRandom, born_from: int, born_to: int) -> Person:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.75 else "")
    division = rng.weighted(_PERSON_DIVISIONS, _PERSON_CUM)[0]
    born = f"{rng.randint(born_from, born_to)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{division}{born}{rng.randint(0, 999):03d}"
    return Person(rng.choice(SURNAMES) + given, first17 + resident_id_check_char(first17))
