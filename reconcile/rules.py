"""Deterministic matching rules, applied in the configured order, with a never-merge constraint.

Records are linked by union-find. A link is refused when it would put two different normalised tax ids
in one customer, whatever else matches: a tax id names exactly one legal entity.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rapidfuzz import fuzz

RULES = ("same_tax_id", "same_email", "same_phone_similar_name")


@dataclass
class Link:
    rule: str
    left: int
    right: int
    evidence: dict


class Clusters:
    """Union-find over record positions that carries each component's tax ids."""

    def __init__(self, tax_ids: list[str | None]):
        self.parent = list(range(len(tax_ids)))
        self.tax = [{t} if isinstance(t, str) and t else set() for t in tax_ids]
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
        if self.tax[ra] and self.tax[rb] and self.tax[ra] != self.tax[rb]:
            self.refused += 1
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.tax[ra] |= self.tax[rb]
        return True


def _key_links(frame: pd.DataFrame, column: str, rule: str) -> list[Link]:
    keyed = frame[frame[column].notna()]
    links = []
    for key, positions in keyed.groupby(column, sort=True).indices.items():
        rows = sorted(keyed.index[positions])
        links += [Link(rule, rows[0], other, {"field": column[2:], "value": key}) for other in rows[1:]]
    return links


def name_similarity(name_a: str, name_b: str, latin_a: str | None, latin_b: str | None) -> tuple[float, str]:
    """(0–100 score, how it was compared). As written first; then, when either name is Chinese, in pinyin:
    syllables joined ("ouyang nana" meets "ou yang na na") or in any order ("Wei Zhang" meets 张伟)."""
    score, how = fuzz.ratio(name_a, name_b), "as written"
    if latin_a and latin_b and (latin_a != name_a or latin_b != name_b):
        pinyin = max(fuzz.ratio(latin_a.replace(" ", ""), latin_b.replace(" ", "")),
                     fuzz.token_sort_ratio(latin_a, latin_b))
        if pinyin > score:
            score, how = pinyin, "pinyin"
    return score, how


def _phone_links(frame: pd.DataFrame, threshold: float) -> list[Link]:
    keyed = frame[frame["n_phone"].notna()]
    latin = frame["n_name_latin"] if "n_name_latin" in frame else frame["n_name"]
    links = []
    for phone, positions in keyed.groupby("n_phone", sort=True).indices.items():
        rows = sorted(keyed.index[positions])
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                name_a, name_b = frame.at[a, "n_name"], frame.at[b, "n_name"]
                if name_a and name_b:
                    score, how = name_similarity(name_a, name_b, latin.at[a], latin.at[b])
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
