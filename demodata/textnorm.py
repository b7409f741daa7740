"""Name comparison used to keep the ground truth honest.

The generator must know, while it adds noise, whether two records would still be linked by a matcher
that trusts a shared phone only between equally named records (guarantee 1 in `demodata.generate`).
These functions are that matcher's name rule: NFKC, opencc traditional→simplified, casefold,
whitespace collapse; "a typo" means one inserted, deleted or substituted character.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def to_traditional(text: str) -> str:
    return _s2t().convert(text)


def norm_name(name: str | None) -> str:
    """Comparable form of a name: '上海華信貿易（上海）有限公司 ' and '上海华信贸易(上海)有限公司' agree."""
    if not name:
        return ""
    text = _t2s().convert(unicodedata.normalize("NFKC", name))
    return " ".join(text.casefold().split())


def within_one_edit(a: str, b: str) -> bool:
    """True if a and b are equal or one insertion, deletion or substitution apart (linear time)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1:] == b[i + 1:]
    return a[i:] == b[i + 1:]


def levenshtein(a: str, b: str) -> int:
    """Edit distance; quadratic, so only for the few switchboard pairings, never per record."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
