"""True customers: the real-world companies and people behind the ERP records.

A `Customer` holds the clean, canonical facts (name in its own script, romanised forms, one e-mail,
one phone, tax id, address). `demodata.records` later copies them into 1-3 ERPs with noise; the
canonical values are what the ground truth clusters by. Keys come from one `KeyFactory`, so they are
unique across customers except the company switchboards shared on purpose (`share_switchboards`).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from pypinyin import lazy_pinyin

from . import vocab
from .identifiers import KeyFactory
from .textnorm import levenshtein, norm_name

SHARE_OF_COMPANIES = 0.60
SHARE_OF_CHINESE = 0.85
SWITCHBOARD_SHARE = 0.02  # of companies that share a switchboard with another company


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone split the way people write it: country code, area code ('' for mobiles), local digits."""
    cc: str
    area: str
    local: str

    @property
    def e164(self) -> str:
        return f"+{self.cc}{self.area}{self.local}"

    @property
    def is_mobile(self) -> bool:
        return self.cc == "86" and not self.area


@dataclass(slots=True)
class Address:
    street_zh: str | None  # Chinese script; None for Western addresses
    street_latin: str
    city_zh: str | None
    city_latin: str
    postcode: str
    country: str  # ISO 3166 alpha-2


@dataclass(slots=True)
class Customer:
    tid: str
    is_company: bool
    market: str  # CN, DE, US, GB
    name_zh: str | None  # simplified Chinese, CN only
    latin_names: list[str]  # romanised or Latin forms, the usual one first
    email: str
    phone: Phone
    address: Address
    typical_amount: float  # median order value in CNY
    tax_id: str | None = None
    tax_type: str | None = None  # cn_uscc | eu_vat
    second_mobile: Phone | None = None  # a contact person's mobile, only Tryton stores it
    defect: str | None = None  # missing_name | malformed_email: a bad customer record
    shares_phone_with: str | None = None
    systems: list[str] = field(default_factory=list)


def _pinyin(text: str) -> str:
    """'华信' -> 'Huaxin': one capitalised word, as Chinese names and trade names are romanised."""
    return "".join(lazy_pinyin(text)).capitalize()


def _ascii(text: str) -> str:
    """E-mail-safe lower-case ASCII: 'Müller' -> 'mueller'."""
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), (" ", "-")):
        text = text.lower().replace(a, b)
    return text


def _cn_address(rng: random.Random, city) -> Address:
    zh, latin, zip_prefix, _, _, (district_zh, district_en), streets = city
    street_zh, street_en = rng.choice(streets)
    number = rng.randint(1, 999)
    return Address(f"{district_zh}{street_zh}{number}号", f"No. {number} {street_en}, {district_en}",
                   zh, latin, f"{zip_prefix}{rng.randint(0, 299):03d}", "CN")


def _western_address(rng: random.Random, market: str) -> tuple[Address, str]:
    spec = vocab.WESTERN[market]
    city, zip_prefix, area = rng.choice(spec["cities"])
    street, number = rng.choice(spec["streets"]), rng.randint(1, 250)
    if market == "DE":
        street_line, postcode = f"{street} {number}", f"{zip_prefix}{rng.randint(0, 99):02d}"
    elif market == "US":
        street_line, postcode = f"{number * 10} {street}", f"{zip_prefix}{rng.randint(0, 99):02d}"
    else:
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        street_line = f"{number} {street}"
        postcode = f"{zip_prefix} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return Address(None, street_line, None, city, postcode, market), area


def _typical_amount(rng: random.Random, is_company: bool) -> float:
    """Companies buy around 6,000 CNY per order, individuals around 1,200; spread log-normally."""
    return rng.lognormvariate(math.log(6000 if is_company else 1200), 0.6)


def _chinese_company(rng: random.Random, keys: KeyFactory, tid: str) -> Customer:
    city = rng.choices(vocab.CN_CITIES, weights=vocab.CN_CITY_WEIGHTS)[0]
    city_zh, city_py, _, division, area = city[:5]
    trade = "".join(rng.sample(vocab.TRADE_CHARS, 2))
    industry_zh, industry_en = rng.choice(vocab.INDUSTRIES)
    suffix_zh, suffix_en = rng.choice(vocab.CN_SUFFIXES)
    trade_py = _pinyin(trade)
    city_first = (f"{city_zh}{trade}{industry_zh}{suffix_zh}", f"{city_py} {trade_py} {industry_en} {suffix_en}")
    city_inside = (f"{trade}{industry_zh}（{city_zh}）{suffix_zh}", f"{trade_py} {industry_en} ({city_py}) {suffix_en}")
    (name_zh, usual_latin), (_, other_latin) = (city_first, city_inside) if rng.random() < 0.7 else (city_inside, city_first)
    domain = f"{trade_py.lower()}-{industry_en.split()[0].lower()}.example.cn"
    phone = _split(keys.cn_landline(area), "86", area) if rng.random() < 0.8 else _mobile(keys)
    customer = Customer(tid, True, "CN", name_zh, [usual_latin, other_latin],
                        keys.email(rng.choice(vocab.COMPANY_MAILBOXES), domain), phone,
                        _cn_address(rng, city), _typical_amount(rng, True),
                        tax_id=keys.uscc(division), tax_type="cn_uscc")
    if rng.random() < 0.3:
        customer.second_mobile = _mobile(keys)
    return customer


def _split(e164: str, cc: str, area: str) -> Phone:
    return Phone(cc, area, e164[1 + len(cc) + len(area):])


def _mobile(keys: KeyFactory) -> Phone:
    return _split(keys.cn_mobile(), "86", "")


def _chinese_person(rng: random.Random, keys: KeyFactory, tid: str) -> Customer:
    family_zh, family_py = rng.choice(vocab.SURNAMES)
    given_zh = "".join(rng.sample(vocab.GIVEN_CHARS, rng.choice((1, 2, 2))))
    given_py = _pinyin(given_zh)
    latin = [f"{family_py} {given_py}", f"{given_py} {family_py}", f"{family_py.upper()} {given_py}"]
    fam, giv = family_py.lower(), given_py.lower()
    local = rng.choice([f"{fam}.{giv}", f"{giv}.{fam}", f"{fam}{giv}{rng.randint(1, 99)}",
                        f"{fam[0]}{giv}{rng.randint(1960, 2005)}"])
    city = rng.choices(vocab.CN_CITIES, weights=vocab.CN_CITY_WEIGHTS)[0]
    return Customer(tid, False, "CN", f"{family_zh}{given_zh}", latin,
                    keys.email(local, rng.choice(vocab.PERSON_EMAIL_DOMAINS_CN)), _mobile(keys),
                    _cn_address(rng, city), _typical_amount(rng, False))


def _western(rng: random.Random, keys: KeyFactory, tid: str, is_company: bool) -> Customer:
    market = rng.choices(list(vocab.WESTERN), weights=[m["weight"] for m in vocab.WESTERN.values()])[0]
    spec = vocab.WESTERN[market]
    address, area = _western_address(rng, market)
    phone = _split(keys.western_phone(market, area), spec["phone_cc"], area)
    if is_company:
        head, tail = rng.choice(spec["company_heads"]), rng.choice(spec["company_tails"])
        name = f"{head} {tail} {spec['legal'][0]}"
        email = keys.email(rng.choice(vocab.COMPANY_MAILBOXES), f"{_ascii(head)}-{_ascii(tail)}.example.{spec['email_tld']}")
    else:
        first, last = rng.choice(spec["first"]), rng.choice(spec["last"])
        name = f"{first} {last}"
        email = keys.email(rng.choice([f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}.{_ascii(last)}"]),
                           f"example.{spec['email_tld']}")
    customer = Customer(tid, is_company, market, None, [name], email, phone, address,
                        _typical_amount(rng, is_company))
    if is_company and market != "US" and rng.random() < 0.8:
        customer.tax_id, customer.tax_type = keys.eu_vat(market), "eu_vat"
    return customer


def make_customer(rng: random.Random, keys: KeyFactory, tid: str) -> Customer:
    """One true customer: ~60 % companies, ~85 % Chinese, the rest German, US or British."""
    is_company = rng.random() < SHARE_OF_COMPANIES
    if rng.random() < SHARE_OF_CHINESE:
        return _chinese_company(rng, keys, tid) if is_company else _chinese_person(rng, keys, tid)
    return _western(rng, keys, tid, is_company)


def make_bad_customer(rng: random.Random, keys: KeyFactory, tid: str, defect: str) -> Customer:
    """A customer whose only record is broken: no name, or an e-mail no mailer would accept."""
    customer = make_customer(rng, keys, tid)
    customer.defect = defect
    if defect == "malformed_email":
        local, domain = customer.email.split("@")
        broken = rng.choice([f"{local}@@{domain.split('.')[0]}", f"{local}.{domain}", f"{local}@{domain.split('.')[0]}"])
        customer.email = keys.raw(broken)
    return customer


def _clearly_different(a: Customer, b: Customer) -> bool:
    """Names no record variant could confuse: Chinese forms 2+ edits apart, romanised forms 4+.

    Record noise adds at most one typo per romanised name, so 4 edits between the canonical forms keep
    any two variants at least 2 apart: a matcher never links the pair through the shared phone.
    """
    if levenshtein(norm_name(a.name_zh), norm_name(b.name_zh)) < 2:
        return False
    return all(levenshtein(norm_name(x), norm_name(y)) >= 4 for x in a.latin_names for y in b.latin_names)


def share_switchboards(rng: random.Random, customers: list[Customer]) -> int:
    """Let ~2 % of companies use another company's switchboard number (shared office, group hotline).

    Only Chinese companies with a landline take part; each pair has clearly different names.
    Returns the number of pairs made.
    """
    candidates = [c for c in customers if c.is_company and c.market == "CN" and not c.phone.is_mobile and not c.defect]
    n_companies = sum(1 for c in customers if c.is_company)
    wanted = max(1, round(n_companies * SWITCHBOARD_SHARE / 2)) if len(candidates) >= 2 else 0
    rng.shuffle(candidates)
    pairs, used = 0, [False] * len(candidates)
    for i, owner in enumerate(candidates):
        if pairs == wanted:
            break
        if used[i]:
            continue
        for j in range(i + 1, min(len(candidates), i + 50)):
            other = candidates[j]
            if not used[j] and _clearly_different(owner, other):
                other.phone, other.shares_phone_with = owner.phone, owner.tid
                owner.shares_phone_with = other.tid
                used[i] = used[j] = True
                pairs += 1
                break
    return pairs
