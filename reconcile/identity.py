"""Stable unified customer ids: a customer keeps its id across runs, through new records, merges and splits.

Each new cluster looks at the ids its records had before. Larger clusters choose first and take their
oldest previous id still free. A cluster with no free previous id gets a new id (a `split` event when its
records had an id before, `created` otherwise). Previous ids no cluster took are retired into the cluster
that absorbed their records (a `merged` event naming them).
"""
from __future__ import annotations

import hashlib

import pandas as pd


def new_customer_id(first_record_key: str, taken: set[str]) -> str:
    digest = hashlib.sha1(first_record_key.encode()).hexdigest().upper()
    for offset in range(0, len(digest) - 12):
        candidate = f"C{digest[offset:offset + 12]}"
        if candidate not in taken:
            return candidate
    raise RuntimeError("could not derive a free customer id")  # pragma: no cover - 28 sha1 windows all taken


def assign_ids(clusters: pd.Series, record_keys: pd.Series, previous: pd.Series,
               created_at: dict[str, object]) -> tuple[pd.Series, list[dict]]:
    """clusters: cluster label per record; record_keys: "system:id"; previous: prior customer_id or None.
    Returns the customer id per record and the events [{event, customer_id, previous_ids}]."""
    frame = pd.DataFrame({"cluster": clusters.values, "key": record_keys.values, "previous": previous.values})
    sizes = frame.groupby("cluster")["key"].agg(["size", "min"]).sort_values(["size", "min"], ascending=[False, True])
    candidates = frame.dropna(subset=["previous"]).groupby("cluster")["previous"].agg(lambda s: sorted(set(s)))
    taken = set(frame["previous"].dropna())
    used: set[str] = set()
    chosen: dict = {}
    events = []
    for cluster, row in sizes.iterrows():
        prior = sorted(candidates.get(cluster, []), key=lambda cid: (str(created_at.get(cid, "")), cid))
        free = [cid for cid in prior if cid not in used]
        if free:
            chosen[cluster] = free[0]
        else:
            chosen[cluster] = new_customer_id(row["min"], taken | used)
            events.append({"event": "split" if prior else "created", "customer_id": chosen[cluster], "previous_ids": prior})
        used.add(chosen[cluster])
    retired = taken - used
    for cluster, prior in candidates.items():
        gone = sorted(set(prior) & retired)
        if gone:
            events.append({"event": "merged", "customer_id": chosen[cluster], "previous_ids": gone})
    return frame["cluster"].map(chosen).set_axis(clusters.index), events
