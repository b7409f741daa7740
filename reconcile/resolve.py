"""resolve(): canonical customer records (+ the previous crosswalk) → crosswalk, golden records, events."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from reconcile.identity import assign_ids
from reconcile.normalize import normalise_records
from reconcile.rules import RULES, Clusters, find_links
from reconcile.survivorship import golden_records


class ReconcileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: tuple[str, ...] = RULES
    name_similarity: float = Field(90, ge=0, le=100)  # rapidfuzz ratio for same_phone_similar_name
    default_phone_region: str = "CN"
    source_priority: list[str] = []


@dataclass
class ReconcileResult:
    crosswalk: pd.DataFrame  # source_system, source_id, customer_id, match_rule, match_band, match_score, explanation
    customers: pd.DataFrame  # golden records: customer_id, fields, source_ids, source_count
    events: list[dict] = field(default_factory=list)
    refused_links: int = 0  # links the never-merge constraint refused


def resolve(records: pd.DataFrame, previous_crosswalk: pd.DataFrame | None = None,
            created_at: dict[str, object] | None = None, settings: ReconcileSettings | None = None) -> ReconcileResult:
    settings = settings or ReconcileSettings()
    frame = normalise_records(records.reset_index(drop=True), settings.default_phone_region)
    frame = frame.sort_values(["source_system", "source_id"], kind="stable").reset_index(drop=True)
    clusters = Clusters(frame["n_tax_id"].tolist())
    explanation: dict[int, dict] = {}
    for link in find_links(frame, settings.rules, settings.name_similarity):
        if clusters.union(link.left, link.right):
            # Each record keeps the first link that attached it, naming the record on the other end.
            for pos, other in ((link.right, link.left), (link.left, link.right)):
                explanation.setdefault(pos, {
                    "rule": link.rule, "score": 1.0,
                    "matched_with": f"{frame.at[other, 'source_system']}:{frame.at[other, 'source_id']}",
                    **link.evidence})
    keys = frame["source_system"] + ":" + frame["source_id"]
    previous = pd.Series([None] * len(frame), dtype=object)
    if previous_crosswalk is not None and not previous_crosswalk.empty:
        prior = dict(zip(previous_crosswalk["source_system"] + ":" + previous_crosswalk["source_id"],
                         previous_crosswalk["customer_id"]))
        previous = keys.map(prior).astype(object)
    labels = pd.Series([clusters.find(i) for i in range(len(frame))])
    frame["customer_id"], events = assign_ids(labels, keys, previous, created_at or {})
    default = {"rule": "no_match", "score": 1.0}
    crosswalk = pd.DataFrame({
        "source_system": frame["source_system"], "source_id": frame["source_id"],
        "customer_id": frame["customer_id"],
        "match_rule": [explanation.get(i, default)["rule"] for i in range(len(frame))],
        "match_band": "auto",  # deterministic rules only: every link is an automatic merge
        "match_score": 1.0,
        "explanation": [json.dumps(explanation.get(i, default), ensure_ascii=False) for i in range(len(frame))],
    })
    # The golden record carries contact values in their normalised form (E.164 phone, lower-case email);
    # a value that does not normalise is kept as it came, for the unified-customer gate to judge.
    for raw, normalised in (("email", "n_email"), ("phone", "n_phone"), ("tax_id", "n_tax_id")):
        frame[raw] = frame[normalised].where(frame[normalised].notna(), frame[raw])
    customers = golden_records(frame, settings.source_priority)
    return ReconcileResult(crosswalk, customers, events, clusters.refused)
