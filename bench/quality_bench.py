"""Benchmark: the staging quality gate (``quality.validate``) on 1M staged rows.

At ``--scale 1.0``: 166,666 rows each of the six staging suites (``customer_record``, ``order``, ``order_line``, ``invoice``,
``service_ticket``, ``payment``; 1M rows in total), shaped like ``HubStore.read_staged`` returns them
(``hub.frames.coerce`` with the canonical fields). The data is synthetic and deterministic
(``numpy.random.default_rng(seed)``). About 0.1% of the rows of every suite (``--bad-share``) are
made bad, spread evenly over several kinds per suite (missing/blank key, duplicate key, missing or
blank name, malformed e-mail, overlong text, negative amount, missing amount, unknown currency,
invalid status, orphan customer, missing date, due date before invoice date, ticket closed before
opened, negative outstanding amount) plus a few rows without ``updated_at`` (a warning, not
quarantined). Every run checks that exactly the expected rows are quarantined.

Documents are validated with ``known_customers`` = the customer records' keys as generated (before
bad rows were injected; in the pipeline: the hub's customer_record table), in the
pipeline's order (customer_record first), as ``erp2crm.pipeline.validate_staged`` does.

Timed: each ``quality.validate(df, suite, known_customers=...)`` call, per suite and in total; the
median of ``--runs`` runs is reported. Not timed, reported separately: importing Great Expectations,
creating the process-wide ephemeral context (``quality.gate.gx_state()``), registering the six
suites, and a warm-up validation of the first 1,000 rows of each suite (lazy one-off initialisation
inside GX). Peak memory: see ``bench/_common.py``.

    .venv/bin/python bench/quality_bench.py              # full size, 3 runs
    .venv/bin/python bench/quality_bench.py --scale 0.01 # smoke run
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

NAME = "quality_bench"
TARGET_S = 20.0
SUITES = ("customer_record", "order", "order_line", "invoice", "service_ticket", "payment")
BASE_ROWS = 1_000_000 // len(SUITES)  # per suite at scale 1.0: 1M staged rows in all
NOW = pd.Timestamp("2026-11-01", tz="UTC")

GIVEN = ["Wei", "Fang", "Li", "Na", "Jun", "Anna", "Lukas", "Maria", "John", "Emma", "Hao", "Xiu Ying",
         "José", "Zoë", "Ming"]
FAMILY = ["Wang", "Li", "Zhang", "Liu", "Chen", "Müller", "Schmidt", "Smith", "Garcia", "Huang", "Zhao",
          "O'Brien", "Nguyen", "Kim", "Yang"]
CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Hamburg", "Singapore"]

# Bad-row kinds per suite: (kind, reason code expected, quarantined?)
BAD_KINDS = {
    "customer_record": ["missing_key", "blank_key", "duplicate_key", "missing_name", "blank_name",
                        "malformed_email", "overlong_text", "missing_updated_at"],
    "order": ["missing_key", "duplicate_key", "negative_amount", "missing_amount", "unknown_currency",
              "invalid_status", "orphan_customer", "missing_date", "missing_updated_at"],
    "invoice": ["missing_key", "duplicate_key", "negative_amount", "missing_amount", "unknown_currency",
                "invalid_status", "due_before_issue", "orphan_customer", "negative_outstanding",
                "missing_date", "missing_updated_at"],
    "service_ticket": ["missing_key", "duplicate_key", "closed_before_opened", "orphan_customer",
                       "invalid_status", "missing_date", "missing_updated_at"],
    "order_line": ["missing_key", "duplicate_key", "negative_amount", "orphan_customer", "missing_updated_at"],
    "payment": ["missing_key", "duplicate_key", "negative_amount", "unknown_currency", "invalid_status",
                "orphan_customer", "missing_date", "missing_updated_at"],
}
AMOUNT = {"order": "total_amount", "invoice": "total_amount", "order_line": "line_amount", "payment": "amount"}
WARN_KINDS = {"missing_updated_at"}


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.array([f"{prefix}{n:08d}" for n in numbers.tolist()], dtype=object)


def _choice(rng, values, n, p=None) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), n, p=p)


def _timestamps(rng, n: int, start="2024-01-01") -> pd.DatetimeIndex:
    lo = pd.Timestamp(start, tz="UTC").value
    return pd.to_datetime(rng.integers(lo, NOW.value, n), utc=True)


def _clean_frames(rng, n: int) -> dict[str, pd.DataFrame]:
    # ---- customer records ----------------------------------------------------------------------
    system = _choice(rng, ["erp_a", "erp_b"], n, p=[0.6, 0.4])
    src = np.where(system == "erp_a", _ids("A", np.arange(n)), _ids("B", np.arange(n)))
    is_company = rng.random(n) < 0.5
    given = _choice(rng, GIVEN, n)
    family = _choice(rng, FAMILY, n)
    person = given + " " + family
    company = family + " Trading Co., Ltd. " + src
    local = np.char.lower(np.char.replace((given + "." + family).astype(str), " ", "")).astype(object)
    email = local + np.char.mod("%d", np.arange(n)).astype(object) + _choice(
        rng, ["@example.com", "@mail.example.cn", "@Example.COM", "@sub.example.org"], n)
    roll = rng.random(n)
    email = np.where(roll < 0.10, None, np.where(roll < 0.15, "", email))  # no e-mail (valid)
    customers = pd.DataFrame({
        "source_system": system, "source_id": src,
        "name": np.where(is_company, company, person),
        "given_name": np.where(is_company, None, given), "family_name": np.where(is_company, None, family),
        "company_name": np.where(is_company, company, None), "is_company": is_company,
        "email": email, "phone": _ids("+86 21 ", rng.integers(0, 10**8, n)),
        "tax_id": np.where(is_company, _ids("9131000", np.arange(n)), None),
        "street": np.char.mod("%d Example Road", rng.integers(1, 999, n)).astype(object),
        "city": _choice(rng, CITIES, n), "postcode": np.char.mod("%06d", rng.integers(0, 10**6, n)).astype(object),
        "region": None, "country": "CN",
        "birth_date": np.where(is_company, pd.NaT, pd.to_datetime(rng.integers(
            pd.Timestamp("1950-01-01").value, pd.Timestamp("2005-01-01").value, n)).normalize()),
        "is_active": rng.random(n) < 0.95, "updated_at": _timestamps(rng, n),
    })

    def doc_base(prefix: str):
        ref = rng.integers(0, n, n)
        ids = _ids(prefix, np.arange(n))
        return system[ref], ids, src[ref]

    currencies = ["CNY", "USD", "EUR", "HKD", "JPY"], [0.8, 0.1, 0.06, 0.02, 0.02]

    # ---- orders --------------------------------------------------------------------------------
    o_sys, o_ids, o_cust = doc_base("SO")
    o_status = _choice(rng, ["draft", "confirmed", "done", "cancelled"], n, p=[0.03, 0.15, 0.77, 0.05])
    o_amount = rng.lognormal(7.0, 1.0, n).round(2)
    o_amount[(o_status == "draft") & (rng.random(n) < 0.5)] = np.nan  # allowed for drafts
    ordered = _timestamps(rng, n)
    orders = pd.DataFrame({
        "source_system": o_sys, "source_id": o_ids, "customer_source_id": o_cust, "order_number": o_ids,
        "status": o_status, "ordered_at": ordered, "total_amount": o_amount,
        "currency": _choice(rng, currencies[0], n, p=currencies[1]),
        "channel": _choice(rng, ["web", "phone", "sales_rep", "distributor"], n), "updated_at": ordered,
    })

    # ---- invoices ------------------------------------------------------------------------------
    i_sys, i_ids, i_cust = doc_base("INV")
    kind = _choice(rng, ["invoice", "credit_note"], n, p=[0.96, 0.04])
    i_status = _choice(rng, ["draft", "open", "paid", "cancelled"], n, p=[0.03, 0.18, 0.74, 0.05])
    total = rng.lognormal(7.8, 1.0, n).round(2)
    credit = kind == "credit_note"
    total[credit] *= -1  # credit notes stored negative are valid
    outstanding = np.where(i_status == "open", total, 0.0)
    issued = _timestamps(rng, n)
    inv_date = issued.tz_localize(None).normalize()
    invoices = pd.DataFrame({
        "source_system": i_sys, "source_id": i_ids, "customer_source_id": i_cust, "invoice_number": i_ids,
        "kind": kind, "status": i_status, "invoice_date": inv_date,
        "due_date": inv_date + pd.to_timedelta(_choice(rng, [0, 15, 30, 60], n).astype(np.int64), unit="D"),
        "total_amount": total, "paid_amount": np.where(i_status == "paid", total, 0.0),
        "outstanding_amount": outstanding, "currency": _choice(rng, currencies[0], n, p=currencies[1]), "updated_at": issued,
    })

    # ---- service tickets -----------------------------------------------------------------------
    t_sys, t_ids, t_cust = doc_base("TCK")
    opened = _timestamps(rng, n)
    closed = rng.random(n) < 0.85
    tickets = pd.DataFrame({
        "source_system": t_sys, "source_id": t_ids, "customer_source_id": t_cust, "ticket_number": t_ids,
        "subject": "Question about order", "status": np.where(closed, "closed", "open"),
        "priority": _choice(rng, ["low", "medium", "high", "urgent"], n), "is_complaint": rng.random(n) < 0.08,
        "opened_at": opened,
        "closed_at": pd.Series(opened + pd.to_timedelta(rng.gamma(1.5, 24.0, n), unit="h")).where(closed),
        "satisfaction": np.where(closed & (rng.random(n) < 0.4), rng.random(n).round(2), np.nan),
        "updated_at": opened,
    })
    # ---- order lines ---------------------------------------------------------------------------
    l_sys, l_ids, l_cust = doc_base("SOL")
    lines = pd.DataFrame({
        "source_system": l_sys, "source_id": l_ids, "customer_source_id": l_cust,
        "order_source_id": o_ids[rng.integers(0, n, n)], "product_code": _ids("P", rng.integers(0, 500, n)),
        "product_name": "Product", "category": _choice(rng, ["Tea", "Electronics", "Furniture", "Packaging"], n),
        "quantity": rng.integers(1, 20, n).astype(float), "line_amount": rng.lognormal(6.0, 1.0, n).round(2),
        "updated_at": _timestamps(rng, n),
    })

    # ---- payments ------------------------------------------------------------------------------
    p_sys, p_ids, p_cust = doc_base("PAY")
    paid_on = _timestamps(rng, n)
    payments = pd.DataFrame({
        "source_system": p_sys, "source_id": p_ids, "customer_source_id": p_cust,
        "invoice_source_id": i_ids[rng.integers(0, n, n)], "payment_number": p_ids,
        "status": _choice(rng, ["posted", "draft", "cancelled"], n, p=[0.95, 0.03, 0.02]),
        "paid_date": paid_on.tz_localize(None).normalize(), "amount": rng.lognormal(7.5, 1.0, n).round(2),
        "currency": _choice(rng, currencies[0], n, p=currencies[1]), "updated_at": paid_on,
    })
    return {"customer_record": customers, "order": orders, "order_line": lines, "invoice": invoices,
            "service_ticket": tickets, "payment": payments}


def _set(df: pd.DataFrame, pos, column: str, value) -> None:
    df.iloc[np.atleast_1d(pos), df.columns.get_loc(column)] = value


def _inject(rng, suite: str, df: pd.DataFrame, n_bad: int) -> tuple[dict, np.ndarray, int]:
    """Make `n_bad` rows bad (kinds round-robin). Returns injected counts per kind, the positions that
    must be quarantined, and the number of rows that must be warned about."""
    n = len(df)
    kinds = BAD_KINDS[suite]
    n_bad = min(n_bad, n // 2)
    picked = rng.choice(n, 2 * n_bad, replace=False)
    bad_pos, spare = picked[:n_bad], picked[n_bad:]  # spare: clean rows whose key duplicates reuse
    expected = set()
    counts: dict[str, int] = {}
    n_warn = 0
    for j, pos in enumerate(bad_pos):
        kind = kinds[j % len(kinds)]
        counts[kind] = counts.get(kind, 0) + 1
        if kind in WARN_KINDS:
            _set(df, pos, "updated_at", pd.NaT)
            n_warn += 1
            continue
        expected.add(int(pos))
        if kind == "missing_key":
            _set(df, pos, "source_id", None)
        elif kind == "blank_key":
            _set(df, pos, "source_id", "   ")
        elif kind == "duplicate_key":
            other = int(spare[j])
            _set(df, pos, "source_system", df.iat[other, df.columns.get_loc("source_system")])
            _set(df, pos, "source_id", df.iat[other, df.columns.get_loc("source_id")])
            expected.add(other)  # both rows of a duplicated key are held back
        elif kind == "missing_name":
            _set(df, pos, "name", None)
        elif kind == "blank_name":
            _set(df, pos, "name", " ")
        elif kind == "malformed_email":
            _set(df, pos, "email", ["no-at-sign.example.com", "two@@example.com", "a@b", "x y@example.com"][j % 4])
        elif kind == "overlong_text":
            _set(df, pos, "city", "X" * 300)
        elif kind == "negative_amount":
            if suite == "invoice":
                _set(df, pos, "kind", "invoice")
                _set(df, pos, "outstanding_amount", 0.0)
            _set(df, pos, AMOUNT[suite], -123.45)
        elif kind == "missing_amount":
            _set(df, pos, "status", "paid" if suite == "invoice" else "done")
            _set(df, pos, "total_amount", np.nan)
        elif kind == "unknown_currency":
            _set(df, pos, "currency", ["XXX", "usd", "RMB", None][j % 4])
        elif kind == "invalid_status":
            _set(df, pos, "status", ["shipped", "void", None][j % 3])
        elif kind == "orphan_customer":
            _set(df, pos, "customer_source_id", f"ORPHAN{j:06d}")
        elif kind == "missing_date":
            _set(df, pos, {"order": "ordered_at", "invoice": "invoice_date", "payment": "paid_date",
                           "service_ticket": "opened_at"}[suite], pd.NaT)
        elif kind == "due_before_issue":
            _set(df, pos, "due_date", df.iat[pos, df.columns.get_loc("invoice_date")] - pd.Timedelta(days=5))
        elif kind == "negative_outstanding":
            _set(df, pos, "kind", "invoice")
            _set(df, pos, "total_amount", 100.0)
            _set(df, pos, "outstanding_amount", -50.0)
        elif kind == "closed_before_opened":
            _set(df, pos, "status", "closed")
            _set(df, pos, "closed_at", df.iat[pos, df.columns.get_loc("opened_at")] - pd.Timedelta(hours=3))
        else:  # pragma: no cover
            raise ValueError(kind)
    return counts, np.array(sorted(expected), dtype=np.int64), n_warn


def make_data(scale: float, seed: int, bad_share: float):
    from erp2crm.canonical import ENTITIES
    from hub.frames import coerce

    rng = np.random.default_rng(seed)
    n = max(100, int(round(BASE_ROWS * scale)))
    frames = _clean_frames(rng, n)
    injected = {}
    known = None
    for suite in SUITES:
        df = coerce(frames[suite], ENTITIES[suite].fields)  # as HubStore.read_staged returns it
        if suite == "customer_record":
            # Known customers (the hub's customer_record table in the pipeline): every customer key
            # as generated, so a document never becomes an orphan because its customer's staged row
            # was damaged below; orphans are only the injected ones.
            known = df[["source_system", "source_id"]].copy()
        counts, expected_pos, n_warn = _inject(rng, suite, df, max(len(BAD_KINDS[suite]), round(n * bad_share)))
        frames[suite] = df
        injected[suite] = {"bad_rows": int(sum(counts.values())), "by_kind": counts,
                           "expected_quarantined": int(len(expected_pos)), "expected_warned": n_warn,
                           "_positions": expected_pos}
    return frames, known, injected


def main(argv=None) -> int:
    ap = _common.arg_parser(NAME, __doc__.splitlines()[0],
                            "multiplier on 166,666 rows per suite (default 1.0 = 1M rows in total)")
    ap.add_argument("--bad-share", type=float, default=0.001, help="share of bad rows per suite (default 0.001)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    frames, known, injected = make_data(args.scale, args.seed, args.bad_share)
    gen_s = time.perf_counter() - t0
    rows = {s: len(frames[s]) for s in SUITES}
    print(f"data: {rows} generated in {gen_s:.1f}s", file=sys.stderr)

    # ---- one-off costs (not timed as part of the benchmark) ------------------------------------
    one_off = {}
    t = time.perf_counter()
    import great_expectations  # noqa: F401
    import quality
    from quality.gate import gx_state
    from quality.suites import get_spec
    one_off["import_gx_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    state = gx_state()
    one_off["context_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    for suite in SUITES:
        state.suite(get_spec(suite))
    one_off["register_suites_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    for suite in SUITES:
        quality.validate(frames[suite].iloc[:1000], suite,
                         known_customers=None if suite == "customer_record" else known)
    one_off["warmup_1k_rows_per_suite_s"] = round(time.perf_counter() - t, 3)
    one_off["total_s"] = round(sum(one_off.values()), 3)
    print(f"one-off: {one_off}", file=sys.stderr)

    # ---- timed runs ---------------------------------------------------------------------------
    gc.collect()
    process_peak_before_runs = _common.peak_rss_mib()
    rss_before = _common.rss_mib()
    per_suite = {s: [] for s in SUITES}
    totals, peaks = [], []
    outcome = {}
    checks_ok = True
    reset_ok = True
    for k in range(args.runs):
        gc.collect()
        reset_ok = _common.reset_peak_rss() and reset_ok
        total = 0.0
        for suite in SUITES:
            kc = None if suite == "customer_record" else known
            t = time.perf_counter()
            res = quality.validate(frames[suite], suite, known_customers=kc)
            dt = time.perf_counter() - t
            total += dt
            per_suite[suite].append(dt)
            q_pos = np.sort(frames[suite].index.get_indexer(res.quarantined.index))
            warned = sum(w["rows"] for w in res.warnings if w["reason_code"] == "missing_updated_at")
            ok = (np.array_equal(q_pos, injected[suite]["_positions"])
                  and warned == injected[suite]["expected_warned"])
            checks_ok = checks_ok and ok
            codes = res.quarantined["reason_code"].str.split(";").explode().value_counts().to_dict()
            outcome[suite] = {"rows_in": res.rows_in, "passed": res.rows_passed,
                              "quarantined": res.rows_quarantined, "warned_missing_updated_at": warned,
                              "reason_codes": codes, "quarantine_matches_injection": ok}
            del res
        totals.append(total)
        peaks.append(_common.peak_rss_mib())
        print(f"run {k + 1}/{args.runs}: total {total:.2f}s ("
              + ", ".join(f"{s} {per_suite[s][-1]:.2f}s" for s in SUITES)
              + f"), peak RSS {peaks[-1]:.0f} MiB", file=sys.stderr)

    med = _common.median(totals)
    n_total = sum(rows.values())
    for v in injected.values():
        v.pop("_positions")
    payload = {
        "benchmark": NAME,
        "date": _common.now_iso(),
        "scale": args.scale,
        "runs": args.runs,
        "seed": args.seed,
        "bad_share": args.bad_share,
        "target_s": TARGET_S if args.scale == 1.0 else None,
        "target_met": (med <= TARGET_S) if args.scale == 1.0 else None,
        "timed": "quality.validate(df, suite, known_customers=...) for each suite, sequentially",
        "median_total_s": round(med, 3),
        "run_totals_s": [round(t, 3) for t in totals],
        "median_per_suite_s": {s: round(_common.median(v), 3) for s, v in per_suite.items()},
        "run_times_per_suite_s": {s: [round(t, 3) for t in v] for s, v in per_suite.items()},
        "rows_per_s_median": round(n_total / med),
        "one_off_not_timed_s": one_off,
        "data_generation_s": round(gen_s, 2),
        "rows_in": {**rows, "total": n_total, "known_customers": len(known)},
        "injected": injected,
        "outcome_last_run": outcome,
        "all_runs_quarantine_matches_injection": checks_ok,
        "memory": _common.memory_report("resident input data and GX", reset_ok, rss_before, peaks,
                                        process_peak_rss_before_runs_mib=process_peak_before_runs),
        "machine": _common.machine_info(),
        "versions": _common.library_versions("pandas", "numpy", "great_expectations"),
    }
    out = _common.save(NAME, args.scale, args.out, payload)
    verdict = _common.verdict(payload["target_met"])
    print(f"{NAME}: scale={args.scale:g} rows={n_total} ({len(SUITES)} suites) median={med:.2f}s over "
          f"{args.runs} runs (target <= {TARGET_S:g}s at scale 1: {verdict}) "
          f"one-off={one_off['total_s']:.1f}s peak_rss={max(peaks):.0f}MiB "
          f"checks={'ok' if checks_ok else 'FAILED'} -> {out}")
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
