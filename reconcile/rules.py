"""Deterministic matching rules, applied in the configured order, with a never-merge constraint.

Records are linked by union-find. A link is refused when it would put two different normalised tax ids
in one customer, whatever else matches (a tax id names exactly one legal entity), or two records a person
decided are different customers (a rejected review).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz

from reconcile.normalize import _CJK

from reconcile.settings import RULES


@dataclass
class Link:
    rule: str
    left: int
    right: int
    evidence: dict


class Clusters:
    """Union-find over record positions that carries each component's tax ids."""

    def __init__(self, tax_ids: list[str | None], apart: list[tuple[int, int]] = ()):
        self.parent = list(range(len(tax_ids)))
        self.tax = [{t} if isinstance(t, str) and t else set() for t in tax_ids]
        self.apart: dict[int, set[int]] = {}  # root → records its component must never join
        for a, b in apart:
            self.apart.setdefault(a, set()).add(b)
            self.apart.setdefault(b, set()).add(a)
        self.refused = 0

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if (self.tax[ra] and self.tax[rb] and self.tax[ra] != self.tax[rb]) or self._kept_apart(ra, rb):
            self.refused += 1
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.tax[ra] |= self.tax[rb]
        if rb in self.apart:
            self.apart.setdefault(ra, set()).update(self.apart.pop(rb))
        return True

    def _kept_apart(self, ra: int, rb: int) -> bool:
        return any(self.find(x) == rb for x in self.apart.get(ra, ())) or \
            any(self.find(x) == ra for x in self.apart.get(rb, ()))


def _key_links(frame: pd.DataFrame, column: str, rule: str) -> list[Link]:
    """Records sharing a value: each is linked to the first record (lowest position) with that value."""
    values = frame[column]
    shared = values[values.notna() & values.duplicated(keep=False)]
    if shared.empty:
        return []
    table = pd.DataFrame({"value": shared.to_numpy(dtype=object), "pos": shared.index.to_numpy()})
    table = table.sort_values(["value", "pos"], kind="stable")
    table["first"] = table.groupby("value", sort=False)["pos"].transform("min")
    table = table[table["pos"] != table["first"]]
    field = column[2:]
    return [Link(rule, int(first), int(pos), {"field": field, "value": value})
            for value, pos, first in zip(table["value"], table["pos"], table["first"])]


def name_similarity(name_a: str, name_b: str, key_a: str | None, key_b: str | None) -> tuple[float, str]:
    """(0–100 score, how it was compared). As written first; then by name key (pinyin words in any order,
    see normalize.name_key), joined or word by word, so that 朱玉兰 meets "Yulan Zhu" and "ZHU Yulan"."""
    score, how = fuzz.ratio(name_a, name_b), "as written"
    if key_a and key_b:
        keyed = max(fuzz.ratio(key_a.replace(" ", ""), key_b.replace(" ", "")), fuzz.token_sort_ratio(key_a, key_b))
        if keyed > score:
            score, how = keyed, "pinyin" if _CJK.search(name_a + name_b) else "name order"
    return score, how


def _phone_links(frame: pd.DataFrame, threshold: float) -> list[Link]:
    keyed = frame[frame["n_phone"].notna() & frame["n_name"].notna()]
    shared = keyed[keyed.duplicated("n_phone", keep=False)]
    if shared.empty:
        return []
    sides = pd.DataFrame({"phone": shared["n_phone"].to_numpy(dtype=object), "pos": shared.index.to_numpy()})
    pairs = sides.merge(sides, on="phone", suffixes=("_a", "_b"))
    pairs = pairs[pairs["pos_a"] < pairs["pos_b"]].sort_values(["phone", "pos_a", "pos_b"])
    names = frame["n_name"].tolist()
    keys = (frame["n_name_key"] if "n_name_key" in frame else frame["n_name"]).tolist()
    links = []
    for phone, a, b in zip(pairs["phone"], pairs["pos_a"].tolist(), pairs["pos_b"].tolist()):
        score, how = name_similarity(names[a], names[b], keys[a], keys[b])
        if score >= threshold:
            evidence = {"field": "phone", "value": phone, "name_similarity": round(score, 1)}
            if how != "as written":
                evidence["names_compared"] = how
            links.append(Link("same_phone_similar_name", a, b, evidence))
    return links


def find_links(frame: pd.DataFrame, rules: tuple[str, ...] = RULES, name_threshold: float = 90) -> list[Link]:
    """All candidate links of `frame` (normalised records with a RangeIndex), rule by rule, in order."""
    builders = {
        "same_tax_id": lambda: _key_links(frame, "n_tax_id", "same_tax_id"),
        "same_email": lambda: _key_links(frame, "n_email", "same_email"),
        "same_phone_similar_name": lambda: _phone_links(frame, name_threshold),
    }
    links = []
    for rule in rules:
        if rule not in builders:
            raise ValueError(f"unknown matching rule {rule!r}; known: {', '.join(builders)}")
        links += builders[rule]()
    return links
