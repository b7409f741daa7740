"""Normalise identity fields so that the same customer written differently in two ERPs compares equal.

Names: Unicode NFKC (full-width forms), traditional → simplified Chinese (OpenCC), case folding, punctuation
and whitespace collapsed, company legal-form suffixes removed; a pinyin form for comparing across scripts,
and a name key (pinyin tokens sorted) that ignores name order. Emails: trimmed, lower-cased, plus-tags
dropped where the provider is known to ignore them. Phones: E.164 via libphonenumber with a default region.
Tax ids and postcodes: upper case without separators. Streets: common words abbreviated one way. Cities:
in Latin letters.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
import opencc
import pandas as pd
import phonenumbers

from reconcile.company_names import cn_company_parts, english_industry_word

_T2S = opencc.OpenCC("t2s")
_PUNCT = re.compile(r"[\s\.,;:!\?\(\)（）【】\[\]\"'“”‘’·&/\\\-_]+")
# Longest first, so that 股份有限公司 is removed whole rather than leaving 股份.
LEGAL_SUFFIXES = sorted([
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    "co ltd", "company limited", "co limited", "limited", "ltd", "inc", "incorporated", "corp", "corporation",
    "llc", "plc", "gmbh", "ag", "kg", "sarl", "sas", "sa", "srl", "spa", "bv", "nv", "pte", "pty", "co",
    "joint stock", "jsc",
], key=len, reverse=True)
_SUFFIX = re.compile(r"(?:\s|^)(?:" + "|".join(re.escape(s) for s in LEGAL_SUFFIXES if s.isascii()) + r")\s*$")
_CJK_SUFFIX = re.compile("(?:" + "|".join(s for s in LEGAL_SUFFIXES if not s.isascii()) + ")$")
_INITIALS = re.compile(r"(?<!\S)[a-z](?: [a-z])+(?!\S)")  # single letters in a row
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@lru_cache(maxsize=200_000)
def norm_text(value: str | None) -> str | None:
    if value is None or value != value:  # None or NaN
        return None
    text = _T2S.convert(unicodedata.normalize("NFKC", str(value))).casefold()
    text = _PUNCT.sub(" ", text).strip()
    return text or None


@lru_cache(maxsize=200_000)
def norm_name(value: str | None) -> str | None:
    """A person's or company's name without legal-form suffixes."""
    text = norm_text(value)
    if text is None:
        return None
    text = _INITIALS.sub(lambda m: m.group(0).replace(" ", ""), text)  # "s a r l" (S.A.R.L.) → "sarl"
    for _ in range(3):  # "xyz co ltd" needs two passes
        stripped = _CJK_SUFFIX.sub("", _SUFFIX.sub("", text)).strip()
        if stripped == text:
            break
        text = stripped
    return text or None


_CJK = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=200_000)
def latin_name(value: str | None) -> str | None:
    """A normalised name (see norm_name) in Latin letters: Chinese characters become toneless pinyin, one
    syllable per character ("张伟" → "zhang wei"), so that it can meet the romanised spelling of another ERP."""
    from pypinyin import lazy_pinyin

    if value is None or not _CJK.search(value):
        return value
    return " ".join(" ".join(lazy_pinyin(value)).split()) or None


# Providers known to deliver "name+tag@" to "name@": only there is dropping the tag safe. Elsewhere
# "sales+eu@" may be a different mailbox than "sales@".
SUBADDRESS_DOMAINS = frozenset({"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
                                "icloud.com", "me.com", "fastmail.com", "protonmail.com", "proton.me"})
GMAIL = frozenset({"gmail.com", "googlemail.com"})  # also ignores dots in the local part


@lru_cache(maxsize=200_000)
def norm_email(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    email = unicodedata.normalize("NFKC", value).strip().lower()
    if not _EMAIL.match(email):
        return None
    local, domain = email.rsplit("@", 1)
    if domain in SUBADDRESS_DOMAINS:
        local = local.split("+", 1)[0] or local
        if domain in GMAIL:
            local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# Two-character family names: 欧阳娜娜 is Ouyang Nana, not Ou Yangnana.
COMPOUND_SURNAMES = frozenset({"欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "尉迟", "公孙", "夏侯",
                               "长孙", "宇文", "司徒", "轩辕", "端木", "独孤", "南宫", "西门", "澹台", "申屠"})


@lru_cache(maxsize=200_000)
def name_key(name: str | None) -> str | None:
    """A normalised name (see norm_name) as words in Latin letters, in alphabetical order, so that 张伟,
    "Wei Zhang" and "ZHANG Wei" compare equal. A Chinese name ending in an industry term is a company:
    region and trade name in pinyin, the industry in English (深圳凯辰纺织 → "kaichen shenzhen textile", as
    its English name "Shenzhen Kaichen Textile" gives; see company_names). Otherwise a Chinese name of up to
    four characters is a person: family name and given name, each one word in pinyin (朱玉兰 → "yulan zhu");
    a longer one is a company, one word. Industry words of Latin names take one form ("Technologies" →
    "technology")."""
    if not name:
        return None
    if _CJK.search(name):
        chars = name.replace(" ", "")
        company = cn_company_parts(chars)
        if company is not None:
            region, trade, industry = company
            words = [_pinyin(region), _pinyin(trade), *industry.split()]
        elif len(chars) <= 4:
            family = chars[:2] if chars[:2] in COMPOUND_SURNAMES else chars[:1]
            words = [_pinyin(family), _pinyin(chars[len(family):])]
        else:
            words = [_pinyin(chars)]
        words = [w for w in ("".join(ch for ch in w if ch.isalnum()) for w in words) if w]
    else:
        words = [english_industry_word(_U_SYLLABLES.get(w, w)) for w in name.split()]
    return " ".join(sorted(words)) or None


# ü after l and n: pypinyin writes "lv", ERPs "Lyu" (the passport spelling), "Lü" or "Lv"; one form.
_U_SYLLABLES = {f"{c}{u}{e}": f"{c}yu{e}" for c in "ln" for u in ("v", "ü", "yu") for e in ("", "e")}


def _pinyin(chars: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(_U_SYLLABLES.get(s, s) for s in lazy_pinyin(chars))


_STREET_WORDS = {"street": "st", "str": "st", "strasse": "st", "straße": "st", "road": "rd", "avenue": "ave",
                 "boulevard": "blvd", "drive": "dr", "lane": "ln", "place": "pl", "no": "", "number": ""}


@lru_cache(maxsize=200_000)
def norm_street(value: str | None) -> str | None:
    """Street lines: NFKC, simplified script, common words abbreviated one way ("Road" and "Rd" meet)."""
    text = norm_text(value)
    if text is None:
        return None
    text = re.sub(r"(?<=[a-z])(strasse|straße)\b", r" \1", text)  # "Hauptstraße" → "haupt st"
    return " ".join(w for w in (_STREET_WORDS.get(t, t) for t in text.split()) if w) or None


@lru_cache(maxsize=50_000)
def norm_city(value: str | None) -> str | None:
    """City names in Latin letters without spaces, so that 上海, 上海市 and "Shanghai" meet."""
    text = norm_text(value)
    if text is None:
        return None
    if _CJK.search(text):
        text = text.removesuffix("市")
    return (latin_name(text) or "").replace(" ", "") or None


def norm_postcode(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    code = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value)).upper()
    return code or None


def norm_phone(value: str | None, region: str = "CN") -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    quick = _quick_phone(value, region)
    return _parsed_phone(value, region) if quick is _UNSURE else quick


@lru_cache(maxsize=200_000)
def _parsed_phone(value: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (right length for its country), not "valid": allocation ranges change, and for telling
    # two records apart the digits matter, not whether the range is in service today.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# libphonenumber's parse costs ~70 µs; a million records need a faster road for the plain cases: digits
# with the usual separators, written internationally (+cc / 00cc) or nationally with the region's trunk
# prefix. Anything else (letters, extensions, "(0)", leading zeros in the national number) is parsed.
_UNSURE = object()
_PLAIN_PHONE = re.compile(r"^\s*\+?[\d\s\-\.\(\)/]+$")
_NON_DIGIT = re.compile(r"\D")


@lru_cache(maxsize=512)
def _region_plan(region: str) -> tuple[str, str, str] | None:
    """(country code, trunk prefix, international prefix) of a region whose prefixes are plain digits."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    international = next((p for p in ("00", "011") if re.fullmatch(metadata.international_prefix or "-", p)), None)
    trunk = metadata.national_prefix or ""
    if international is None or not trunk.isdigit() and trunk:
        return None
    return str(metadata.country_code), trunk, international


def _quick_phone(value: str, region: str):
    if not _PLAIN_PHONE.match(value) or "(0)" in value:
        return _UNSURE
    digits = _NON_DIGIT.sub("", value)
    plan = _region_plan(region)
    if value.lstrip().startswith("+"):
        international = digits
    elif plan is None:
        return _UNSURE
    elif digits.startswith(plan[2]):
        international = digits[len(plan[2]):]
    else:
        international = plan[0] + (digits[len(plan[1]):] if plan[1] and digits.startswith(plan[1]) else digits)
    for size in (1, 2, 3):
        code = int(international[:size] or 0)
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = international[size:]
            if not national or national.startswith("0"):
                return _UNSURE
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            return f"+{international}" if phonenumbers.is_possible_number(number) else None
    return _UNSURE


def norm_tax_id(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    tax_id = re.sub(r"[\s\-\.]", "", unicodedata.normalize("NFKC", value)).upper()
    return tax_id if len(tax_id) >= 5 else None


NORMAL_FORM_COLUMNS = ("n_name", "n_email", "n_phone", "n_tax_id", "n_name_key", "n_street", "n_city", "n_postcode",
                       "n_birth_date")


@lru_cache(maxsize=1)
def normaliser_version() -> str:
    """Names the normalisation code and the libraries it relies on: normal forms saved under another
    version are computed again (a release that changes how names are keyed must not reuse old keys)."""
    import inspect
    import sys

    import pypinyin

    from reconcile import company_names

    parts = [inspect.getsource(sys.modules[__name__]), inspect.getsource(company_names), pypinyin.__version__,
             phonenumbers.__version__, opencc.__version__ if hasattr(opencc, "__version__") else ""]
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:16]


_TEXT_INPUTS = ("name", "email", "phone", "tax_id", "street", "city", "postcode", "country")
PARALLEL_FROM = 200_000  # records; below this, forking worker processes costs more than it saves
_PENDING: tuple[pd.DataFrame, str] | None = None  # what forked workers read, instead of pickling it to them


def normalise_records(records: pd.DataFrame, default_region: str = "CN") -> pd.DataFrame:
    """Add the n_* comparison columns to canonical customer records (on every core for large sets)."""
    global _PENDING
    out = records.copy()
    workers = min(os.cpu_count() or 1, 8)
    # A daemonic process (a Celery prefork child, say) may not start children: normalise in place there.
    if len(out) < PARALLEL_FROM or workers < 2 or multiprocessing.current_process().daemon:
        columns = _comparison_columns(out, default_region)
    else:
        _PENDING = (out, default_region)
        try:
            bounds = np.linspace(0, len(out), workers + 1).astype(int)
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                columns = pd.concat(pool.map(_normalise_slice, zip(bounds[:-1], bounds[1:])))
        finally:
            _PENDING = None
    for column in columns:
        out[column] = columns[column].to_numpy()
    return out


def _normalise_slice(bounds: tuple[int, int]) -> pd.DataFrame:
    records, region = _PENDING
    return _comparison_columns(records.iloc[bounds[0]:bounds[1]], region)


def _comparison_columns(records: pd.DataFrame, default_region: str) -> pd.DataFrame:
    # Plain Python strings: mapping over Arrow-backed text costs a conversion per value.
    records = records.astype({c: object for c in records.columns if c in _TEXT_INPUTS})
    out = pd.DataFrame(index=records.index)
    region = records["country"].where(records["country"].notna(), default_region).astype(str).str.upper()
    out["n_name"] = records["name"].map(norm_name)
    out["n_email"] = records["email"].map(norm_email)
    # The customer's country reads national formats ("030 1234567" in Germany); the ERP's own region reads
    # numbers dialled from the company's office ("001 206 …" is +1 206 … when dialled from China).
    out["n_phone"] = [norm_phone(p, r if len(r) == 2 else default_region) or norm_phone(p, default_region)
                      for p, r in zip(records["phone"], region)]
    out["n_tax_id"] = records["tax_id"].map(norm_tax_id)
    out["n_name_key"] = out["n_name"].map(name_key)
    for column, normaliser in (("street", norm_street), ("city", norm_city), ("postcode", norm_postcode)):
        out[f"n_{column}"] = records[column].map(normaliser) if column in records else None
    out["n_birth_date"] = iso_dates(records["birth_date"]) if "birth_date" in records else None
    return out


def iso_dates(values: pd.Series) -> pd.Series:
    """YYYY-MM-DD text of dates given as date objects, timestamps or ISO strings; None where there is none."""
    text = values.astype(object).map(lambda v: None if v is None or v != v else str(v)[:10])
    valid = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d").notna()
    return text.where(valid.to_numpy(), None)
