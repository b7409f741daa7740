"""Benchmark: profile enrichment (``enrich.build_profiles``) at the issue's target size.

At ``--scale 1.0``: 100k golden customers, ~150k crosswalk rows, 3M orders, 1M invoices, 300k service
tickets. The data is synthetic and deterministic (``numpy.random.default_rng(seed)``) and is shaped
like the hub hands it to the enrich task (``erp2crm.pipeline.enrich_profiles``):

* orders / invoices / tickets go through ``hub.frames.coerce`` with the canonical fields
  (``erp2crm.canonical``), exactly as ``HubStore.read_entity`` returns them (object strings, UTC
  timestamps, naive dates, object booleans);
* customers and crosswalk are plain frames as ``HubStore.read_table`` returns them.

What the data contains (so that every code path of the enrichment is exercised): skewed activity
(log-normal weights, ~8% of customers without any document), ~20% "churned" customers whose
documents stop early, 1-3 source records per customer in up to 3 ERPs, ~0.5% documents of customers
that are not profiled (held), documents dated after ``as_of``, draft/cancelled documents, credit
notes (half stored negative), open/overdue invoices, ~0.5% GBP documents (no FX rate: unconverted),
open/closed tickets with complaints, satisfaction and missing priorities.

Only ``build_profiles(...)`` is timed (data generation and coercion are not); the median of
``--runs`` runs is reported. Peak memory: see ``bench/_common.py``.

    .venv/bin/python bench/enrich_bench.py              # full size, 3 runs
    .venv/bin/python bench/enrich_bench.py --scale 0.01 # smoke run
"""
from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import _common  # noqa: E402  (bench/ is sys.path[0] when run as a script)

from enrich import build_profiles, load_fx_rates, load_settings  # noqa: E402
from erp2crm.canonical import ENTITIES  # noqa: E402
from hub.frames import coerce  # noqa: E402

NAME = "enrich_bench"
TARGET_S = 15.0
BASE = {"customers": 100_000, "orders": 3_000_000, "invoices": 1_000_000, "tickets": 300_000}
AS_OF = pd.Timestamp("2026-11-01", tz="UTC")
HISTORY_START = pd.Timestamp("2023-01-01", tz="UTC")
SYSTEMS = ("erp_a", "erp_b", "erp_c")
PREFIX = {"erp_a": "A", "erp_b": "B", "erp_c": "C"}


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.array([f"{prefix}{n:08d}" for n in numbers.tolist()], dtype=object)


def _choice(rng, values, n, p=None) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), n, p=p)


def make_data(scale: float, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    nc, no, ni, nt = (max(1, int(round(v * scale))) for v in BASE.values())
    n_held = max(1, nc // 100)  # crosswalked customers that are held (not in `customers`)
    n_all = nc + n_held

    # ---- golden customers -------------------------------------------------------------------
    cust_ids = _ids("U", np.arange(n_all))
    is_company = rng.random(n_all) < 0.6
    cities = _choice(rng, ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan",
                           "Hamburg", "Singapore", "Los Angeles"], n_all)
    customers = pd.DataFrame({
        "customer_id": cust_ids,
        "name": np.where(is_company, "Company " + cust_ids, "Person " + cust_ids),
        "company_name": np.where(is_company, "Company " + cust_ids, None),
        "email": np.char.add(np.char.lower(cust_ids.astype(str)), "@example.com").astype(object),
        "phone": _ids("+86 21 ", rng.integers(0, 10**8, n_all)),
        "tax_id": np.where(is_company, _ids("91310000", np.arange(n_all)), None),
        "street": "1 Example Road", "city": cities, "postcode": "200000",
        "country": np.where(np.isin(cities, ["Hamburg", "Singapore", "Los Angeles"]), "XX", "CN"),
        "is_company": is_company,
        "held": np.arange(n_all) >= nc,
    })

    # ---- crosswalk: 1-3 source records per customer ----------------------------------------
    in_b = rng.random(n_all) < 0.4
    in_c = rng.random(n_all) < 0.1
    parts = []
    for system, mask in (("erp_a", np.ones(n_all, bool)), ("erp_b", in_b), ("erp_c", in_c)):
        idx = np.flatnonzero(mask)
        parts.append(pd.DataFrame({"source_system": system, "source_id": _ids(PREFIX[system], idx),
                                   "customer_id": cust_ids[idx], "cust": idx}))
    xw_full = pd.concat(parts, ignore_index=True).sort_values(["cust", "source_system"], kind="stable")
    xw_full = xw_full.reset_index(drop=True)
    rec_count = np.bincount(xw_full["cust"].to_numpy(), minlength=n_all)
    rec_start = np.concatenate([[0], np.cumsum(rec_count)[:-1]])
    crosswalk = pd.DataFrame({
        "source_system": xw_full["source_system"].to_numpy(), "source_id": xw_full["source_id"].to_numpy(),
        "customer_id": xw_full["customer_id"].to_numpy(),
        "match_rule": np.where(xw_full["source_system"].to_numpy() == "erp_a", "seed", "tax_id"),
        "match_band": "high", "match_score": 1.0,
    })

    # ---- activity model: skewed weights, some customers silent, some churned -----------------
    weight = rng.lognormal(0.0, 1.2, n_all)
    weight[rng.random(n_all) < 0.08] = 0.0
    p = weight / weight.sum()
    span = (AS_OF - HISTORY_START).value
    first = HISTORY_START.value + (rng.random(n_all) ** 2 * 0.8 * span).astype(np.int64)  # tenure varies
    last = np.full(n_all, AS_OF.value + 30 * 86_400 * 10**9, dtype=np.int64)  # some documents after as_of
    churned = rng.random(n_all) < 0.2
    last[churned] = first[churned] + ((last[churned] - first[churned]) * rng.uniform(0.2, 0.9, churned.sum())
                                      ).astype(np.int64)

    def documents(n: int, prefix: str):
        cust = rng.choice(n_all, n, p=p)
        rec = rec_start[cust] + (rng.random(n) * rec_count[cust]).astype(np.int64)
        system = xw_full["source_system"].to_numpy()[rec]
        cust_src = xw_full["source_id"].to_numpy()[rec]
        when = pd.to_datetime(first[cust] + (rng.random(n) * (last[cust] - first[cust])).astype(np.int64),
                              utc=True)
        doc_ids = _ids(prefix, np.arange(n))
        return system, doc_ids, cust_src, when

    def currency(n: int) -> np.ndarray:
        return _choice(rng, ["CNY", "USD", "EUR", "GBP"], n, p=[0.8, 0.12, 0.075, 0.005])

    # ---- orders ------------------------------------------------------------------------------
    system, ids, cust_src, when = documents(no, "SO")
    status = _choice(rng, ["draft", "confirmed", "done", "cancelled"], no, p=[0.03, 0.15, 0.77, 0.05])
    amount = rng.lognormal(7.0, 1.0, no).round(2)
    amount[(status == "draft") & (rng.random(no) < 0.5)] = np.nan  # drafts without a total are allowed
    orders = pd.DataFrame({
        "source_system": system, "source_id": ids, "customer_source_id": cust_src, "order_number": ids,
        "status": status, "ordered_at": when, "total_amount": amount, "currency": currency(no),
        "channel": _choice(rng, ["web", "phone", "sales_rep", "distributor", "marketplace"], no,
                           p=[0.4, 0.15, 0.25, 0.15, 0.05]),
        "updated_at": when + pd.to_timedelta(rng.integers(0, 72, no), unit="h"),
    })

    # ---- invoices ----------------------------------------------------------------------------
    system, ids, cust_src, when = documents(ni, "INV")
    inv_date = when.tz_localize(None).normalize()
    kind = _choice(rng, ["invoice", "credit_note"], ni, p=[0.96, 0.04])
    status = _choice(rng, ["draft", "open", "paid", "cancelled"], ni, p=[0.03, 0.18, 0.74, 0.05])
    # Old invoices are mostly settled: an invoice older than 120 days stays open with 3% probability.
    old_open = (status == "open") & (inv_date < (AS_OF - pd.Timedelta(days=120)).tz_localize(None))
    status[old_open & (rng.random(ni) >= 0.03)] = "paid"
    total = rng.lognormal(7.8, 1.0, ni).round(2)
    credit = kind == "credit_note"
    total[credit & (rng.random(ni) < 0.5)] *= -1  # some ERPs store credit notes negative
    partly = (status == "open") & (rng.random(ni) < 0.3)
    paid = np.where(status == "paid", total, np.where(partly, (total * 0.4).round(2), 0.0))
    outstanding = np.where(status == "open", (total - paid).round(2), 0.0)
    invoices = pd.DataFrame({
        "source_system": system, "source_id": ids, "customer_source_id": cust_src, "invoice_number": ids,
        "kind": kind, "status": status, "invoice_date": inv_date,
        "due_date": inv_date + pd.to_timedelta(_choice(rng, [0, 15, 30, 60], ni).astype(np.int64), unit="D"),
        "total_amount": total, "paid_amount": paid, "outstanding_amount": outstanding, "currency": currency(ni),
        "updated_at": when + pd.to_timedelta(rng.integers(0, 240, ni), unit="h"),
    })

    # ---- service tickets ---------------------------------------------------------------------
    system, ids, cust_src, opened = documents(nt, "TCK")
    closed = rng.random(nt) < 0.85
    priority = _choice(rng, ["low", "medium", "high", "urgent", None], nt, p=[0.3, 0.4, 0.2, 0.09, 0.01])
    closed_at = pd.Series(opened + pd.to_timedelta(rng.gamma(1.5, 24.0, nt), unit="h")).where(closed)
    satisfaction = np.where(closed & (rng.random(nt) < 0.4), rng.beta(5, 2, nt).round(2), np.nan)
    tickets = pd.DataFrame({
        "source_system": system, "source_id": ids, "customer_source_id": cust_src, "ticket_number": ids,
        "subject": "Question about order", "status": np.where(closed, "closed", "open"),
        "priority": priority, "is_complaint": rng.random(nt) < 0.08, "opened_at": opened,
        "closed_at": closed_at, "satisfaction": satisfaction, "updated_at": opened,
    })

    # Same in-memory shapes as the hub store returns (see module docstring).
    orders = coerce(orders, ENTITIES["order"].fields)
    invoices = coerce(invoices, ENTITIES["invoice"].fields)
    tickets = coerce(tickets, ENTITIES["service_ticket"].fields)
    customers = customers[~customers["held"]].drop(columns="held").reset_index(drop=True)
    return {"customers": customers, "crosswalk": crosswalk, "orders": orders, "invoices": invoices,
            "tickets": tickets}


def main(argv=None) -> int:
    ap = _common.arg_parser(NAME, __doc__.splitlines()[0], "multiplier on the target sizes (default 1.0)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = make_data(args.scale, args.seed)
    gen_s = time.perf_counter() - t0
    settings = load_settings()
    fx = load_fx_rates(_common.REPO_ROOT / "config" / "fx_rates.csv")
    rows = {k: len(v) for k, v in data.items()}
    print(f"data: {rows} generated in {gen_s:.1f}s", file=sys.stderr)

    gc.collect()
    process_peak_after_data = _common.peak_rss_mib()
    rss_before = _common.rss_mib()
    times, peaks, fingerprints = [], [], []
    reset_ok = True
    result = None
    for k in range(args.runs):
        result = None
        gc.collect()
        reset_ok = _common.reset_peak_rss() and reset_ok
        t = time.perf_counter()
        result = build_profiles(data["customers"], data["crosswalk"], data["orders"], data["invoices"],
                                data["tickets"], fx, settings, AS_OF)
        times.append(time.perf_counter() - t)
        peaks.append(_common.peak_rss_mib())
        fingerprints.append(int(pd.util.hash_pandas_object(result.profiles, index=False).sum()))
        print(f"run {k + 1}/{args.runs}: {times[-1]:.2f}s, peak RSS {peaks[-1]:.0f} MiB", file=sys.stderr)

    prof = result.profiles
    med = _common.median(times)
    payload = {
        "benchmark": NAME,
        "date": _common.now_iso(),
        "scale": args.scale,
        "runs": args.runs,
        "seed": args.seed,
        "as_of": AS_OF.isoformat(),
        "target_s": TARGET_S if args.scale == 1.0 else None,
        "target_met": (med <= TARGET_S) if args.scale == 1.0 else None,
        "timed": "enrich.build_profiles(customers, crosswalk, orders, invoices, tickets, fx, settings, as_of)",
        "median_s": round(med, 3),
        "run_times_s": [round(t, 3) for t in times],
        "data_generation_s": round(gen_s, 2),
        "rows_in": rows,
        "rows_out": {"profiles": len(prof), "ledger": len(result.ledger), "unconverted": len(result.unconverted)},
        "output_checks": {
            "identical_across_runs": len(set(fingerprints)) == 1,
            "customers_with_orders": int((prof["order_count"] > 0).sum()),
            "segments": prof["segment"].value_counts().to_dict(),
            "credit_classes": prof["credit_class"].value_counts().to_dict(),
            "churn_flag_share": round(float(prof["churn_flag"].mean()), 4),
        },
        "memory": _common.memory_report("resident input data", reset_ok, rss_before, peaks,
                                        process_peak_rss_incl_data_generation_mib=process_peak_after_data),
        "machine": _common.machine_info(),
        "versions": _common.library_versions("pandas", "numpy"),
    }
    out = _common.save(NAME, args.scale, args.out, payload)
    verdict = _common.verdict(payload["target_met"])
    print(f"{NAME}: scale={args.scale:g} customers={rows['customers']} orders={rows['orders']} "
          f"invoices={rows['invoices']} tickets={rows['tickets']} median={med:.2f}s over {args.runs} runs "
          f"(target <= {TARGET_S:g}s at scale 1: {verdict}) peak_rss={max(peaks):.0f}MiB -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
