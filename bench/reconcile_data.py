"""Seeded synthetic customer records with known truth, for benchmarking identity resolution.

``generate(n_records, seed)`` returns exactly ``n_records`` customer records of three ERPs (``odoo``,
``erpnext``, ``tryton``), one row each, with the columns of ``COLUMNS``. ``true_id`` names the real
customer behind a record: the ground truth, which a benchmark drops before matching. Every value is a
string or missing (NaN); dates are ``YYYY-MM-DD``, countries ISO 3166 alpha-2. Rows come grouped by
system, in source-id order, as three extracts would; nothing in the row order reveals the truth.

Real customers (one draw per customer)
--------------------------------------
* Mix ``CUSTOMER_MIX``: 40 % Chinese persons, 20 % Chinese companies, 25 % Western persons, 15 %
  Western companies in DE, GB, US, FR (``WESTERN_COUNTRY_P``).
* Records per customer ``RECORDS_PER_CUSTOMER_P``: 1 to 5, mean 2.9. The first three records go to
  three different systems; a 4th and 5th record are in-system duplicates (about 3 % of all records),
  so no customer has more than two records in one system.
* Names are common on purpose: Chinese surnames follow their census frequency (王 李 张 刘 陈 ...);
  Chinese given names, Western first and last names, Chinese trade names and Western company heads
  come from limited pools with Zipf weights (``NAME_ZIPF_EXPONENT``). So many *different* customers
  share a name in every script, and pinyin merges still more (许 and 徐 are both "Xu"). These are the
  hard negatives a matcher must not merge.
* Strong keys belong to one customer: e-mail addresses (a taken address gets a numeric suffix),
  phones (unique except switchboards, below) and tax ids (Chinese unified social credit codes and
  DE/GB/FR VAT numbers with valid check characters, US EINs). Companies have a tax id with
  ``COMPANY_TAX_ID_RATE``, persons none; ``PERSON_BIRTH_DATE_RATE`` of persons have a birth date.
* Switchboards: ``SWITCHBOARD_RATE`` of customers are grouped, 2 to 4 of one city per group, and
  share one landline: several companies and the employees of a company. A shared phone is no proof.
* Each customer has a second address (``MOVED_CITY_SHARE`` of them in another city), e-mail (persons:
  private vs work; companies: another mailbox) and phone (mobile vs office), used by some records.

Record noise (independent per record)
-------------------------------------
* Script of a Chinese customer's record ``CN_SCRIPT_P``: simplified (张伟), traditional (張偉, opencc
  ``s2t``) or pinyin (``Zhang Wei``, pypinyin ``lazy_pinyin``), for name, city, region and street alike.
* Names: one typo ``TYPO_RATE`` (keyboard-neighbour substitution, deletion or transposition; in Chinese
  script a wrong character of the given or trade name); swapped order ``SWAP_ORDER_RATE`` for persons in
  Latin script ("Wei Zhang", "Schmidt, Anna"); upper-case family name ``UPPER_FAMILY_RATE`` for pinyin
  and French names ("ZHANG Wei", "Marie DUBOIS"); company legal form absent ``LEGAL_FORM_ABSENT_RATE``,
  else its canonical spelling (``LEGAL_FORM_CANONICAL_RATE``) or a variant (有限公司 / 股份有限公司,
  "Co., Ltd." / "Ltd." / "Company Limited", "GmbH & Co. KG" / "GmbH & Co KG", ", Inc." ...).
* Missing values ``MISSING_RATE``: e-mail, phone, tax id (of companies' records), whole address
  (street, postcode, city, region; the country stays), birth date (of persons who have one).
* E-mail: the customer's other address ``OTHER_EMAIL_RATE``, case variants ``EMAIL_CASE_RATE``,
  surrounding blanks ``EMAIL_SPACE_RATE``.
* Phone: the other number ``OTHER_PHONE_RATE``; format ``PHONE_STYLE_P``: "+86 138 0013 8000",
  "+8613800138000", national ("138-0013-8000", "021-62345678", "030 12345678", "(415) 555-0132"),
  national digits only ("13800138000"), "0086 138 0013 8000".
* Address: the second address ``MOVED_ADDRESS_RATE``; British postcodes without their space
  ``GB_POSTCODE_NO_SPACE_RATE`` ("SW1A 1AA" / "SW1A1AA"); tax id written differently
  ``TAX_ID_FORMAT_RATE`` ("DE 123456789", lower-case USCC, EIN without hyphen).

Determinism: every draw comes from ``numpy.random.default_rng([seed, crc32(stage)])``, one stream per
stage; no wall clock, no set iteration. Same ``n_records`` and seed give an identical frame.
Speed: per-customer and per-record draws are vectorised; Python loops touch each value at most once
and script conversions run once per distinct name part.

    .venv/bin/python bench/reconcile_data.py --records 10000 --seed 7 --output /tmp/records.csv
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
import unicodedata
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import opencc
import pandas as pd
from pypinyin import lazy_pinyin

# ---- the noise model ---------------------------------------------------------------------------
RECORDS_PER_CUSTOMER_P = {1: 0.05, 2: 0.10, 3: 0.77, 4: 0.06, 5: 0.02}  # mean 2.90
CUSTOMER_MIX = {"cn_person": 0.40, "cn_company": 0.20, "west_person": 0.25, "west_company": 0.15}
WESTERN_COUNTRY_P = {"DE": 0.35, "GB": 0.20, "US": 0.30, "FR": 0.15}
NAME_ZIPF_EXPONENT = 0.9  # weight of the k-th most common pool name ~ 1 / k**0.9
COMPANY_TAX_ID_RATE = 0.90
PERSON_BIRTH_DATE_RATE = 0.60
PERSON_MOBILE_RATE = {"CN": 0.95, "west": 0.60}  # a person's main phone is a mobile, else a landline
OTHER_PHONE_MOBILE_RATE = {"person": 0.5, "company": 0.3}  # the second phone is a mobile, else a landline
SWITCHBOARD_RATE = 0.02
SWITCHBOARD_GROUP_SIZES = (2, 3, 4)
MOVED_CITY_SHARE = 0.5  # a second address is in another city of the country

CN_SCRIPT_P = {"simplified": 0.50, "traditional": 0.15, "pinyin": 0.35}
TYPO_RATE = 0.10
TYPO_FAMILY_SHARE = 0.5  # Latin-script person names: typo in the family name, else the given name
SWAP_ORDER_RATE = 0.10
SWAP_COMMA_SHARE = 0.5  # swapped Western names written "Schmidt, Anna"
UPPER_FAMILY_RATE = 0.20
LEGAL_FORM_ABSENT_RATE = 0.20
LEGAL_FORM_CANONICAL_RATE = 0.60
MISSING_RATE = {"email": 0.25, "phone": 0.20, "tax_id": 0.20, "address": 0.15, "birth_date": 0.30}
OTHER_EMAIL_RATE = 0.10
EMAIL_CASE_RATE = 0.10
EMAIL_UPPER_SHARE = 0.3  # case variants: all upper case, else a capitalised local part (Wei.Zhang@)
EMAIL_SPACE_RATE = 0.05
OTHER_PHONE_RATE = 0.10
PHONE_STYLE_P = {"e164_spaced": 0.30, "e164": 0.20, "national": 0.30, "national_digits": 0.15, "intl_00": 0.05}
MOVED_ADDRESS_RATE = 0.10
GB_POSTCODE_NO_SPACE_RATE = 0.30
TAX_ID_FORMAT_RATE = 0.05

SYSTEMS = ("odoo", "erpnext", "tryton")
COLUMNS = ("source_system", "source_id", "name", "given_name", "family_name", "company_name", "email",
           "phone", "tax_id", "street", "city", "postcode", "region", "country", "birth_date", "true_id")
COUNTRIES = ("CN", "DE", "GB", "US", "FR")
CN, DE, GB, US, FR = range(len(COUNTRIES))
SIMPLIFIED, TRADITIONAL, LATIN = 0, 1, 2  # script variants of a value

# ---- vocabulary: Chinese -----------------------------------------------------------------------
# (surname, per 10,000 of the population), most common first.
CN_SURNAMES = (
    ("王", 71), ("李", 70), ("张", 68), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 22), ("赵", 20),
    ("吴", 19), ("周", 19), ("徐", 15), ("孙", 15), ("马", 13), ("朱", 13), ("胡", 12), ("郭", 12),
    ("何", 11), ("林", 11), ("高", 11), ("罗", 10), ("郑", 9), ("梁", 9), ("谢", 8), ("宋", 8),
    ("唐", 8), ("许", 7), ("韩", 7), ("冯", 7), ("邓", 7), ("曹", 6), ("彭", 6), ("曾", 6), ("肖", 6),
    ("田", 5), ("董", 5), ("袁", 5), ("潘", 5), ("于", 5), ("蒋", 5), ("蔡", 5), ("余", 5), ("杜", 4),
    ("叶", 4), ("程", 4), ("苏", 4), ("魏", 4), ("吕", 4), ("丁", 4), ("任", 4), ("沈", 3), ("姚", 3),
    ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 3), ("范", 3), ("金", 3),
)
# Surnames opencc and pypinyin read as ordinary words (于 -> 於, 曾 -> ceng).
CN_SURNAME_TRADITIONAL = {"于": "于", "余": "余", "范": "范"}
CN_SURNAME_PINYIN = {"曾": "Zeng", "吕": "Lyu"}
# Given names, most common first; the pool continues with FIRST x SECOND combinations (rarer).
CN_GIVEN_COMMON = (
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 华 玉兰 萍 红 玲 斌 辉 鹏 "
    "建华 建国 建军 丹 欣 婷 浩 宇 鑫 波 飞 帅 雪 琳 晶 颖 慧 俊 凯 健 峰 亮 龙 阳 佳 倩 宁 梅 燕 红梅 海燕 "
    "志强 志刚 海涛 晓东 晓明 小红 小燕 丽娟 文 博 晨 浩然 子轩 梓涵 一诺 欣怡 雨桐 思琪 宇航 俊杰 嘉怡 子涵 "
    "梓轩 浩宇 家豪 淑珍 淑华 秀珍 凤英 建平 国强 国华 春梅 丽华 海峰 文杰 晓燕 雪梅 玉梅 桂兰 玉珍 秀云 "
    "建明 志明 晓丽 丽丽 婷婷 伟东 晓军 磊磊 明辉 文静 静怡 佳怡 子豪 天佑 雨欣 诗涵 晓峰 建新 永强 金凤 "
    "玉华 海军 红霞 立新 新华 春华 秋菊 冬梅 瑞 琪 鹤 莉 蕾 楠 昊 睿 轩 涵 悦 彤 琦"
).split()
CN_GIVEN_FIRST = "建志晓国海春秀玉丽文明永金红俊嘉子雨思宇"
CN_GIVEN_SECOND = "华军平明强东峰杰辉涛英兰珍梅燕霞娟敏静婷琳雪颖慧"
# Trade names (字号), most common first; the pool continues with FIRST x SECOND combinations.
CN_TRADE_COMMON = (
    "华信 恒通 宏达 鑫源 金桥 瑞丰 天成 永安 中联 海纳 博远 凯盛 润泽 嘉禾 锦程 正泰 富康 同创 美隆 百川 "
    "众德 明辉 利民 星辰 智诚 云帆 青松 万邦 宝聚 东方 新华 长城 华夏 远大 恒昌 兴业 金鼎 泰和 顺达 鸿运 "
    "中天 华盛 通达 宏图 创新 德信 立信 诚信"
).split()
CN_TRADE_FIRST = "华恒宏鑫金瑞天永中海博凯润嘉锦正富同美百众明利星智云青万宝东新远兴泰顺鸿"
CN_TRADE_SECOND = "信通达源桥丰成安联纳远盛泽禾程泰康创隆川德辉民辰诚帆松邦聚"
CN_INDUSTRIES = (
    ("贸易", "Trading"), ("科技", "Technology"), ("电子", "Electronics"), ("机械", "Machinery"),
    ("食品", "Foods"), ("物流", "Logistics"), ("化工", "Chemical"), ("纺织", "Textile"),
    ("医药", "Pharmaceutical"), ("建材", "Building Materials"), ("软件", "Software"),
    ("汽车配件", "Auto Parts"), ("包装", "Packaging"), ("家居", "Home Furnishing"),
)

# ---- vocabulary: cities, streets, phone plans ------------------------------------------------------
# Chinese cities: (zh, en, province zh, province en, weight, postcode prefix, USCC division code,
# area code, streets (zh, en)). Postcodes: prefix + 3 digits.
CN_CITIES = (
    ("上海", "Shanghai", "上海市", "Shanghai", 24, "200", "310115", "21",
     (("张江路", "Zhangjiang Road"), ("世纪大道", "Century Avenue"), ("南京西路", "West Nanjing Road"),
      ("淮海中路", "Middle Huaihai Road"), ("碧波路", "Bibo Road"))),
    ("北京", "Beijing", "北京市", "Beijing", 20, "100", "110105", "10",
     (("建国路", "Jianguo Road"), ("酒仙桥路", "Jiuxianqiao Road"), ("中关村大街", "Zhongguancun Street"),
      ("东三环中路", "Middle East 3rd Ring Road"))),
    ("深圳", "Shenzhen", "广东省", "Guangdong", 16, "518", "440305", "755",
     (("深南大道", "Shennan Avenue"), ("科技园路", "Kejiyuan Road"), ("南海大道", "Nanhai Avenue"))),
    ("广州", "Guangzhou", "广东省", "Guangdong", 14, "510", "440106", "20",
     (("天河路", "Tianhe Road"), ("体育西路", "Tiyu West Road"), ("中山大道", "Zhongshan Avenue"))),
    ("杭州", "Hangzhou", "浙江省", "Zhejiang", 12, "310", "330106", "571",
     (("文三路", "Wensan Road"), ("天目山路", "Tianmushan Road"), ("学院路", "Xueyuan Road"))),
    ("苏州", "Suzhou", "江苏省", "Jiangsu", 6, "215", "320505", "512",
     (("金山路", "Jinshan Road"), ("狮山路", "Shishan Road"))),
    ("南京", "Nanjing", "江苏省", "Jiangsu", 5, "210", "320106", "25",
     (("中山北路", "Zhongshan North Road"), ("汉中路", "Hanzhong Road"))),
    ("成都", "Chengdu", "四川省", "Sichuan", 5, "610", "510107", "28",
     (("人民南路", "Renmin South Road"), ("天府大道", "Tianfu Avenue"))),
    ("武汉", "Wuhan", "湖北省", "Hubei", 4, "430", "420103", "27",
     (("解放大道", "Jiefang Avenue"), ("中南路", "Zhongnan Road"))),
    ("天津", "Tianjin", "天津市", "Tianjin", 4, "300", "120101", "22",
     (("南京路", "Nanjing Road"), ("卫津路", "Weijin Road"))),
)
CN_MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                      "155", "156", "157", "158", "159", "176", "177", "180", "181", "186", "187", "188",
                      "189", "198", "199")

# Western cities: (name, region, weight, postcode, landline prefix). Postcode: (prefix, digits, low,
# high) -> prefix + a number in [low, high]; British ones: outward codes, inward code drawn.
WESTERN_CITIES = {
    "DE": (("Berlin", "Berlin", 25, ("1", 4, 115, 4199), "30"),
           ("München", "Bayern", 18, ("8", 4, 331, 1929), "89"),
           ("Hamburg", "Hamburg", 15, ("2", 4, 95, 2149), "40"),
           ("Köln", "Nordrhein-Westfalen", 12, ("50", 3, 667, 999), "221"),
           ("Frankfurt am Main", "Hessen", 10, ("60", 3, 306, 599), "69"),
           ("Stuttgart", "Baden-Württemberg", 8, ("70", 3, 173, 629), "711"),
           ("Düsseldorf", "Nordrhein-Westfalen", 7, ("40", 3, 210, 629), "211"),
           ("Leipzig", "Sachsen", 5, ("04", 3, 103, 357), "341")),
    "GB": (("London", "England", 45, ("SW1A", "EC1A", "W1D", "N1", "E1", "SE1", "WC2N", "NW1"), "20"),
           ("Manchester", "England", 15, ("M1", "M2", "M3", "M4"), "161"),
           ("Birmingham", "England", 13, ("B1", "B2", "B3", "B4"), "121"),
           ("Leeds", "England", 10, ("LS1", "LS2", "LS6"), "113"),
           ("Edinburgh", "Scotland", 9, ("EH1", "EH2", "EH3"), "131"),
           ("Bristol", "England", 8, ("BS1", "BS2", "BS8"), "117")),
    "US": (("New York", "NY", 30, ("10", 3, 1, 282), "212"),
           ("San Francisco", "CA", 18, ("941", 2, 2, 34), "415"),
           ("Chicago", "IL", 18, ("606", 2, 1, 61), "312"),
           ("Seattle", "WA", 12, ("981", 2, 1, 99), "206"),
           ("Austin", "TX", 12, ("787", 2, 1, 59), "512"),
           ("Boston", "MA", 10, ("021", 2, 8, 37), "617")),
    "FR": (("Paris", "Île-de-France", 40, ("750", 2, 1, 20), "1"),
           ("Lyon", "Auvergne-Rhône-Alpes", 15, ("690", 2, 1, 9), "47"),
           ("Marseille", "Provence-Alpes-Côte d'Azur", 13, ("130", 2, 1, 16), "49"),
           ("Toulouse", "Occitanie", 12, ("31", 3, 0, 500), "56"),
           ("Lille", "Hauts-de-France", 10, ("59", 3, 0, 800), "32"),
           ("Nantes", "Pays de la Loire", 10, ("44", 3, 0, 300), "24")),
}
WESTERN_STREETS = {
    "DE": ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Gartenstraße",
           "Industriestraße", "Lindenstraße", "Friedrichstraße", "Kaiserstraße", "Am Markt"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road", "Park Avenue", "King Street",
           "Queen Street", "Mill Lane", "London Road", "Green Lane"),
    "US": ("Main Street", "Market Street", "Oak Avenue", "Pine Street", "Maple Avenue", "Washington Street",
           "Lake Road", "Broadway", "Fifth Avenue", "Elm Street"),
    "FR": ("rue de la République", "rue Victor Hugo", "avenue Jean Jaurès", "boulevard Voltaire",
           "rue de la Paix", "rue Nationale", "avenue de la Gare", "rue du Moulin", "rue Pasteur",
           "place de l'Église"),
}
HOUSE_NUMBER_MAX = {"CN": 999, "DE": 150, "GB": 250, "US": 2500, "FR": 180}
PHONE = {  # calling code, national format, mobile prefixes, national number length
    "CN": ("86", "cn", CN_MOBILE_PREFIXES, None),
    "DE": ("49", "de", ("151", "152", "157", "160", "170", "171", "172", "175", "176", "177", "178", "179"), 10),
    "GB": ("44", "gb", ("74", "75", "78"), 10),
    "US": ("1", "us", (), 10),
    "FR": ("33", "fr", ("61", "62", "64", "66", "67", "68", "75", "76", "77", "78"), 9),
}
LANDLINE_FIRST_DIGITS = "234567"  # first digit of a landline subscriber number, unless listed here
LANDLINE_FIRST_DIGITS_BY_AREA = {("GB", "20"): "378", ("GB", "121"): "234567", ("GB", "113"): "2345",
                                 ("GB", "117"): "234", ("GB", "131"): "2345678", ("GB", "161"): "2345678"}

# ---- vocabulary: Western names and companies ---------------------------------------------------
WESTERN_NAMES = {  # first names, last names; most common first
    "DE": ("Thomas Michael Andreas Stefan Anna Sabine Julia Laura Lukas Petra Claudia Christian Daniel "
           "Katrin Jürgen Tobias Felix Jonas Lena Marie Sophie Paul Maximilian Hannah Leon",
           "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
           "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange"),
    "GB": ("James Oliver Sarah George Emily Thomas Jack Charlotte Harry Amelia Daniel Olivia William "
           "Sophie Jessica Matthew Hannah Samuel Grace Chloe",
           "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson "
           "Wright Walker White Edwards Hughes Green Hall Lewis Clarke Wood Harris"),
    "US": ("James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara "
           "Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Daniel Emily Matthew Ashley",
           "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
           "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark"),
    "FR": ("Marie Jean Pierre Nathalie Isabelle Philippe Michel Sophie Nicolas Catherine Julien Camille "
           "Léa Thomas Chloé Hugo Manon Louis Émilie François",
           "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre "
           "Michel Garcia David Bertrand Roux Vincent Fournier"),
}
WESTERN_COMPANIES = {  # heads (most common first), tails
    "DE": ("Müller Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf "
           "Neumann Rhein Nord Alpen Hansa",
           "Maschinenbau|Logistik|Elektrotechnik|Handel|Feinmechanik|Kunststofftechnik|Antriebstechnik|"
           "Software|Metallbau"),
    "GB": ("Harrington Ashford Whitmore Kingsley Fairfax Bramley Calder Thornbury Pennine Mercia Albion",
           "Components|Engineering|Trading|Supplies|Instruments|Logistics|Systems"),
    "US": ("Summit Pioneer Redwood Lakeside Ironclad Bluefield Northstar Granite Silverline Cascade "
           "Liberty Brightwater",
           "Supply|Industries|Components|Trading|Technologies|Logistics|Systems"),
    "FR": ("Dubois Martin Lefèvre Moreau Laurent Girard Bonnet Mercier Atlantique Provence Rhône",
           "Logistique|Industrie|Distribution|Technologies|Emballages|Mécanique"),
}
# Legal forms per country: (weight, Chinese-script spellings, Latin spellings); first = canonical.
LEGAL_FORMS = {
    "CN": ((0.8, ("有限公司",), (" Co., Ltd.", " Co. Ltd.", " Co., Ltd", " Ltd.", " Company Limited")),
           (0.2, ("股份有限公司", "有限公司"), (" Co., Ltd.", " Corp., Ltd.", " Joint Stock Co., Ltd."))),
    "DE": ((0.8, (), (" GmbH",)), (0.1, (), (" AG",)), (0.1, (), (" GmbH & Co. KG", " GmbH & Co KG"))),
    "GB": ((0.9, (), (" Ltd", " Ltd.", " Limited")), (0.1, (), (" PLC", " plc"))),
    "US": ((0.6, (), (" Inc.", " Inc", ", Inc.")), (0.3, (), (" LLC", ", LLC")), (0.1, (), (" Corp.", " Corporation"))),
    "FR": ((0.6, (), (" SAS", " S.A.S.")), (0.3, (), (" SARL", " S.A.R.L.")), (0.1, (), (" SA", " S.A."))),
}
EMAIL_DOMAINS = {  # persons' main domains; private addresses use EMAIL_PRIVATE_DOMAINS
    "CN": ("example.cn", "mail.example.cn", "example.com.cn"), "DE": ("example.de", "mail.example.de"),
    "GB": ("example.co.uk",), "US": ("example.com", "mail.example.com"), "FR": ("example.fr",),
}
EMAIL_PRIVATE_DOMAINS = ("example.net", "example.org", "mail.example.net")
COMPANY_TLD = {"CN": "example.cn", "DE": "example.de", "GB": "example.co.uk", "US": "example.com", "FR": "example.fr"}
COMPANY_MAILBOXES = ("info", "sales", "service", "contact", "office", "finance", "purchasing", "orders")
US_EIN_PREFIXES = (12, 13, 20, 26, 27, 30, 32, 35, 36, 45, 46, 47, 52, 54, 56, 61, 81, 82, 83, 84, 86, 88, 91, 94, 95)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, Z, S, V
QWERTY = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


# ---- helpers -----------------------------------------------------------------------------------
def _stream(seed: int, stage: str) -> np.random.Generator:
    """An independent random stream per stage: changing one stage does not reshuffle the others."""
    return np.random.default_rng([seed, zlib.crc32(stage.encode())])


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** NAME_ZIPF_EXPONENT
    return w / w.sum()


def _objects(values) -> np.ndarray:
    """1-d object array of the values (strings stay Python strings; never a 2-d array)."""
    values = list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _choice_in_ranges(rng, offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Uniform draw of offsets[i] + [0, counts[i]) per element."""
    return offsets + (rng.random(len(offsets)) * counts).astype(np.int64)


def _ascii(text: str, space: str = "") -> str:
    """Lower-case ASCII form of a Latin name for e-mail addresses: Müller -> mueller, Léa -> lea."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return text.replace("'", "").replace(" ", space)


def _pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text)).capitalize()


@functools.lru_cache(maxsize=None)
def _neighbours() -> dict[str, str]:
    """Keys next to each letter on a QWERTY keyboard (same row and the rows above and below)."""
    out = {}
    for r, row in enumerate(QWERTY):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for rr in (r - 1, r + 1):
                if 0 <= rr < len(QWERTY):
                    near += [QWERTY[rr][j] for j in (i - 1, i) if 0 <= j < len(QWERTY[rr])]
            out[ch] = "".join(near)
    return out


def _typo(text: str, op: int, u: float, v: float, alphabet: str | None) -> str:
    """One edit of text: op 0 substitution, 1 deletion, 2 transposition of neighbours.

    Latin text (alphabet None): ASCII letters only, substitution by a keyboard neighbour keeping case,
    deletion only in words of four or more letters. Chinese text: any character, substitution from
    alphabet, deletion only of one of two or more characters. Impossible edits fall back to substitution.
    """
    if alphabet is None:
        pos = [i for i, ch in enumerate(text) if ch.isascii() and ch.isalpha()]
        min_delete, min_swap = 4, 3
    else:
        pos, min_delete, min_swap = list(range(len(text))), 2, 2
    if not pos:
        return text
    if op == 1 and len(pos) >= min_delete:
        i = pos[int(u * len(pos))]
        return text[:i] + text[i + 1:]
    pairs = [i for i in pos if i + 1 in pos and text[i] != text[i + 1]] if len(pos) >= min_swap else []
    if op == 2 and pairs:
        i = pairs[int(u * len(pairs))]
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    i = pos[int(u * len(pos))]
    if alphabet is None:
        near = _neighbours()[text[i].lower()]
        new = near[int(v * len(near))]
        new = new.upper() if text[i].isupper() else new
    else:
        new = alphabet[int(v * len(alphabet))]
        new = alphabet[(alphabet.index(new) + 1) % len(alphabet)] if new == text[i] else new
    return text[:i] + new + text[i + 1:]


def _apply_typos(values: np.ndarray, mask: np.ndarray, variant: np.ndarray, alphabets, rng) -> None:
    """Replace values[mask] in place by a one-edit typo; alphabets[variant] as for `_typo`."""
    idx = np.flatnonzero(mask)
    ops, u, v = rng.integers(0, 3, idx.size).tolist(), rng.random(idx.size).tolist(), rng.random(idx.size).tolist()
    for k, i in enumerate(idx.tolist()):
        values[i] = _typo(values[i], ops[k], u[k], v[k], alphabets[variant[i]])


# ---- vocabulary tables (built once) --------------------------------------------------------------
def _script_table(simplified: list[str], latin: list[str], to_trad) -> np.ndarray:
    """(3, n) object array: simplified, traditional and Latin spelling of each entry."""
    table = np.empty((3, len(simplified)), dtype=object)
    table[SIMPLIFIED], table[TRADITIONAL], table[LATIN] = simplified, [to_trad(s) for s in simplified], latin
    return table


def _pool(common: list[str], first: str, second: str) -> list[str]:
    combos = [a + b for a in first for b in second if a != b]
    return list(dict.fromkeys(common + combos))


def _chinese_vocab(trad) -> dict:
    surnames = [s for s, _ in CN_SURNAMES]
    given = _pool(CN_GIVEN_COMMON, CN_GIVEN_FIRST, CN_GIVEN_SECOND)
    trade = _pool(CN_TRADE_COMMON, CN_TRADE_FIRST, CN_TRADE_SECOND)
    sur_w = np.array([w for _, w in CN_SURNAMES], dtype=float)
    given_chars = "".join(dict.fromkeys("".join(given)))
    trade_chars = "".join(dict.fromkeys("".join(trade)))
    return {
        "surname": _script_table(surnames, [CN_SURNAME_PINYIN.get(s) or _pinyin(s) for s in surnames],
                                 lambda s: CN_SURNAME_TRADITIONAL.get(s) or trad(s)),
        "surname_p": sur_w / sur_w.sum(),
        "given": _script_table(given, [_pinyin(g) for g in given], trad),
        "given_p": _zipf(len(given)),
        "trade_p": _zipf(len(trade)),
        "trade": _script_table(trade, [_pinyin(t) for t in trade], trad),
        "industry": _script_table([z for z, _ in CN_INDUSTRIES], [e for _, e in CN_INDUSTRIES], trad),
        "given_ascii": _objects(_ascii(_pinyin(g)) for g in given),
        "surname_ascii": _objects(_ascii(CN_SURNAME_PINYIN.get(s) or _pinyin(s)) for s in surnames),
        "trade_ascii": _objects(_ascii(_pinyin(t)) for t in trade),
        "industry_slug": _objects(_ascii(e, space="-") for _, e in CN_INDUSTRIES),
        "given_alphabets": (given_chars, trad(given_chars), None),
        "trade_alphabets": (trade_chars, trad(trade_chars), None),
    }


def _western_vocab() -> dict:
    """Western first/last names and company heads/tails as flat tables with per-country ranges."""
    out = {}
    for key, source, part, sep in (("first", WESTERN_NAMES, 0, " "), ("last", WESTERN_NAMES, 1, " "),
                                   ("head", WESTERN_COMPANIES, 0, " "), ("tail", WESTERN_COMPANIES, 1, "|")):
        values, offsets, counts = [], np.zeros(len(COUNTRIES), np.int64), np.zeros(len(COUNTRIES), np.int64)
        for c, country in enumerate(COUNTRIES):
            words = source[country][part].split(sep) if country in source else []
            offsets[c], counts[c] = len(values), len(words)
            values += words
        out[key] = (_objects(values), _objects([_ascii(v) for v in values]), offsets, counts)
    return out


def _city_rows() -> list[tuple]:
    """All cities, Chinese first (so a Chinese city's index is its position in CN_CITIES):
    (country, name zh, name en, region zh, region en, weight, postcode spec, area code, streets)."""
    rows = [(CN, zh, en, pzh, pen, w, (pc, 3, 0, 999), ac, streets)
            for zh, en, pzh, pen, w, pc, _division, ac, streets in CN_CITIES]
    for c, code in enumerate(COUNTRIES[1:], 1):
        streets = tuple((s, s) for s in WESTERN_STREETS[code])
        rows += [(c, name, name, region, region, w, pc, ac, streets)
                 for name, region, w, pc, ac in WESTERN_CITIES[code]]
    return rows


def _city_vocab(trad) -> dict:
    """Cities of all countries (names and regions per script), their streets and postcode specs."""
    rows = _city_rows()
    streets, street_index, street_off, street_cnt = [], {}, [], []
    for row in rows:  # Western cities of a country share its streets
        if row[8] not in street_index:
            street_index[row[8]] = len(streets)
            streets += row[8]
        street_off.append(street_index[row[8]])
        street_cnt.append(len(row[8]))
    col = list(zip(*rows))
    return {
        "city": _script_table(list(col[1]), list(col[2]), trad),
        "region": _script_table(list(col[3]), list(col[4]), trad),
        "city_country": np.array(col[0]), "city_weight": np.array(col[5], float), "city_postcode": col[6],
        "city_area": col[7], "street": _script_table([z for z, _ in streets], [e for _, e in streets], trad),
        "street_off": np.array(street_off), "street_cnt": np.array(street_cnt),
        "cn_division": np.array([[int(d) for d in "91" + row[6]] for row in CN_CITIES]),
    }


def _phone_plans(cities: dict) -> dict:
    """Numbering plans: (calling code, prefix, subscriber length, first digits, groups, style).

    One landline plan per city (index = city index) followed by the mobile plans of each country.
    Groups split the national number for display, e.g. (3, 4, 4) for 138 0013 8000.
    """
    plans = []
    for c, prefix in zip(cities["city_country"].tolist(), cities["city_area"]):
        cc, style, _mobiles, nsn_len = PHONE[COUNTRIES[c]]
        sub = 8 if style == "cn" or (style == "gb" and prefix == "20") else nsn_len - len(prefix)
        first = LANDLINE_FIRST_DIGITS_BY_AREA.get((COUNTRIES[c], prefix), LANDLINE_FIRST_DIGITS)
        plans.append((cc, prefix, sub, first, _groups(style, prefix, sub, mobile=False), style))
    mob_off, mob_cnt = np.zeros(len(COUNTRIES), np.int64), np.zeros(len(COUNTRIES), np.int64)
    for c, code in enumerate(COUNTRIES):
        cc, style, mobiles, nsn_len = PHONE[code]
        mob_off[c], mob_cnt[c] = len(plans), len(mobiles)
        for prefix in mobiles:
            sub = 8 if style == "cn" or (style == "de" and prefix.startswith("15")) else nsn_len - len(prefix)
            kind = style + ("_mobile" if style == "cn" else "")
            plans.append((cc, prefix, sub, "0123456789", _groups(style, prefix, sub, mobile=True), kind))
    first_digits = np.zeros((len(plans), 10), np.int64)
    for k, plan in enumerate(plans):
        first_digits[k, :len(plan[3])] = [int(d) for d in plan[3]]
    return {"plans": plans, "mobile_off": mob_off, "mobile_cnt": mob_cnt, "sub_len": np.array([p[2] for p in plans]),
            "first_digits": first_digits, "first_digit_cnt": np.array([len(p[3]) for p in plans])}


def _groups(style: str, prefix: str, sub: int, mobile: bool) -> tuple[int, ...]:
    if style == "cn":
        return (3, 4, 4) if mobile else (len(prefix), 4, 4)
    if style == "gb":
        return (4, 6) if mobile else ((2, 4, 4) if len(prefix) == 2 else (3, 3, 4))
    if style == "us":
        return (3, 3, 4)
    if style == "fr":
        return (1, 2, 2, 2, 2)
    return (len(prefix), sub)  # de


@functools.lru_cache(maxsize=None)
def _vocab() -> SimpleNamespace:
    """All lookup tables; opencc and pypinyin run here once per distinct name part, never per record."""
    trad = functools.lru_cache(maxsize=None)(opencc.OpenCC("s2t").convert)
    cities = _city_vocab(trad)
    return SimpleNamespace(**_chinese_vocab(trad), **_western_vocab(), **cities, **_phone_plans(cities),
                           **_legal_vocab(trad))


def _legal_vocab(trad) -> dict:
    """(3, forms, variants) table of legal-form spellings per script, variant counts, forms per country."""
    forms = [(c, w, zh, latin) for c, code in enumerate(COUNTRIES) for w, zh, latin in LEGAL_FORMS[code]]
    width = max(max(len(zh), len(latin)) for _, _, zh, latin in forms)
    table = np.full((3, len(forms), width), "", dtype=object)
    counts = np.zeros((3, len(forms)), np.int64)
    for f, (_c, _w, zh, latin) in enumerate(forms):
        by_script = ((SIMPLIFIED, zh or latin), (TRADITIONAL, [trad(s) for s in zh] or latin), (LATIN, latin))
        for script, spellings in by_script:
            table[script, f, :len(spellings)] = spellings
            counts[script, f] = len(spellings)
    return {"legal": table, "legal_cnt": counts, "legal_country": np.array([f[0] for f in forms]),
            "legal_weight": np.array([f[1] for f in forms])}


# ---- real customers ----------------------------------------------------------------------------
def _records_per_customer(n_records: int, rng) -> np.ndarray:
    """Records of each customer (1..5), exactly n_records in total (the last customer is cut)."""
    sizes, p = np.array(list(RECORDS_PER_CUSTOMER_P)), np.array(list(RECORDS_PER_CUSTOMER_P.values()))
    mean = float(sizes @ p)
    counts = np.empty(0, np.int64)
    while counts.sum() < n_records:
        counts = np.concatenate([counts, rng.choice(sizes, int(n_records / mean * 1.05) + 16, p=p)])
    total = np.cumsum(counts)
    n_customers = int(np.searchsorted(total, n_records)) + 1
    counts = counts[:n_customers].copy()
    counts[-1] -= total[n_customers - 1] - n_records
    return counts


def _kinds_and_places(n: int, seed: int, v) -> dict:
    """Kind (person/company, Chinese/Western), country, home and second city of each customer."""
    rng = _stream(seed, "kinds")
    kind = rng.choice(4, n, p=list(CUSTOMER_MIX.values()))
    west = rng.choice([COUNTRIES.index(c) for c in WESTERN_COUNTRY_P], n, p=list(WESTERN_COUNTRY_P.values()))
    country = np.where(kind < 2, CN, west)
    city, city2 = np.empty(n, np.int64), np.empty(n, np.int64)
    for c in range(len(COUNTRIES)):
        mine, cities = np.flatnonzero(country == c), np.flatnonzero(v.city_country == c)
        p = v.city_weight[cities] / v.city_weight[cities].sum()
        city[mine], city2[mine] = rng.choice(cities, mine.size, p=p), rng.choice(cities, mine.size, p=p)
    city2 = np.where(rng.random(n) < MOVED_CITY_SHARE, city2, city)
    return {"kind": kind, "country": country, "is_person": kind % 2 == 0, "is_cn": kind < 2,
            "city": city, "city2": city2}


def _names(c: dict, seed: int, v) -> dict:
    """Pool indices of each customer's name parts (-1 where not applicable) and legal form."""
    rng = _stream(seed, "names")
    n, kind, country = len(c["kind"]), c["kind"], c["country"]
    out = {k: np.full(n, -1, np.int64) for k in ("surname", "given", "trade", "industry", "first", "last",
                                                  "head", "tail", "legal")}
    m = np.flatnonzero(kind == 0)
    out["surname"][m] = rng.choice(len(v.surname_p), m.size, p=v.surname_p)
    out["given"][m] = rng.choice(len(v.given_p), m.size, p=v.given_p)
    m = np.flatnonzero(kind == 1)
    out["trade"][m] = rng.choice(len(v.trade_p), m.size, p=v.trade_p)
    out["industry"][m] = rng.integers(0, v.industry.shape[1], m.size)
    for cc in range(1, len(COUNTRIES)):
        for k, part, zipf in ((2, "first", True), (2, "last", True), (3, "head", True), (3, "tail", False)):
            m = np.flatnonzero((kind == k) & (country == cc))
            _, _, off, cnt = getattr(v, part)
            out[part][m] = off[cc] + rng.choice(cnt[cc], m.size, p=_zipf(cnt[cc]) if zipf else None)
    for cc in range(len(COUNTRIES)):
        m = np.flatnonzero(~c["is_person"] & (country == cc))
        forms = np.flatnonzero(v.legal_country == cc)
        out["legal"][m] = rng.choice(forms, m.size, p=v.legal_weight[forms] / v.legal_weight[forms].sum())
    return out


def _addresses(c: dict, seed: int, v) -> dict:
    """Home and second address of each customer: street index, house number, postcode."""
    rng = _stream(seed, "addresses")
    out = {}
    top = np.array([HOUSE_NUMBER_MAX[code] for code in COUNTRIES])[c["country"]]
    for key, city in (("", c["city"]), ("2", c["city2"])):
        n = len(city)
        out["street" + key] = _choice_in_ranges(rng, v.street_off[city], v.street_cnt[city])
        house = np.exp(rng.random(n) * np.log(top)).astype(np.int64) + 1  # small numbers are common
        out["house" + key] = _objects(map(str, house.tolist()))
        out["postcode" + key] = _postcodes(city, rng, v)
    return out


def _postcodes(city: np.ndarray, rng, v) -> np.ndarray:
    out = np.empty(len(city), dtype=object)
    letters = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters of British postcodes
    for k, spec in enumerate(v.city_postcode):
        m = np.flatnonzero(city == k)
        if not m.size:
            continue
        if isinstance(spec[1], int):
            prefix, digits, low, high = spec
            out[m] = [f"{prefix}{x:0{digits}d}" for x in rng.integers(low, high + 1, m.size).tolist()]
        else:
            outward, d, a, b = (rng.integers(0, x, m.size).tolist() for x in (len(spec), 10, 20, 20))
            out[m] = [f"{spec[o]} {i}{letters[j]}{letters[l]}" for o, i, j, l in zip(outward, d, a, b)]
    return out


def _phones(c: dict, seed: int, v) -> dict:
    """Main and second phone of each customer as (plan index, national number); switchboards shared."""
    rng = _stream(seed, "phones")
    n, person, country = len(c["kind"]), c["is_person"], c["country"]
    has_mobile = v.mobile_cnt[country] > 0
    mobile_rate = np.where(c["is_cn"], PERSON_MOBILE_RATE["CN"], PERSON_MOBILE_RATE["west"])
    main_mobile = person & has_mobile & (rng.random(n) < mobile_rate)
    other_rate = np.where(person, OTHER_PHONE_MOBILE_RATE["person"], OTHER_PHONE_MOBILE_RATE["company"])
    other_mobile = has_mobile & (rng.random(n) < other_rate)
    plans = []
    for mobile, city in ((main_mobile, c["city"]), (other_mobile, c["city2"])):
        plans.append(np.where(mobile, _choice_in_ranges(rng, v.mobile_off[country], v.mobile_cnt[country]), city))
    groups = _switchboard_groups(c["city"], rng)
    plan = np.concatenate(plans + [c["city"][[g[0] for g in groups]]]) if groups else np.concatenate(plans)
    nsn = _national_numbers(plan, rng, v)
    main = nsn[:n].copy()
    main_plan = plans[0].copy()
    for g, members in enumerate(groups):
        main[members], main_plan[members] = nsn[2 * n + g], plan[2 * n + g]
    return {"phone_plan": main_plan, "phone": main, "phone_plan2": plans[1], "phone2": nsn[n:2 * n],
            "switchboard_groups": len(groups)}


def _subscriber_numbers(plan: np.ndarray, rng, v) -> np.ndarray:
    scale = 10 ** (v.sub_len[plan] - 1)
    first = v.first_digits[plan, (rng.random(len(plan)) * v.first_digit_cnt[plan]).astype(np.int64)]
    return first * scale + rng.integers(0, scale)


def _switchboard_groups(city: np.ndarray, rng) -> list[np.ndarray]:
    """Groups of 2-4 customers of one city that share a switchboard (SWITCHBOARD_RATE of customers)."""
    chosen = np.flatnonzero(rng.random(len(city)) < SWITCHBOARD_RATE)
    groups = []
    for k in np.unique(city[chosen]).tolist():
        members = rng.permutation(chosen[city[chosen] == k])
        while members.size >= 2:
            size = int(rng.choice(SWITCHBOARD_GROUP_SIZES))
            size = members.size if members.size - size < 2 else size
            groups.append(members[:size])
            members = members[size:]
    return groups


def _national_numbers(plan: np.ndarray, rng, v) -> np.ndarray:
    """A distinct national number per entry (prefix + subscriber number) in the given plans."""
    sub_len = v.sub_len[plan]
    sub = _subscriber_numbers(plan, rng, v)
    while True:  # redraw collisions (same plan, same number) until all are distinct
        key = plan * 10 ** 10 + sub
        order = np.argsort(key, kind="stable")
        dup = order[1:][key[order[1:]] == key[order[:-1]]]
        if not dup.size:
            break
        sub[dup] = _subscriber_numbers(plan[dup], rng, v)
    prefixes = [p[1] for p in v.plans]
    return _objects(f"{prefixes[p]}{s:0{n}d}" for p, s, n in zip(plan.tolist(), sub.tolist(), sub_len.tolist()))


def _emails(c: dict, names: dict, seed: int, v) -> dict:
    """Main and second e-mail address of each customer, unique across customers."""
    rng = _stream(seed, "emails")
    n, person = len(c["kind"]), c["is_person"]
    given, family = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    cn = names["surname"] >= 0
    given[cn], family[cn] = v.given_ascii[names["given"][cn]], v.surname_ascii[names["surname"][cn]]
    w = names["first"] >= 0
    given[w], family[w] = v.first[1][names["first"][w]], v.last[1][names["last"][w]]
    style = rng.integers(0, 5, n)
    style2 = (style + rng.integers(1, 5, n)) % 5
    domain = np.empty(n, dtype=object)
    for k, code in enumerate(COUNTRIES):
        m = np.flatnonzero(c["country"] == k)
        domain[m] = np.array(EMAIL_DOMAINS[code], dtype=object)[rng.integers(0, len(EMAIL_DOMAINS[code]), m.size)]
    private = np.array(EMAIL_PRIVATE_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_PRIVATE_DOMAINS), n)]
    local = np.concatenate([_local_part(given, family, style), _local_part(given, family, style2)])
    person_emails = _unique_addresses(local, np.concatenate([domain, private]))
    company = _company_emails(c, names, rng, v)
    main, other = person_emails[:n], person_emails[n:]
    return {"email": np.where(person, main, company[0]), "email2": np.where(person, other, company[1])}


def _local_part(given: np.ndarray, family: np.ndarray, style: np.ndarray) -> np.ndarray:
    initial = _objects(g[:1] for g in given.tolist())
    forms = (given + "." + family, family + given, initial + "." + family, given + "_" + family, family + "." + given)
    return np.choose(style, forms)


def _unique_addresses(local: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """local@domain; the k-th holder (k >= 2) of a taken address gets local + str(k)."""
    address = local + "@" + domain
    rank = pd.Series(address).groupby(address).cumcount().to_numpy()
    taken = np.flatnonzero(rank > 0)
    address[taken] = [f"{lp}{r + 1}@{d}" for lp, r, d in zip(local[taken], rank[taken].tolist(), domain[taken])]
    return address


def _company_emails(c: dict, names: dict, rng, v) -> tuple[np.ndarray, np.ndarray]:
    """Two mailboxes (info@, sales@ ...) at a domain of the company's own, e.g. huaxin-trading.example.cn."""
    n = len(c["kind"])
    slug = np.full(n, "", dtype=object)
    cn, w = names["trade"] >= 0, names["head"] >= 0
    slug[cn] = v.trade_ascii[names["trade"][cn]] + "-" + v.industry_slug[names["industry"][cn]]
    slug[w] = v.head[1][names["head"][w]] + "-" + v.tail[1][names["tail"][w]]
    company = np.flatnonzero(cn | w)
    rank = pd.Series(slug[company]).groupby(slug[company]).cumcount().to_numpy()
    slug[company] = [s if r == 0 else f"{s}{r + 1}" for s, r in zip(slug[company], rank.tolist())]
    domain = slug + "." + np.array([COMPANY_TLD[code] for code in COUNTRIES], dtype=object)[c["country"]]
    box = rng.integers(0, len(COMPANY_MAILBOXES), n)
    box2 = (box + rng.integers(1, len(COMPANY_MAILBOXES), n)) % len(COMPANY_MAILBOXES)
    boxes = np.array(COMPANY_MAILBOXES, dtype=object)
    return boxes[box] + "@" + domain, boxes[box2] + "@" + domain


def _tax_ids(c: dict, seed: int, v) -> np.ndarray:
    """A tax id for COMPANY_TAX_ID_RATE of companies: USCC, DE/GB/FR VAT, US EIN; None otherwise."""
    rng = _stream(seed, "tax_ids")
    n = len(c["kind"])
    out = np.full(n, None, dtype=object)
    has = ~c["is_person"] & (rng.random(n) < COMPANY_TAX_ID_RATE)
    makers = {"CN": _uscc, "DE": _de_vat, "GB": _gb_vat, "US": _us_ein, "FR": _fr_vat}
    for k, code in enumerate(COUNTRIES):
        m = np.flatnonzero(has & (c["country"] == k))
        if m.size:
            out[m] = makers[code](c["city"][m], rng, v)
    return out


def _uscc(city: np.ndarray, rng, v) -> list[str]:
    """18-character unified social credit code: 91 + division + organisation code + check (GB 32100)."""
    n, alpha = len(city), np.frombuffer(USCC_ALPHABET.encode(), np.uint8)
    body = rng.integers(0, 10, (n, 8))
    new_style = rng.random(n) < 0.6  # post-2015 organisation codes start with "MA"
    body[new_style, 0], body[new_style, 1] = USCC_ALPHABET.index("M"), USCC_ALPHABET.index("A")
    body[new_style, 2:] = rng.integers(0, len(USCC_ALPHABET), (int(new_style.sum()), 6))
    base36 = np.array([int(ch, 36) for ch in USCC_ALPHABET])
    org_check = 11 - (base36[body] * np.array([3, 7, 9, 10, 5, 8, 4, 2])).sum(1) % 11
    org_check = np.where(org_check == 10, USCC_ALPHABET.index("X"), np.where(org_check == 11, 0, org_check))
    division = v.cn_division[city]  # Chinese cities come first: city index = row of CN_CITIES
    first17 = np.concatenate([division, body, org_check[:, None]], axis=1)
    check = (31 - (first17 * np.array([pow(3, i, 31) for i in range(17)])).sum(1) % 31) % 31
    codes = alpha[np.concatenate([first17, check[:, None]], axis=1)]
    return [bytes(row).decode() for row in codes]


def _digits(rng, n: int, count: int, first_low: int = 0) -> np.ndarray:
    d = rng.integers(0, 10, (n, count))
    d[:, 0] = rng.integers(max(first_low, 0), 10, n)
    return d


def _de_vat(city, rng, v) -> list[str]:
    """DE + 8 digits + ISO 7064 MOD 11,10 check digit."""
    d = _digits(rng, len(city), 8, 1)
    product = np.full(len(city), 10)
    for i in range(8):
        total = (d[:, i] + product) % 10
        product = (2 * np.where(total == 0, 10, total)) % 11
    return [f"DE{''.join(map(str, row))}{(11 - p) % 10}" for row, p in zip(d.tolist(), product.tolist())]


def _gb_vat(city, rng, v) -> list[str]:
    """GB + 7 digits + 2 check digits (weights 8..2, mod 97)."""
    d = _digits(rng, len(city), 7, 1)
    check = (-(d * np.arange(8, 1, -1)).sum(1)) % 97
    return [f"GB{''.join(map(str, row))}{k:02d}" for row, k in zip(d.tolist(), check.tolist())]


def _us_ein(city, rng, v) -> list[str]:
    prefix = np.array(US_EIN_PREFIXES)[rng.integers(0, len(US_EIN_PREFIXES), len(city))]
    return [f"{p}-{x:07d}" for p, x in zip(prefix.tolist(), rng.integers(0, 10 ** 7, len(city)).tolist())]


def _fr_vat(city, rng, v) -> list[str]:
    """FR + 2-digit key + SIREN (8 digits + Luhn check digit)."""
    d = _digits(rng, len(city), 8, 1)
    doubled = d * np.array([1, 2] * 4)
    luhn = (10 - (np.where(doubled > 9, doubled - 9, doubled).sum(1) % 10)) % 10
    siren = (d * 10 ** np.arange(8, 0, -1)).sum(1) + luhn
    key = (12 + 3 * (siren % 97)) % 97
    return [f"FR{k:02d}{s:09d}" for k, s in zip(key.tolist(), siren.tolist())]


def _birth_dates(c: dict, seed: int) -> np.ndarray:
    rng = _stream(seed, "birth_dates")
    n = len(c["kind"])
    start, end = np.datetime64("1950-01-01"), np.datetime64("2005-12-31")
    days = start + rng.integers(0, int((end - start).astype(int)) + 1, n).astype("timedelta64[D]")
    dates = np.datetime_as_string(days, unit="D").astype(object)
    return np.where(c["is_person"] & (rng.random(n) < PERSON_BIRTH_DATE_RATE), dates, None)


def _customers(n: int, seed: int, v) -> dict:
    c = _kinds_and_places(n, seed, v)
    names = _names(c, seed, v)
    c.update(names=names, **_addresses(c, seed, v), **_phones(c, seed, v), **_emails(c, names, seed, v))
    c.update(tax_id=_tax_ids(c, seed, v), birth_date=_birth_dates(c, seed))
    c["true_id"] = _objects(f"T{i:07d}" for i in range(1, n + 1))
    return c


# ---- records -----------------------------------------------------------------------------------
def _layout(counts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customer, system and source id of each row; rows grouped by system in source-id order.

    Record j of a customer goes to system perm[j % 3] of a random permutation: the first three are
    in three different systems, a 4th and 5th duplicate one each.
    """
    rng = _stream(seed, "layout")
    perms = np.array([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    owner = np.repeat(np.arange(len(counts)), counts)
    j = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    system = perms[rng.integers(0, 6, len(counts))[owner], j % 3]
    rows, ids = [], []
    for s, name in enumerate(SYSTEMS):
        mine = rng.permutation(np.flatnonzero(system == s))
        rows.append(mine)
        ids.append(_source_ids(name, mine.size, rng))
    order = np.concatenate(rows)
    return owner[order], system[order], np.concatenate(ids)


def _source_ids(system: str, n: int, rng) -> np.ndarray:
    if system == "odoo":  # res.partner ids: gaps where contacts and deleted partners sit
        return _objects(map(str, (np.cumsum(rng.integers(1, 4, n)) + 6).tolist()))
    if system == "erpnext":
        return _objects(f"CUST-{i:05d}" for i in range(1, n + 1))
    return _objects(map(str, range(1, n + 1)))


def _render_names(c: dict, ci: np.ndarray, variant: np.ndarray, rng, v) -> dict:
    n = len(ci)
    person = c["is_person"][ci]
    given, family = _person_parts(c, ci, variant, person, rng, v)
    name = np.full(n, None, dtype=object)
    _assemble_person_names(name, given, family, c["is_cn"][ci], person, variant, rng)
    company = _company_names(c, ci, variant, ~person, rng, v)
    name[~person] = company[~person]
    return {"name": name, "given_name": given, "family_name": family, "company_name": company}


def _person_parts(c, ci, variant, person, rng, v) -> tuple[np.ndarray, np.ndarray]:
    n, names = len(ci), c["names"]
    given, family = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    cn = person & c["is_cn"][ci]
    given[cn] = v.given[variant[cn], names["given"][ci[cn]]]
    family[cn] = v.surname[variant[cn], names["surname"][ci[cn]]]
    w = person & ~c["is_cn"][ci]
    given[w], family[w] = v.first[0][names["first"][ci[w]]], v.last[0][names["last"][ci[w]]]
    upper_ok = (cn | (c["country"][ci] == FR)) & (variant == LATIN)
    up = np.flatnonzero(person & upper_ok & (rng.random(n) < UPPER_FAMILY_RATE))
    family[up] = [f.upper() for f in family[up]]
    typo = person & (rng.random(n) < TYPO_RATE)
    on_family = (variant == LATIN) & (rng.random(n) < TYPO_FAMILY_SHARE)
    _apply_typos(given, typo & ~on_family, variant, v.given_alphabets, rng)
    _apply_typos(family, typo & on_family, variant, (None, None, None), rng)
    return given, family


def _assemble_person_names(name, given, family, is_cn, person, variant, rng) -> None:
    """Chinese script: family + given; Latin: natural order (pinyin family first) or swapped."""
    n = len(name)
    swap = rng.random(n) < SWAP_ORDER_RATE
    comma = rng.random(n) < SWAP_COMMA_SHARE
    latin = person & (variant == LATIN)
    m = person & (variant != LATIN)
    name[m] = family[m] + given[m]
    family_first = latin & (is_cn != swap)
    m = family_first & ~(swap & comma & ~is_cn)
    name[m] = family[m] + " " + given[m]
    m = family_first & swap & comma & ~is_cn
    name[m] = family[m] + ", " + given[m]
    m = latin & ~family_first
    name[m] = given[m] + " " + family[m]


def _company_names(c, ci, variant, company, rng, v) -> np.ndarray:
    """City + trade name + industry (Chinese) or head + tail (Western), then the legal form."""
    n, names = len(ci), c["names"]
    out = np.full(n, None, dtype=object)
    distinct = np.full(n, None, dtype=object)
    cn, w = company & c["is_cn"][ci], company & ~c["is_cn"][ci]
    distinct[cn] = v.trade[variant[cn], names["trade"][ci[cn]]]
    distinct[w] = v.head[0][names["head"][ci[w]]]
    _apply_typos(distinct, company & (rng.random(n) < TYPO_RATE), variant, v.trade_alphabets, rng)
    city = v.city[variant[cn], c["city"][ci[cn]]]
    industry = v.industry[variant[cn], names["industry"][ci[cn]]]
    out[cn] = np.where(variant[cn] == LATIN, city + " " + distinct[cn] + " " + industry, city + distinct[cn] + industry)
    out[w] = distinct[w] + " " + v.tail[0][names["tail"][ci[w]]]
    form = names["legal"][ci[company]]
    cnt = v.legal_cnt[variant[company], form]
    pick = np.where(rng.random(cnt.size) < LEGAL_FORM_CANONICAL_RATE, 0, (rng.random(cnt.size) * cnt).astype(np.int64))
    legal = v.legal[variant[company], form, pick]
    legal[rng.random(cnt.size) < LEGAL_FORM_ABSENT_RATE] = ""
    out[company] = out[company] + legal
    return out


def _render_emails(c, ci, rng) -> np.ndarray:
    n = len(ci)
    email = np.where(rng.random(n) < OTHER_EMAIL_RATE, c["email2"][ci], c["email"][ci])
    case = np.flatnonzero(rng.random(n) < EMAIL_CASE_RATE)
    upper = rng.random(case.size) < EMAIL_UPPER_SHARE
    email[case] = [e.upper() if up else e.split("@")[0].title() + "@" + e.split("@")[1]
                   for e, up in zip(email[case], upper.tolist())]
    space = np.flatnonzero(rng.random(n) < EMAIL_SPACE_RATE)
    where = rng.integers(0, 3, space.size).tolist()
    email[space] = [(" " if k != 1 else "") + e + (" " if k != 0 else "") for e, k in zip(email[space], where)]
    email[rng.random(n) < MISSING_RATE["email"]] = None
    return email


def _render_phones(c, ci, rng, v) -> np.ndarray:
    n = len(ci)
    other = rng.random(n) < OTHER_PHONE_RATE
    plan = np.where(other, c["phone_plan2"][ci], c["phone_plan"][ci])
    nsn = np.where(other, c["phone2"][ci], c["phone"][ci])
    style = rng.choice(len(PHONE_STYLE_P), n, p=list(PHONE_STYLE_P.values()))
    present = np.flatnonzero(rng.random(n) >= MISSING_RATE["phone"])
    out = np.full(n, None, dtype=object)
    plans = v.plans
    out[present] = [_format_phone(plans[p], x, s) for p, x, s in
                    zip(plan[present].tolist(), nsn[present], style[present].tolist())]
    return out


def _format_phone(plan: tuple, nsn: str, style: int) -> str:
    cc, _prefix, _sub, _low, groups, kind = plan
    if style == 1:
        return f"+{cc}{nsn}"
    parts, at = [], 0
    for g in groups:
        parts.append(nsn[at:at + g])
        at += g
    if style in (0, 4):
        return ("+" if style == 0 else "00") + cc + " " + " ".join(parts)
    trunk = "" if kind in ("cn_mobile", "us") else "0"
    if style == 3:
        return trunk + nsn
    if kind == "cn_mobile":
        return "-".join(parts)
    if kind == "cn":
        return f"0{parts[0]}-{''.join(parts[1:])}"
    if kind == "de":
        return f"0{parts[0]} {''.join(parts[1:])}"
    if kind == "us":
        return f"({parts[0]}) {parts[1]}-{parts[2]}"
    return "0" + " ".join(parts)


def _render_addresses(c, ci, variant, rng, v) -> dict:
    n = len(ci)
    moved = rng.random(n) < MOVED_ADDRESS_RATE
    city = np.where(moved, c["city2"][ci], c["city"][ci])
    street = v.street[variant, np.where(moved, c["street2"][ci], c["street"][ci])]
    house = np.where(moved, c["house2"][ci], c["house"][ci])
    postcode = np.where(moved, c["postcode2"][ci], c["postcode"][ci])
    country = c["country"][ci]
    line = np.empty(n, dtype=object)
    forms = (((country == CN) & (variant == SIMPLIFIED), lambda s, h: s + h + "号"),
             ((country == CN) & (variant == TRADITIONAL), lambda s, h: s + h + "號"),
             ((country == CN) & (variant == LATIN), lambda s, h: "No. " + h + " " + s),
             (country == DE, lambda s, h: s + " " + h),
             ((country != CN) & (country != DE), lambda s, h: h + " " + s))
    for m, form in forms:
        line[m] = form(street[m], house[m])
    gb = np.flatnonzero((country == GB) & (rng.random(n) < GB_POSTCODE_NO_SPACE_RATE))
    postcode[gb] = [p.replace(" ", "") for p in postcode[gb]]
    out = {"street": line, "city": v.city[variant, city], "postcode": postcode, "region": v.region[variant, city]}
    missing = rng.random(n) < MISSING_RATE["address"]
    for values in out.values():
        values[missing] = None
    return out


def _render_tax_ids(c, ci, rng) -> np.ndarray:
    n = len(ci)
    tax = c["tax_id"][ci]
    tax[rng.random(n) < MISSING_RATE["tax_id"]] = None
    fmt = np.flatnonzero((rng.random(n) < TAX_ID_FORMAT_RATE) & pd.notna(tax))
    tax[fmt] = [t[:2] + " " + t[2:] if t[:2] in ("DE", "GB", "FR") else t.replace("-", "") if "-" in t
                else t.lower() for t in tax[fmt]]
    return tax


def generate(n_records: int, seed: int = 7) -> pd.DataFrame:
    """`n_records` customer records with ground truth (`true_id`); see the module docstring."""
    if n_records < 1:
        raise ValueError("n_records must be at least 1")
    v = _vocab()
    counts = _records_per_customer(n_records, _stream(seed, "counts"))
    c = _customers(len(counts), seed, v)
    ci, system, source_id = _layout(counts, seed)
    rng = _stream(seed, "records/script")
    variant = np.where(c["is_cn"][ci], rng.choice(3, len(ci), p=list(CN_SCRIPT_P.values())), LATIN)
    birth = c["birth_date"][ci]
    birth[_stream(seed, "records/birth_date").random(len(ci)) < MISSING_RATE["birth_date"]] = None
    columns = {
        "source_system": np.array(SYSTEMS, dtype=object)[system], "source_id": source_id,
        **_render_names(c, ci, variant, _stream(seed, "records/names"), v),
        "email": _render_emails(c, ci, _stream(seed, "records/email")),
        "phone": _render_phones(c, ci, _stream(seed, "records/phone"), v),
        "tax_id": _render_tax_ids(c, ci, _stream(seed, "records/tax_id")),
        **_render_addresses(c, ci, variant, _stream(seed, "records/address"), v),
        "country": np.array(COUNTRIES, dtype=object)[c["country"][ci]],
        "birth_date": birth, "true_id": c["true_id"][ci],
    }
    return pd.DataFrame({name: columns[name] for name in COLUMNS})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write synthetic customer records with ground truth (true_id) as CSV.")
    ap.add_argument("--records", type=int, default=10_000, help="number of source records (default 10000)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--output", type=Path, required=True, help="CSV file to write")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    frame = generate(args.records, args.seed)
    generated = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.output, index=False)
    print(f"{len(frame)} records of {frame['true_id'].nunique()} customers generated in {generated:.2f} s, "
          f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
