"""resolve(): canonical customer records (+ what the previous run left) → crosswalk, golden records, events,
scored pairs and the review queue.

Order of work: normalise; deterministic rules; probabilistic scores for candidate pairs (only pairs that
involve a new or changed record when the previous run's pairs are at hand); union-find over the links in
the order deterministic rules, reviewed-and-accepted pairs, automatic probabilistic pairs by score, under
the never-merge constraints (two tax ids; a rejected review); stable ids; survivorship.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import msgspec
import numpy as np
import pandas as pd

from reconcile import probabilistic
from reconcile.identity import assign_ids
from reconcile.normalize import normalise_records
from reconcile.rules import Clusters, find_links
from reconcile.settings import ReconcileSettings
from reconcile.survivorship import golden_records

FINGERPRINT_FIELDS = ("name", "given_name", "family_name", "company_name", "is_company", "email", "phone", "tax_id",
                      "street", "city", "postcode", "region", "country", "birth_date", "is_active", "updated_at")


@dataclass
class Previous:
    """What earlier runs left: the crosswalk (with each record's fingerprint), the scored pairs and the
    model they were scored with, the customers' creation times and the reviewers' decisions. With the
    previous golden records too, only the customers a change can touch are clustered and rebuilt; with the
    previous normalised records, only new and changed records are normalised (`ReconcileResult.customers`
    and `.normalised` are what to pass)."""
    crosswalk: pd.DataFrame | None = None  # source_system, source_id, customer_id[, fingerprint, ...]
    pairs: pd.DataFrame | None = None  # left, right, match_probability, match_weight, fields
    model_fingerprint: str | None = None
    created_at: dict[str, object] = field(default_factory=dict)
    decisions: pd.DataFrame | None = None  # left, right, decision (accepted | rejected), decided_by
    customers: pd.DataFrame | None = None  # golden records
    normalised: pd.DataFrame | None = None  # records with their n_* columns, unique_id and fingerprint

    @cached_property
    def keyed_crosswalk(self) -> pd.DataFrame | None:
        """The crosswalk indexed by "system:id" (built once: it is read in several places)."""
        if self.crosswalk is None:
            return None
        return self.crosswalk.set_index(_keys(self.crosswalk).astype(object))


@dataclass
class ReconcileResult:
    crosswalk: pd.DataFrame  # source_system, source_id, customer_id, match_rule, match_band, match_score,
    #                          explanation, fingerprint
    customers: pd.DataFrame  # golden records: customer_id, fields, source_ids, source_count
    events: list[dict] = field(default_factory=list)
    refused_links: int = 0  # links a never-merge constraint refused
    pairs: pd.DataFrame | None = None  # every scored pair at or above review_at, for the next run
    reviews: pd.DataFrame | None = None  # pairs waiting for a person: left, right, match_probability, fields
    model_fingerprint: str | None = None
    scored_records: int = 0  # records whose pairs were scored in this run (all of them on a full run)
    normalised: pd.DataFrame | None = None
    rebuilt_records: int = 0  # records clustered again in this run (all of them without the previous state)


def fingerprint(records: pd.DataFrame) -> pd.Series:
    """A hash of each record's canonical fields: a record whose fingerprint changed is linked again."""
    present = [f for f in FINGERPRINT_FIELDS if f in records]
    try:
        hashed = pd.util.hash_pandas_object(records[present], index=False)
    except TypeError:  # values pandas cannot hash as they are (mixed objects): hash their text
        values = records[present].astype(object).where(records[present].notna(), None).astype(str)
        hashed = pd.util.hash_pandas_object(values, index=False)
    return hashed.map("{:016x}".format)


def _keys(frame: pd.DataFrame) -> pd.Series:
    return frame["source_system"].astype(str) + ":" + frame["source_id"].astype(str)


def _normalised(records: pd.DataFrame, previous: Previous, region: str) -> tuple[pd.DataFrame, pd.Series]:
    """The records with their comparison columns (in no particular order), and the keys of the new or
    changed ones. Rows of the previous run whose fingerprint is unchanged are reused, not normalised again."""
    records = records.reset_index(drop=True)
    keys, prints = _keys(records).astype(object), fingerprint(records)
    if previous.normalised is not None:
        before = previous.normalised.set_index("unique_id")["fingerprint"]
    elif previous.crosswalk is not None and "fingerprint" in previous.crosswalk:
        before = previous.keyed_crosswalk["fingerprint"]
    else:
        before = pd.Series(dtype=object)
    same = (keys.map(before) == prints).to_numpy()
    if previous.normalised is not None and same.any():
        kept = previous.normalised["unique_id"].isin(pd.Index(keys[same]))
        reused = previous.normalised[kept.to_numpy()]
        fresh = normalise_records(records[~same], region).assign(unique_id=keys[~same], fingerprint=prints[~same])
        frame = pd.concat([reused, fresh[reused.columns]], ignore_index=True) if len(fresh) else reused
    else:
        frame = normalise_records(records, region).assign(unique_id=keys, fingerprint=prints)
    return frame.reset_index(drop=True), keys[~same]


def _score(frame: pd.DataFrame, changed: pd.Series, settings: ReconcileSettings, previous: Previous,
           model: dict | None) -> tuple[pd.DataFrame, str | None, int]:
    prob = settings.matching.probabilistic
    if prob is None or not prob.enabled:
        return pd.DataFrame(columns=probabilistic.PAIR_COLUMNS), None, 0
    model = model if model is not None else probabilistic.load_model(prob)
    # Pairs scored before are reused only under the same settings, model and size class (the prior).
    model_fingerprint = hashlib.sha1(json.dumps([prob.model_dump(), model, probabilistic.size_class(len(frame))],
                                                sort_keys=True, default=str).encode()).hexdigest()[:16]
    reusable = (previous.pairs is not None and previous.crosswalk is not None and "fingerprint" in previous.crosswalk
                and previous.model_fingerprint == model_fingerprint)
    if not reusable:
        return probabilistic.score_pairs(frame, prob, model), model_fingerprint, len(frame)
    ids, changed = pd.Index(frame["unique_id"]), pd.Index(changed)
    left, right = previous.pairs["left"].astype(object), previous.pairs["right"].astype(object)
    kept = previous.pairs[(left.isin(ids) & right.isin(ids) & ~left.isin(changed) & ~right.isin(changed)).to_numpy()]
    new = probabilistic.score_pairs(frame, prob, model, new_ids=changed)
    pairs = pd.concat([kept, new], ignore_index=True) if len(new) else kept.reset_index(drop=True)
    return pairs, model_fingerprint, len(changed)


KEY_COLUMNS = ("n_tax_id", "n_email", "n_phone")


def _scope(frame: pd.DataFrame, changed: pd.Series, previous: Previous, pairs: pd.DataFrame,
           decided: list[str]) -> np.ndarray | None:
    """The records a change can affect, or None for all. Starting from the new, changed and removed records
    (and those a person decided on), it takes in whole previous customers, records sharing a key (tax id,
    email, phone) and partners in scored pairs, until nothing more comes in. Outside it, every link, id and
    golden record stays as it was."""
    if previous.customers is None or previous.crosswalk is None:
        return None
    # Integer codes and numpy masks: membership tests on a million text keys are too slow otherwise.
    ids = pd.Index(frame["unique_id"].astype(object))
    before = previous.keyed_crosswalk["customer_id"].astype(object)
    customer_codes, _ = pd.factorize(ids.map(before).to_numpy())
    key_codes = [pd.factorize(frame[column].astype(object).to_numpy())[0] for column in KEY_COLUMNS]
    left = ids.get_indexer(pairs["left"].astype(object))
    right = ids.get_indexer(pairs["right"].astype(object))
    both = (left >= 0) & (right >= 0)
    left, right = left[both], right[both]
    inside = ids.isin(pd.Index(changed.astype(object)).append(pd.Index(decided, dtype=object)))
    removed = before.index.difference(ids)
    gone_customers = set(before.loc[removed])
    inside |= ids.map(before).isin(gone_customers) if gone_customers else False
    for _ in range(20):
        grown = inside.copy()
        for codes in (customer_codes, *key_codes):
            chosen = np.unique(codes[grown])
            grown |= np.isin(codes, chosen[chosen >= 0])
        touching = grown[left] | grown[right]
        grown[left[touching]] = True
        grown[right[touching]] = True
        if (grown == inside).all():
            return inside
        inside = grown
    return None  # a change that reaches this far is cheaper to rebuild in full


def resolve(records: pd.DataFrame, previous: Previous | None = None, settings: ReconcileSettings | None = None,
            model: dict | None = None) -> ReconcileResult:
    settings = settings or ReconcileSettings()
    previous = previous or Previous()
    everything, changed = _normalised(records, previous, settings.matching.default_phone_region)
    pairs, model_fingerprint, scored = _score(everything, changed, settings, previous, model)
    decided = [] if previous.decisions is None else list(previous.decisions["left"]) + list(previous.decisions["right"])
    scope = _scope(everything, changed, previous, pairs, decided)
    # Clustering works in key order, so that a partial rebuild takes the same decisions as a full one.
    frame = (everything if scope is None else everything[scope]).sort_values("unique_id").reset_index(drop=True)
    position = dict(zip(frame["unique_id"], frame.index))
    decisions = _decisions(previous.decisions, position)
    clusters, explanation, reviews = _link(frame, pairs, decisions, position, settings.matching)

    previous_ids = pd.Series([None] * len(frame), dtype=object)
    if previous.crosswalk is not None and not previous.crosswalk.empty:
        previous_ids = frame["unique_id"].map(previous.keyed_crosswalk["customer_id"]).astype(object)
    outside_ids = set() if scope is None else set(previous.crosswalk["customer_id"]) - set(previous_ids.dropna())
    labels = pd.Series([clusters.find(i) for i in range(len(frame))])
    frame["customer_id"], events = assign_ids(labels, frame["unique_id"], previous_ids, previous.created_at,
                                              reserved=outside_ids)
    crosswalk = _crosswalk(frame, explanation, reviews)
    # The golden record carries contact values in their normalised form (E.164 phone, lower-case email);
    # a value that does not normalise is kept as it came, for the unified-customer gate to judge.
    golden_input = frame.copy()
    for raw, normalised in (("email", "n_email"), ("phone", "n_phone"), ("tax_id", "n_tax_id")):
        golden_input[raw] = frame[normalised].where(frame[normalised].notna(), frame[raw])
    customers = golden_records(golden_input, settings.survivorship)
    if scope is not None:  # what lies outside the scope is carried over as it was
        kept = previous.crosswalk[previous.keyed_crosswalk.index.isin(
            pd.Index(everything["unique_id"][~scope].astype(object)))]
        crosswalk = pd.concat([kept[crosswalk.columns], crosswalk], ignore_index=True)
        unchanged = previous.customers["customer_id"].astype(object).isin(pd.Index(list(outside_ids), dtype=object))
        customers = pd.concat([previous.customers[unchanged][customers.columns], customers], ignore_index=True)
        prob = settings.matching.probabilistic
        reviews = _open_reviews(pairs, crosswalk, decisions, prob.auto_merge_at if prob else 0.0)
    return ReconcileResult(crosswalk, customers, events, clusters.refused, pairs.reset_index(drop=True), reviews,
                           model_fingerprint, scored, everything, len(frame))


def _link(frame: pd.DataFrame, pairs: pd.DataFrame, decisions: dict, position: dict, matching
          ) -> tuple[Clusters, dict[int, dict], pd.DataFrame]:
    """Union-find over the links, in order: deterministic rules, accepted reviews, automatic probabilistic
    pairs by score; under the never-merge constraints. Returns the clusters, each attached record's
    explanation, and the review-band pairs whose records stay apart."""
    apart = [(position[a], position[b]) for (a, b), d in decisions.items() if d["decision"] == "rejected"]
    clusters = Clusters(frame["n_tax_id"].tolist(), apart)
    attached: dict[int, tuple[dict | tuple, int]] = {}  # record → (evidence, record on the other end)

    def attach(left: int, right: int, evidence: dict | tuple) -> None:
        if clusters.union(left, right):
            # Each record keeps the first link that attached it and the record on the other end.
            if right not in attached:
                attached[right] = (evidence, left)
            if left not in attached:
                attached[left] = (evidence, right)

    for link in find_links(frame, tuple(matching.rules), matching.name_similarity):
        attach(link.left, link.right, {"rule": link.rule, "band": "auto", "score": 1.0, **link.evidence})
    inside = pd.Index(list(position), dtype=object)
    local = pairs[pairs["left"].astype(object).isin(inside) & pairs["right"].astype(object).isin(inside)]
    local = local.sort_values(["match_probability", "left", "right"], ascending=[False, True, True])
    # A person's decision stands whether or not the pair is still scored in the review band.
    for (a, b), decision in sorted(decisions.items()):
        if decision["decision"] == "accepted":
            attach(position[a], position[b], {
                "rule": "review_accepted", "band": "reviewed", "score": decision.get("match_probability"),
                "fields": decision.get("fields"), "decided_by": decision.get("decided_by")})
    undecided = local[_mask([(a, b) not in decisions for a, b in zip(local["left"], local["right"])])]
    prob = matching.probabilistic
    automatic = undecided[undecided["match_probability"] >= prob.auto_merge_at] if prob else undecided.iloc[:0]
    for pair in automatic.itertuples(index=False):  # evidence built only for the links that attach
        attach(position[pair.left], position[pair.right], (pair, "probabilistic", "auto"))
    # A pair in the review band waits for a person only while its records are still apart.
    band = undecided.drop(automatic.index)
    reviews = band[_mask([clusters.find(position[a]) != clusters.find(position[b])
                          for a, b in zip(band["left"], band["right"])])].reset_index(drop=True)
    unique_ids = frame["unique_id"].tolist()
    explanation = {pos: {**(_evidence(*evidence) if isinstance(evidence, tuple) else evidence),
                         "matched_with": unique_ids[other]} for pos, (evidence, other) in attached.items()}
    return clusters, explanation, reviews


def _open_reviews(pairs: pd.DataFrame, crosswalk: pd.DataFrame, decisions: dict, auto_merge_at: float) -> pd.DataFrame:
    """Undecided review-band pairs whose records are in different customers, over the whole set."""
    customer_of = crosswalk.set_index(_keys(crosswalk))["customer_id"]
    band = pairs[pairs["match_probability"] < auto_merge_at]
    apart = band["left"].map(customer_of).to_numpy() != band["right"].map(customer_of).to_numpy()
    band = band[apart & _mask([(a, b) not in decisions for a, b in zip(band["left"], band["right"])])]
    return band.sort_values(["match_probability", "left", "right"], ascending=[False, True, True]).reset_index(drop=True)


def _mask(values: list[bool]) -> np.ndarray:
    return np.array(values, dtype=bool)  # a plain empty list would select columns, not rows


def _decisions(decisions: pd.DataFrame | None, position: dict) -> dict[tuple[str, str], dict]:
    if decisions is None or decisions.empty:
        return {}
    out = {}
    for row in decisions.to_dict("records"):
        a, b = sorted((row["left"], row["right"]))
        if a in position and b in position and row["decision"] in ("accepted", "rejected"):
            out[(a, b)] = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
    return out


def _evidence(pair, rule: str, band: str, **extra) -> dict:
    fields = json.loads(pair.fields) if isinstance(pair.fields, str) else pair.fields
    return {"rule": rule, "band": band, "score": round(float(pair.match_probability), 6),
            "match_weight": round(float(pair.match_weight), 2), "fields": fields,
            **{k: v for k, v in extra.items() if v is not None}}


_SEPARATE = {"rule": "no_match", "band": "separate", "score": 0.0}
_encode = msgspec.json.Encoder().encode  # several times faster than json.dumps, a million times a run


def _crosswalk(frame: pd.DataFrame, explanation: dict[int, dict], reviews: pd.DataFrame) -> pd.DataFrame:
    waiting: dict[str, dict] = {}
    for pair in reviews.itertuples(index=False):  # best pending pair per record, highest score first
        for this, other in ((pair.left, pair.right), (pair.right, pair.left)):
            if this not in waiting:
                waiting[this] = {**_evidence(pair, "review_pending", "review"), "matched_with": other}
    # A record attached by a link takes that link's band; otherwise its best pending review; else separate.
    rows = [explanation.get(i) or waiting.get(key) or _SEPARATE
            for i, key in enumerate(frame["unique_id"].to_numpy(dtype=object))]
    return pd.DataFrame({
        "source_system": frame["source_system"], "source_id": frame["source_id"],
        "customer_id": frame["customer_id"],
        "match_rule": [r["rule"] for r in rows], "match_band": [r["band"] for r in rows],
        "match_score": [r["score"] for r in rows],
        "explanation": [_encode(r).decode() for r in rows],
        "fingerprint": frame["fingerprint"],
    })
