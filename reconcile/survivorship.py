"""Golden records: one value per field per customer, from the customer's source records.

Rule (for now, the same for every field): the first non-empty value, taking sources in the configured
priority order and, within a source, the most recently updated record first.
"""
from __future__ import annotations

import json

import pandas as pd

GOLDEN_FIELDS = ("name", "given_name", "family_name", "company_name", "is_company", "email", "phone", "tax_id",
                 "street", "city", "postcode", "region", "country", "birth_date", "is_active")


def golden_records(records: pd.DataFrame, source_priority: list[str]) -> pd.DataFrame:
    """records: canonical customer records with customer_id. One row per customer_id."""
    rank = {s: i for i, s in enumerate(source_priority)}
    ordered = records.assign(
        _rank=records["source_system"].map(lambda s: rank.get(s, len(rank))),
        _updated=records["updated_at"].fillna(pd.Timestamp.min.tz_localize("UTC")),
        _key=records["source_system"] + ":" + records["source_id"],
    ).sort_values(["customer_id", "_rank", "_updated", "_key"], ascending=[True, True, False, True])
    blanks = ordered[list(GOLDEN_FIELDS)].map(lambda v: None if isinstance(v, str) and not v.strip() else v)
    golden = blanks.assign(customer_id=ordered["customer_id"]).groupby("customer_id", sort=True).first()
    keys = ordered.groupby("customer_id", sort=True)["_key"].agg(lambda s: json.dumps(sorted(s)))
    golden["source_ids"] = keys
    golden["source_count"] = ordered.groupby("customer_id", sort=True).size()
    return golden.reset_index()
