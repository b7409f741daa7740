"""Stable unified customer ids: a customer keeps its id across runs, through new records, merges and splits.

Each new cluster looks at the ids its records had before. Larger clusters choose first and take their
oldest previous id still free. A cluster with no free previous id gets a new id (a `split` event when its
records had an id before, `created` otherwise). Previous ids no cluster took are retired into the cluster
that absorbed their records (a `merged` event naming them).
"""
from __future__ import annotations

import hashlib

import pandas as pd


def new_customer_id(first_record_key: str, taken) -> str:
    digest = hashlib.sha1(first_record_key.encode()).hexdigest().upper()
    for offset in range(0, len(digest) - 12):
        candidate = f"C{digest[offset:offset + 12]}"
        if candidate not in taken:
            return candidate
    raise RuntimeError("could not derive a free customer id")  # pragma: no cover - 28 sha1 windows all taken


def assign_ids(clusters: pd.Series, record_keys: pd.Series, previous: pd.Series,
               created_at: dict[str, object], reserved: set[str] = frozenset()) -> tuple[pd.Series, list[dict]]:
    """clusters: cluster label per record; record_keys: "system:id"; previous: prior customer_id or None;
    reserved: ids in use elsewhere that a new id must not take.
    Returns the customer id per record and the events [{event, customer_id, previous_ids}]."""
    frame = pd.DataFrame({"cluster": clusters.to_numpy(), "key": record_keys.to_numpy(),
                          "previous": previous.to_numpy()})
    sizes = frame.groupby("cluster")["key"].agg(["size", "min"]).sort_values(["size", "min"], ascending=[False, True])
    prior = frame.dropna(subset=["previous"]).drop_duplicates(["cluster", "previous"])
    prior = prior.assign(_created=prior["previous"].map(lambda cid: str(created_at.get(cid, ""))))
    prior = prior.sort_values(["cluster", "_created", "previous"])
    candidates: dict = {}
    for cluster, cid in zip(prior["cluster"].to_numpy(), prior["previous"].to_numpy()):
        candidates.setdefault(cluster, []).append(cid)
    taken = set(prior["previous"])
    used: set[str] = set()
    chosen: dict = {}
    events = []
    for cluster, first_key in zip(sizes.index, sizes["min"].to_numpy()):
        ids = candidates.get(cluster, ())
        cid = next((c for c in ids if c not in used), None)
        if cid is None:
            cid = new_customer_id(first_key, _Union(taken, used, reserved))
            events.append({"event": "split" if ids else "created", "customer_id": cid, "previous_ids": list(ids)})
        chosen[cluster] = cid
        used.add(cid)
    retired = taken - used
    if retired:
        for cluster, ids in candidates.items():
            gone = sorted(set(ids) & retired)
            if gone:
                events.append({"event": "merged", "customer_id": chosen[cluster], "previous_ids": gone})
    return frame["cluster"].map(chosen).set_axis(clusters.index), events


class _Union:
    """Membership in any of several sets, without copying them."""

    def __init__(self, *sets):
        self.sets = sets

    def __contains__(self, item) -> bool:
        return any(item in s for s in self.sets)
