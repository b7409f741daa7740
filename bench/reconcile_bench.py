"""Identity resolution benchmark: accuracy, wall time and peak memory at 10k, 100k and 1M source records,
against Splink 5 alone on the same data, and linking new records into an existing base.

    .venv/bin/python bench/reconcile_bench.py                      # 10k and 100k, both engines, 3 runs each
    .venv/bin/python bench/reconcile_bench.py --sizes 1000000 --runs 1   # one size, one run
    .venv/bin/python bench/reconcile_bench.py --incremental 10000 --base 1000000

Each measurement runs in its own process, so that peak memory (max RSS) is that run's alone. Data comes
from bench/reconcile_data.py (seed 7 here; the shipped model was trained on seed 1, so no record the
benchmark scores was seen in training). Accuracy is pairwise: a pair of records is a true link when both
have the same true customer, a predicted link when both got the same customer id.

Engines:
- erp2crm: `reconcile.resolve` with the shipped config/matching.yaml, survivorship.yaml and trained model:
  normalisation, deterministic rules, Splink scoring, review band, never-merge constraints, stable ids
  and golden records. Timed end to end from raw records.
- splink: Splink 5 alone, as a user would set it up: the same normalised columns, blocking rules and
  comparisons; u by random sampling, m and the prior by expectation maximisation (no labels); predict,
  then connected components at match probability 0.95. Its `seconds` leave out the normalisation it is
  given (our code), timed apart as `normalise_seconds`.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
RESULTS = HERE / "results" / "reconcile.json"
SEED = 7
CANONICAL_EXTRA = {"is_company": None, "is_active": None, "updated_at": pd.NaT}


def records(n: int, seed: int = SEED) -> pd.DataFrame:
    import reconcile_data

    frame = reconcile_data.generate(n, seed)
    return frame.assign(**CANONICAL_EXTRA)


def pair_scores(true_ids: pd.Series, predicted: pd.Series) -> dict:
    """Pairwise precision, recall and F1 from cluster sizes (no pair enumeration)."""
    def pairs(sizes: pd.Series) -> int:
        s = sizes.to_numpy(dtype=np.int64)
        return int((s * (s - 1) // 2).sum())

    frame = pd.DataFrame({"t": true_ids.to_numpy(), "p": predicted.to_numpy()})
    both = pairs(frame.groupby(["t", "p"]).size())
    found, real = pairs(frame.groupby("p").size()), pairs(frame.groupby("t").size())
    precision = both / found if found else 1.0
    recall = both / real if real else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
            "true_pairs": real, "predicted_pairs": found}


# Evidence a matcher can use besides the name (street only together with its postcode).
EVIDENCE_COLUMNS = (("n_email",), ("n_phone",), ("n_tax_id",), ("n_birth_date",), ("n_postcode", "n_street"))


def recall_ceiling(normalised: pd.DataFrame, true_ids: pd.Series) -> float:
    """The recall of a matcher that links every two records of a customer sharing any evidence but the
    name, and nothing else: records of one true customer are joined when they share an e-mail, phone, tax
    id, birth date or postcode and street, directly or through a sibling. Pairs it leaves apart share only
    the name (or nothing), so with names as common as the generator makes them no matcher can link them
    without also linking homonyms; recall above this ceiling costs precision."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    truth = pd.Series(true_ids.to_numpy(), index=normalised.index)
    left, right = [], []
    for columns in EVIDENCE_COLUMNS:
        values = normalised[list(columns)].astype(object)
        present = values.notna().all(axis=1)
        key = pd.DataFrame({"t": truth[present]}).join(values[present])
        first = key.groupby(list(key.columns), sort=False).ngroup()
        firsts = pd.Series(key.index, index=key.index).groupby(first.to_numpy()).transform("first")
        left.append(firsts.to_numpy(np.int64))
        right.append(firsts.index.to_numpy(np.int64))
    n = len(normalised)
    rows, cols = np.concatenate(left), np.concatenate(right)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    joined = pd.DataFrame({"t": truth.to_numpy(), "c": component}).groupby(["t", "c"]).size().to_numpy(np.int64)
    real = truth.value_counts().to_numpy(np.int64)
    return round(float((joined * (joined - 1) // 2).sum() / (real * (real - 1) // 2).sum()), 5)


def run_erp2crm(n: int) -> dict:
    from reconcile import load_settings, resolve

    data = records(n)
    truth = data.pop("true_id")
    settings = load_settings()
    start = time.perf_counter()
    result = resolve(data, settings=settings)
    seconds = time.perf_counter() - start
    keys = data["source_system"] + ":" + data["source_id"]
    predicted = keys.map(dict(zip(result.crosswalk["source_system"] + ":" + result.crosswalk["source_id"],
                                  result.crosswalk["customer_id"])))
    normalised = result.normalised.set_index("unique_id").loc[keys.to_numpy()].reset_index(drop=True)
    return {"seconds": round(seconds, 2), **pair_scores(truth, predicted),
            "recall_ceiling": recall_ceiling(normalised, truth),
            "bands": result.crosswalk["match_band"].value_counts().to_dict(),
            "reviews_pending": len(result.reviews), "customers": int(result.crosswalk["customer_id"].nunique())}


def run_splink(n: int) -> dict:
    import logging

    from splink import DuckDBAPI, Linker, block_on

    from reconcile import load_settings
    from reconcile.normalize import normalise_records
    from reconcile.probabilistic import _creator, _input

    data = records(n)
    truth = data.pop("true_id")
    prob = load_settings().matching.probabilistic
    start = time.perf_counter()
    frame = normalise_records(data)
    normalise_seconds = time.perf_counter() - start
    frame["unique_id"] = frame["source_system"] + ":" + frame["source_id"]
    table = _input(frame, prob)
    start = time.perf_counter()
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(table), _creator(prob).create_settings_dict("duckdb"), log_level=None)
    logging.getLogger("splink").setLevel(logging.ERROR)
    linker.training.estimate_probability_two_random_records_match([block_on("email"), block_on("phone")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=SEED)
    for columns in prob.blocking[:2]:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
    scored = linker.inference.predict(threshold_match_probability=0.5, warning_mode="never")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(scored, 0.95).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    predicted = table["unique_id"].map(dict(zip(clusters["unique_id"], clusters["cluster_id"])))
    return {"seconds": round(seconds, 2), "normalise_seconds": round(normalise_seconds, 2),
            **pair_scores(truth, predicted)}


def run_incremental(n_new: int, n_base: int) -> dict:
    """A full run over the base, then the new records linked into it (only the second run is timed)."""
    from reconcile import Previous, load_settings, resolve

    data = records(n_base + n_new)
    truth = data.pop("true_id")
    new = data.sample(n=n_new, random_state=SEED).index
    settings = load_settings()
    start = time.perf_counter()
    first = resolve(data.drop(index=new), settings=settings)
    base_seconds = time.perf_counter() - start
    previous = Previous(first.crosswalk, first.pairs, first.model_fingerprint, customers=first.customers,
                        normalised=first.normalised)
    start = time.perf_counter()
    second = resolve(data, previous, settings=settings)
    seconds = time.perf_counter() - start
    keys = data["source_system"] + ":" + data["source_id"]
    predicted = keys.map(dict(zip(second.crosswalk["source_system"] + ":" + second.crosswalk["source_id"],
                                  second.crosswalk["customer_id"])))
    return {"seconds": round(seconds, 2), "base_seconds": round(base_seconds, 2),
            "records_scored": second.scored_records, **pair_scores(truth, predicted)}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(args: list[str], runs: int) -> dict:
    """Each run in a fresh process; the result of the run with the median time, with every run's time."""
    outcomes = [_child(args) for _ in range(runs)]
    timed = sorted((o for o in outcomes if "seconds" in o), key=lambda o: o["seconds"])
    if not timed:
        return outcomes[0]
    median = dict(timed[(len(timed) - 1) // 2])
    median["runs_seconds"] = [o["seconds"] for o in timed]
    return median


def machine() -> dict:
    from _common import machine_info

    return machine_info()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="*", default=["erp2crm", "splink"])
    parser.add_argument("--incremental", type=int, default=0, help="new records to link into --base")
    parser.add_argument("--base", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is recorded")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *numbers = args.child
        runner = {"erp2crm": run_erp2crm, "splink": run_splink, "incremental": run_incremental}[kind]
        result = runner(*map(int, numbers))
        result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
        print(json.dumps(result))
        return

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    for n in args.sizes:
        for engine in args.engines:
            print(f"{engine} {n:>9,} records ...", flush=True)
            results.setdefault(engine, {})[str(n)] = outcome = _median([engine, str(n)], args.runs)
            print("   ", outcome, flush=True)
    if args.incremental:
        print(f"incremental {args.incremental:,} into {args.base:,} ...", flush=True)
        key = f"{args.incremental}+{args.base}"
        results.setdefault("incremental", {})[key] = outcome = _median(
            ["incremental", str(args.incremental), str(args.base)], args.runs)
        print("   ", outcome, flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
