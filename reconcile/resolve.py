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

import msgspec
import numpy as np
import pandas as pd

from reconcile import probabilistic
from reconcile.identity import assign_ids
from reconcile.normalize import NORMAL_FORM_COLUMNS, normalise_records
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
    normalised: pd.DataFrame | None = None  # records with their n_* columns, unique_id and fingerprint; or only
    #                                         those (the hub's normal forms), the rest taken from the records


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
    renormalised: np.ndarray | None = None  # mask of the `normalised` rows normalised in this run (the rest reused)


def fingerprint(records: pd.DataFrame) -> pd.Series:
    """A hash of each record's canonical fields: a record whose fingerprint changed is linked again.
    DuckDB hashes a million records in a quarter of a second, on every core (pandas takes 1.4 s). Its hash
    may change with a DuckDB release: every record then counts as changed once, and the run relinks all."""
    import duckdb
    import pyarrow as pa

    present = [f for f in FINGERPRINT_FIELDS if f in records]
    try:
        table = pa.Table.from_pandas(records[present], preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects in a column: hash their text
        values = records[present].astype(object)
        table = pa.Table.from_pandas(values.where(values.notna(), None).astype(str), preserve_index=False)
    columns = ", ".join(f'"{c}"' for c in present)
    with duckdb.connect() as con:
        con.register("records", table)
        hashed = con.sql(f"SELECT printf('%016x', hash({columns})) FROM records").to_arrow_table()
    return pd.Series(hashed.column(0).to_numpy(zero_copy_only=False), index=records.index, dtype=object)


def _keys(frame: pd.DataFrame) -> pd.Series:
    return frame["source_system"].astype(str) + ":" + frame["source_id"].astype(str)


class _Rows:
    """Record keys → row numbers of the normalised records, through one hash table built once. Each pandas
    isin or map on text keys builds a table of its own: ~0.4 s a call at a million records, and an
    incremental run needs about twenty such lookups."""

    def __init__(self, unique_ids: pd.Series):
        self.index = pd.Index(unique_ids.to_numpy(dtype=object))

    def __len__(self) -> int:
        return len(self.index)

    def of(self, keys) -> np.ndarray:
        """Row of each key; -1 for a key not among the records."""
        return self.index.get_indexer(pd.Index(np.asarray(keys, dtype=object)))


@dataclass
class _Before:
    """The previous crosswalk laid over the current rows: each row's previous customer as an integer code
    into `ids`, each crosswalk row's current row, and the customers that lost records."""
    code: np.ndarray  # customer code per row, -1 for a new record
    ids: np.ndarray  # the previous customer ids, one per code
    row: np.ndarray  # row per crosswalk row, -1 for a record no longer here
    gone_codes: np.ndarray  # customers that lost a record

    @classmethod
    def of(cls, previous: Previous, rows: _Rows) -> "_Before | None":
        if previous.crosswalk is None:
            return None
        position = rows.of(_keys(previous.crosswalk))
        present = position >= 0
        codes, ids = pd.factorize(previous.crosswalk["customer_id"].astype(object))
        code = np.full(len(rows), -1, dtype=np.int64)
        code[position[present]] = codes[present]
        return cls(code, np.asarray(ids, dtype=object), position, np.unique(codes[~present]))

    def customer_ids(self, at: np.ndarray) -> pd.Series:
        """Previous customer id of the rows `at` (None for new records)."""
        return pd.Series(np.append(self.ids, None)[self.code[at]], dtype=object)  # code -1 reads the None


def _normalised(records: pd.DataFrame, previous: Previous, region: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The records with their comparison columns (in no particular order), a mask of the new or changed ones
    (to score) and a mask of the rows normalised in this run. Rows of the previous run whose fingerprint is
    unchanged are reused, not normalised again: whole rows of the previous result, or (from the hub) only
    their normal forms, with this run's records."""
    records = records.reset_index(drop=True)
    keys, prints = _keys(records).astype(object), fingerprint(records)
    reused = previous.normalised
    if reused is not None:
        ids_before, prints_before = reused["unique_id"], reused["fingerprint"]
    elif previous.crosswalk is not None and "fingerprint" in previous.crosswalk:
        ids_before, prints_before = _keys(previous.crosswalk), previous.crosswalk["fingerprint"]
    else:
        frame = normalise_records(records, region).assign(unique_id=keys, fingerprint=prints)
        return frame, np.ones(len(frame), dtype=bool), np.ones(len(frame), dtype=bool)
    position = pd.Index(ids_before.to_numpy(dtype=object)).get_indexer(keys)
    prints_before = np.append(prints_before.to_numpy(dtype=object), None)  # position -1 reads the None
    same = prints_before[position] == prints.to_numpy(dtype=object)
    if reused is None or not same.any():
        frame = normalise_records(records, region).assign(unique_id=keys, fingerprint=prints)
        return frame, ~same, np.ones(len(frame), dtype=bool)
    if "source_system" not in reused:  # normal forms only: the rest of each row is the record as it is now
        at = position[same]
        reused = records[same].reset_index(drop=True).assign(
            unique_id=keys[same].to_numpy(), fingerprint=prints[same].to_numpy(),
            **{column: reused[column].to_numpy(dtype=object)[at] for column in NORMAL_FORM_COLUMNS})
    else:
        kept = np.zeros(len(reused), dtype=bool)
        kept[position[same]] = True
        reused = (reused if kept.all() else reused[kept]).reset_index(drop=True)
    if same.all():
        return reused, np.zeros(len(reused), dtype=bool), np.zeros(len(reused), dtype=bool)
    fresh = normalise_records(records[~same], region).assign(unique_id=keys[~same], fingerprint=prints[~same])
    frame = pd.concat([reused, fresh[reused.columns]], ignore_index=True)
    new = np.arange(len(frame)) >= len(reused)
    return frame, new, new


def _score(frame: pd.DataFrame, changed: np.ndarray, rows: _Rows, settings: ReconcileSettings,
           previous: Previous, model: dict | None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str | None, int]:
    """Scored pairs with the row of their left and right record, the model fingerprint and the number of
    records scored."""
    prob = settings.matching.probabilistic
    if prob is None or not prob.enabled:
        none = np.zeros(0, dtype=np.int64)
        return pd.DataFrame(columns=probabilistic.PAIR_COLUMNS), none, none, None, 0
    model = model if model is not None else probabilistic.load_model(prob)
    # Pairs scored before are reused only under the same settings, model and size class (the prior).
    scoring = prob.model_dump(exclude={"memory_limit"})  # how much memory DuckDB may use changes no score
    model_fingerprint = hashlib.sha1(json.dumps([scoring, model, probabilistic.size_class(len(frame))],
                                                sort_keys=True, default=str).encode()).hexdigest()[:16]
    reusable = (previous.pairs is not None and previous.crosswalk is not None and "fingerprint" in previous.crosswalk
                and previous.model_fingerprint == model_fingerprint)
    if not reusable:
        pairs = probabilistic.score_pairs(frame, prob, model)
        return pairs, rows.of(pairs["left"]), rows.of(pairs["right"]), model_fingerprint, len(frame)
    left, right = rows.of(previous.pairs["left"]), rows.of(previous.pairs["right"])
    kept = (left >= 0) & (right >= 0)
    kept[kept] = ~changed[left[kept]] & ~changed[right[kept]]
    new = probabilistic.score_pairs(frame, prob, model, is_new=changed)
    pairs = pd.concat([previous.pairs[kept], new], ignore_index=True) if len(new) else \
        previous.pairs[kept].reset_index(drop=True)
    return (pairs, np.concatenate([left[kept], rows.of(new["left"])]),
            np.concatenate([right[kept], rows.of(new["right"])]), model_fingerprint, int(changed.sum()))


KEY_COLUMNS = ("n_tax_id", "n_email", "n_phone")


def _scope(frame: pd.DataFrame, changed: np.ndarray, before: _Before | None, has_customers: bool,
           left: np.ndarray, right: np.ndarray, decided: np.ndarray) -> np.ndarray | None:
    """The rows a change can affect, or None for all. Starting from the new, changed and removed records
    (and those a person decided on), it takes in whole previous customers, records sharing a key (tax id,
    email, phone) and partners in scored pairs, until nothing more comes in. Outside it, every link, id and
    golden record stays as it was."""
    if before is None or not has_customers:
        return None
    key_codes = [pd.factorize(frame[column].astype(object).to_numpy())[0] for column in KEY_COLUMNS]
    inside = changed.copy()
    inside[decided[decided >= 0]] = True
    inside |= np.isin(before.code, before.gone_codes)  # the rest of a customer that lost records
    for _ in range(20):
        grown = inside.copy()
        for codes in (before.code, *key_codes):
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
    everything, changed, renormalised = _normalised(records, previous, settings.matching.default_phone_region)
    rows = _Rows(everything["unique_id"])
    pairs, left, right, model_fingerprint, scored = _score(everything, changed, rows, settings, previous, model)
    decided = np.zeros(0, dtype=np.int64) if previous.decisions is None else \
        rows.of(pd.concat([previous.decisions["left"], previous.decisions["right"]]))
    before = _Before.of(previous, rows)
    scope = _scope(everything, changed, before, previous.customers is not None, left, right, decided)
    # Clustering works in key order, so that a partial rebuild takes the same decisions as a full one.
    chosen = np.arange(len(everything)) if scope is None else np.flatnonzero(scope)
    chosen = chosen[np.argsort(everything["unique_id"].to_numpy(dtype=object)[chosen], kind="stable")]
    frame = everything.take(chosen).reset_index(drop=True)
    row_in_frame = np.full(len(everything), -1, dtype=np.int64)
    row_in_frame[chosen] = np.arange(len(chosen))
    position = dict(zip(frame["unique_id"], frame.index))
    decisions = _decisions(previous.decisions, position)
    clusters, explanation, reviews = _link(frame, pairs, row_in_frame[left], row_in_frame[right], decisions,
                                           position, settings.matching)

    previous_ids = pd.Series([None] * len(frame), dtype=object)
    if before is not None:
        previous_ids = before.customer_ids(chosen)
    # A new id must not take one that customers outside the scope keep (or that the rebuilt ones had).
    taken = pd.Index([]) if scope is None else pd.Index(before.ids)
    labels = pd.Series([clusters.find(i) for i in range(len(frame))])
    frame["customer_id"], events = assign_ids(labels, frame["unique_id"], previous_ids, previous.created_at,
                                              reserved=taken)
    crosswalk = _crosswalk(frame, explanation, reviews)
    # The golden record carries contact values in their normalised form (E.164 phone, lower-case email);
    # a value that does not normalise is kept as it came, for the unified-customer gate to judge.
    customers = golden_records(frame.assign(**{
        raw: frame[normalised].where(frame[normalised].notna(), frame[raw])
        for raw, normalised in (("email", "n_email"), ("phone", "n_phone"), ("tax_id", "n_tax_id"))}),
        settings.survivorship)
    if scope is not None:  # what lies outside the scope is carried over as it was
        outside = before.row >= 0
        outside[outside] = ~scope[before.row[outside]]
        crosswalk = pd.concat([previous.crosswalk[outside][crosswalk.columns], crosswalk], ignore_index=True)
        rebuilt = pd.Index(list(set(previous_ids.dropna()) | set(before.ids[before.gone_codes])), dtype=object)
        unchanged = ~previous.customers["customer_id"].astype(object).isin(rebuilt)
        customers = pd.concat([previous.customers[unchanged.to_numpy()][customers.columns], customers], ignore_index=True)
        prob = settings.matching.probabilistic
        reviews = _open_reviews(pairs, left, right, _customer_codes(before, scope, chosen, frame["customer_id"]),
                                decisions, prob.auto_merge_at if prob else 0.0)
    return ReconcileResult(crosswalk, customers, events, clusters.refused, pairs.reset_index(drop=True), reviews,
                           model_fingerprint, scored, everything, len(frame), renormalised)


def _customer_codes(before: _Before, scope: np.ndarray, chosen: np.ndarray, customer_ids: pd.Series) -> np.ndarray:
    """An integer per row naming its customer after this run: outside the scope the previous customer, inside
    the one just assigned (the two sets of customers never share an id, so their codes are kept apart)."""
    codes = before.code.copy()
    codes[scope] = -1
    new, _ = pd.factorize(customer_ids.astype(object))
    codes[chosen] = new + codes.max() + 1
    return codes


def _link(frame: pd.DataFrame, pairs: pd.DataFrame, left: np.ndarray, right: np.ndarray, decisions: dict,
          position: dict, matching) -> tuple[Clusters, dict[int, dict], pd.DataFrame]:
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
    # left and right: each pair's rows in `frame`, -1 outside it.
    both = (left >= 0) & (right >= 0)
    local = pairs[both].assign(left_row=left[both], right_row=right[both])
    local = local.sort_values(["match_probability", "left", "right"], ascending=[False, True, True])
    # A person's decision stands whether or not the pair is still scored in the review band.
    for (a, b), decision in sorted(decisions.items()):
        if decision["decision"] == "accepted":
            attach(position[a], position[b], {
                "rule": "review_accepted", "band": "reviewed", "score": decision.get("match_probability"),
                "fields": decision.get("fields"), "decided_by": decision.get("decided_by")})
    undecided = local[_undecided(local, decisions)]
    prob = matching.probabilistic
    automatic = undecided[undecided["match_probability"] >= prob.auto_merge_at] if prob else undecided.iloc[:0]
    for pair in automatic.itertuples(index=False):  # evidence built only for the links that attach
        attach(pair.left_row, pair.right_row, (pair, "probabilistic", "auto"))
    # A pair in the review band waits for a person only while its records are still apart.
    band = undecided.drop(automatic.index)
    reviews = band[_mask([clusters.find(a) != clusters.find(b) for a, b in
                          zip(band["left_row"].tolist(), band["right_row"].tolist())])]
    reviews = reviews.drop(columns=["left_row", "right_row"]).reset_index(drop=True)
    unique_ids = frame["unique_id"].tolist()
    explanation = {pos: {**(_evidence(*evidence) if isinstance(evidence, tuple) else evidence),
                         "matched_with": unique_ids[other]} for pos, (evidence, other) in attached.items()}
    return clusters, explanation, reviews


def _open_reviews(pairs: pd.DataFrame, left: np.ndarray, right: np.ndarray, customer: np.ndarray, decisions: dict,
                  auto_merge_at: float) -> pd.DataFrame:
    """Undecided review-band pairs whose records are in different customers, over the whole set (`customer`:
    a code per row, `left` and `right`: each pair's rows)."""
    band = (pairs["match_probability"] < auto_merge_at).to_numpy() & (customer[left] != customer[right])
    band = pairs[band]
    band = band[_undecided(band, decisions)]
    return band.sort_values(["match_probability", "left", "right"], ascending=[False, True, True]).reset_index(drop=True)


def _undecided(pairs: pd.DataFrame, decisions: dict) -> np.ndarray:
    if not decisions:
        return np.ones(len(pairs), dtype=bool)
    return _mask([(a, b) not in decisions for a, b in zip(pairs["left"], pairs["right"])])


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
