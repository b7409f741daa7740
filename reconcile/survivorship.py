"""Golden records: one value per field per customer, chosen from the customer's source records by the rules
of config/survivorship.yaml (source_priority, most_recent, most_complete, most_frequent), field by field or
for a group of fields taken together from one record."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconcile.settings import GOLDEN_FIELDS, SurvivorshipSettings


def _blank_to_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Blank text counts as missing; other columns keep their type."""
    out = frame.copy(deep=False)  # copy-on-write: a column is copied only when it is replaced
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            blank = out[column].astype("string").str.strip().eq("").fillna(False).to_numpy(dtype=bool)
            if blank.any():
                out[column] = out[column].mask(blank)
    return out


def _order(records: pd.DataFrame, rule: str) -> np.ndarray:
    """Row positions in the order `rule` prefers the records, per customer; source priority, then recency
    break ties. Positions, not a sorted copy: a million records sorted once per rule held every column."""
    by = {"source_priority": ["_rank", "_updated"], "most_recent": ["_updated", "_rank"],
          "most_complete": ["_filled", "_rank", "_updated"], "most_frequent": ["_rank", "_updated"]}[rule]
    ascending = {"_rank": True, "_updated": False, "_filled": False}
    keys = records[["_customer", *by, "_key"]].reset_index(drop=True)
    return keys.sort_values(["_customer", *by, "_key"], ascending=[True, *(ascending[b] for b in by), True],
                            kind="stable").index.to_numpy()


def _first_values(ordered: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    return ordered[fields].assign(_customer=ordered["_customer"]).groupby("_customer", sort=True).first()


def _most_frequent(ordered: pd.DataFrame, field: str) -> pd.Series:
    present = ordered[["_customer", field]].dropna().assign(_pos=lambda f: range(len(f)))
    if present.empty:
        return pd.Series(dtype=object)
    stats = present.groupby(["_customer", field], sort=False)["_pos"].agg(["size", "min"]).reset_index()
    best = stats.sort_values(["_customer", "size", "min"], ascending=[True, False, True]).drop_duplicates("_customer")
    return best.set_index("_customer")[field]


def _first_record(ordered: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """A group: all fields from the first record (in rule order) that has any of them."""
    has_any = ordered[fields].notna().any(axis=1)
    chosen = ordered[has_any].drop_duplicates("_customer").set_index("_customer")
    return chosen[fields]


def _source_ids(customers: np.ndarray, keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per customer code (0..n-1, all present): the JSON list of its sorted record keys, and their number.
    Joined in Arrow: a Python call per customer is too slow for a million records."""
    order = np.lexsort((keys.to_numpy(dtype=object).astype(str), customers))
    counts = np.bincount(customers, minlength=customers.max() + 1 if len(customers) else 0)
    values = pa.array(keys.to_numpy(dtype=object)[order], pa.string())
    values = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    lists = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32()), values)
    text = pc.binary_join_element_wise('["', pc.binary_join(lists, '", "'), '"]', "")
    return text.to_numpy(zero_copy_only=False).astype(object), counts


def golden_records(records: pd.DataFrame, rules: SurvivorshipSettings) -> pd.DataFrame:
    """records: canonical customer records with customer_id. One row per customer_id."""
    rank = {s: i for i, s in enumerate(rules.source_priority)}
    values = _blank_to_none(records[list(GOLDEN_FIELDS)])
    # Customers as integer codes in id order: sorting and grouping a million text ids is slow.
    codes, ids = pd.factorize(records["customer_id"].to_numpy(dtype=object), sort=True)
    prepared = values.assign(
        _customer=codes,
        _rank=records["source_system"].map(lambda s: rank.get(s, len(rank))).to_numpy(),
        _updated=records["updated_at"].fillna(pd.Timestamp.min.tz_localize("UTC")).to_numpy(),
        _filled=values.notna().sum(axis=1).to_numpy(),
        _key=(records["source_system"] + ":" + records["source_id"]).to_numpy(),
    )
    customers = pd.RangeIndex(len(ids), name="_customer")
    golden = pd.DataFrame(index=customers)
    orders: dict[str, np.ndarray] = {}

    def ordered(rule: str, fields: list[str]) -> pd.DataFrame:
        """The customer code and `fields` of the records, in the order `rule` prefers them."""
        if rule not in orders:
            orders[rule] = _order(prepared, rule)
        return prepared[["_customer", *fields]].take(orders[rule])

    grouped = set()
    for group in rules.groups.values():
        golden[group.fields] = _first_record(ordered(group.rule, group.fields), group.fields).reindex(customers)
        grouped.update(group.fields)
    for field in GOLDEN_FIELDS:
        if field in grouped:
            continue
        rule = rules.rule_of(field)
        golden[field] = (_most_frequent(ordered(rule, [field]), field) if rule == "most_frequent"
                         else _first_values(ordered(rule, [field]), [field])[field]).reindex(customers)
    for field in GOLDEN_FIELDS:  # each field keeps the type it had in the records (dates stay dates)
        try:
            golden[field] = golden[field].astype(values[field].dtype)
        except (TypeError, ValueError):
            pass
    golden["source_ids"], golden["source_count"] = _source_ids(prepared["_customer"].to_numpy(), prepared["_key"])
    golden.insert(0, "customer_id", ids)
    return golden[["customer_id", *GOLDEN_FIELDS, "source_ids", "source_count"]].reset_index(drop=True)
