"""Normalise identity fields so that the same customer written differently in two ERPs compares equal.

Names: Unicode NFKC (full-width forms), traditional → simplified Chinese (OpenCC), case folding, punctuation
and whitespace collapsed, company legal-form suffixes removed; a pinyin form for comparing across scripts. Emails: trimmed and lower-cased. Phones:
E.164 via libphonenumber with a default region. Tax ids: upper case without separators.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc
import pandas as pd
import phonenumbers

_T2S = opencc.OpenCC("t2s")
_PUNCT = re.compile(r"[\s\.,;:!\?\(\)（）【】\[\]\"'“”‘’·&/\\\-_]+")
# Longest first, so that 股份有限公司 is removed whole rather than leaving 股份.
LEGAL_SUFFIXES = sorted([
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    "co ltd", "company limited", "co limited", "limited", "ltd", "inc", "incorporated", "corp", "corporation",
    "llc", "plc", "gmbh", "ag", "kg", "sarl", "sa", "bv", "co",
], key=len, reverse=True)
_SUFFIX = re.compile(r"(?:\s|^)(?:" + "|".join(re.escape(s) for s in LEGAL_SUFFIXES if s.isascii()) + r")\s*$")
_CJK_SUFFIX = re.compile("(?:" + "|".join(s for s in LEGAL_SUFFIXES if not s.isascii()) + ")$")
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


def norm_email(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    email = unicodedata.normalize("NFKC", value).strip().lower()
    return email if _EMAIL.match(email) else None


@lru_cache(maxsize=200_000)
def norm_phone(value: str | None, region: str = "CN") -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (right length for its country), not "valid": allocation ranges change, and for telling
    # two records apart the digits matter, not whether the range is in service today.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def norm_tax_id(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    tax_id = re.sub(r"[\s\-\.]", "", unicodedata.normalize("NFKC", value)).upper()
    return tax_id if len(tax_id) >= 5 else None


def normalise_records(records: pd.DataFrame, default_region: str = "CN") -> pd.DataFrame:
    """Add the n_* comparison columns to canonical customer records."""
    out = records.copy()
    region = out["country"].where(out["country"].notna(), default_region).astype(str).str.upper()
    out["n_name"] = out["name"].map(norm_name)
    out["n_name_latin"] = out["n_name"].map(latin_name)
    out["n_email"] = out["email"].map(norm_email)
    # The customer's country reads national formats ("030 1234567" in Germany); the ERP's own region reads
    # numbers dialled from the company's office ("001 206 …" is +1 206 … when dialled from China).
    out["n_phone"] = [norm_phone(p, r if len(r) == 2 else default_region) or norm_phone(p, default_region)
                      for p, r in zip(out["phone"], region)]
    out["n_tax_id"] = out["tax_id"].map(norm_tax_id)
    return out
