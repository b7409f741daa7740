"""Which profiles a run recomputes: every one, or only those its changes reach.

A profile depends on its customer's golden record and member records, on those members' documents, and on what
every profile depends on: as_of, the enrichment settings, the FX rates and the profile format (its `basis`).

A run recomputes every profile when it is a full refresh, when the basis changed (a nightly run's new as_of),
when there are none yet, or when a staging gate since the last enrich did not record which customers its document
changes reach. Otherwise it recomputes only the profiles of
- customers without a profile yet, and those whose golden record or members changed (`customer_hashes`);
- customers owning a document a staging gate changed or removed since the last enrich, before or after the change
  (`changed_owners`: written by the gate, deleted by the enrich that took them in).
The segment `most_valuable` ranks every customer by net value: the stored profiles whose place crosses the line
after the recomputed ones moved have their segment recomputed too (`rerank`). Profiles of customers now gone or
held are removed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from enrich.profiles import PROFILE_FORMAT
from enrich.settings import EnrichmentSettings
from enrich.value import assign_segments, most_valuable_ids
from erp2crm.profile_json import profile_from_text
from hub import HubStore

# The customer columns a profile is built from (enrich.profiles.GOLDEN_COLUMNS, and those the push adds).
CUSTOMER_COLUMNS = ["customer_id", "name", "company_name", "email", "phone", "tax_id", "city", "country", "is_company",
                    "street", "postcode", "source_ids"]
SEGMENT_INPUTS = ["customer_id", "net_value", "revenue_12m", "revenue_prev_12m", "tenure_days"]


def basis(settings: EnrichmentSettings, fx_rates: pd.DataFrame, as_of: datetime) -> str:
    """The hash of what every profile depends on besides its own customer and documents."""
    parts = [str(PROFILE_FORMAT), settings.model_dump_json(), fx_rates.to_csv(index=False), pd.Timestamp(as_of).isoformat()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def customer_hashes(customers: pd.DataFrame) -> pd.Series:
    """Per customer (indexed like `customers`), a hash of the customer columns its profile is built from."""
    columns = customers[CUSTOMER_COLUMNS]
    present = columns.notna().add_suffix(" present")  # so that a null and the text "None" differ
    text = columns.astype(object).where(present.to_numpy(), "").astype(str)
    return pd.util.hash_pandas_object(pd.concat([text, present], axis=1), index=False).map("{:016x}".format)


@dataclass
class Scope:
    customer_ids: pd.Index | None  # the customers to recompute; None: every one
    stale: list[str]               # customers whose stored profile goes: gone, or held by the customer gate
    why: str                       # for the run's counts
    runs: set[str]                 # the runs whose recorded changes this recompute takes in


def scope(hub: HubStore, run_id: str, customers: pd.DataFrame, hashes: pd.Series, current_basis: str,
          crosswalk: pd.DataFrame) -> Scope:
    """What this run recomputes, of `customers` (those not held) with their `customer_hashes` and the `crosswalk`
    (source_system, source_id, customer_id). The changes recorded by every run since the last enrich count: a run
    that failed after its staging gate, or a quarantine replay, left documents changed whose profiles this run
    recomputes."""
    stored = hub.read_table("profiles", ["customer_id", "basis", "customer_hash"])
    stale = sorted(set(stored["customer_id"]) - set(customers["customer_id"]))
    pending = hub.read_table("changed_owners")
    runs = set(pending["run_id"])
    if (hub.run(run_id) or {}).get("full_refresh"):
        return Scope(None, stale, "full refresh", runs)
    if stored.empty:
        return Scope(None, stale, "no profiles yet", runs)
    if not stored["basis"].eq(current_basis).all():
        return Scope(None, stale, "as_of, enrichment settings, FX rates or profile format changed", runs)
    if pending["entity"].eq("*").any():
        return Scope(None, stale, "a run's staging gate did not record which customers its changes reach", runs)
    known = dict(zip(stored["customer_id"], stored["customer_hash"]))
    changed = customers["customer_id"][[known.get(c) != h for c, h in zip(customers["customer_id"], hashes)]]
    reached = crosswalk.merge(_changed_records(hub, pending), on=["source_system", "source_id"])["customer_id"]
    ids = pd.Index(pd.concat([changed, reached]).unique(), dtype=object)
    return Scope(ids[ids.isin(customers["customer_id"])], stale, "changed customers only", runs)


def _changed_records(hub: HubStore, owners: pd.DataFrame) -> pd.DataFrame:
    """The customer records (source_system, source_id) owning the changed documents of `owners` (changed_owners
    rows): an order line's owner is its order, whose customer record is read from the hub."""
    lines = owners["entity"].eq("order_line")
    orders = hub.read_entity("order", ["source_system", "customer_source_id"],
                             where=("source_id", owners[lines].rename(columns={"owner_id": "source_id"})))
    records = pd.concat([owners.loc[~lines, ["source_system", "owner_id"]].rename(columns={"owner_id": "source_id"}),
                         orders.rename(columns={"customer_source_id": "source_id"})])
    return records.astype(object).drop_duplicates()


def rerank(hub: HubStore, fresh: pd.DataFrame, settings: EnrichmentSettings, scope: Scope) -> list[dict]:
    """Set the segments of the `fresh` profiles against every customer's net value, and return the stored
    profiles (as dicts) whose segment the new ranking changes, with that segment."""
    stored = hub.read_table("profiles", ["customer_id", "net_value", "segment"])
    others = stored[~stored["customer_id"].isin(fresh["customer_id"]) & ~stored["customer_id"].isin(scope.stale)]
    top = most_valuable_ids(pd.concat([others[["customer_id", "net_value"]], fresh[["customer_id", "net_value"]]]),
                            settings)
    assign_segments(fresh, settings, top)
    crossing = others.loc[others["segment"].eq("most_valuable") != others["customer_id"].isin(top), "customer_id"]
    if crossing.empty:
        return []
    profiles = [profile_from_text(p) for p in hub.read_keyed("profiles", ["customer_id", "profile"], "customer_id",
                                                        list(crossing))["profile"]]
    inputs = pd.DataFrame({c: [p.get(c) for p in profiles] for c in SEGMENT_INPUTS})
    inputs = inputs.astype({c: "float64" for c in SEGMENT_INPUTS[1:]})
    assign_segments(inputs, settings, top)
    for profile, segment in zip(profiles, inputs["segment"]):
        profile["segment"] = segment
    return profiles
