"""Push benchmark: API calls per 1,000 profiles and push throughput for each CRM target against its emulator.

What is timed is `erp2crm.push.push(hub, run_id, target)` as the sync DAG's push task calls it: read the profiles
and the push state from the hub, build and hash the payloads, call the target's sink (through the Airflow
connection and its hook, the one HTTP client, real timeouts and sleeps), write the push state and the receipts.
Twice per run: a first push into an empty CRM (every profile created), then a second push with nothing changed
(nothing sent). The emulator runs in a process of its own (it would otherwise share the GIL with the push), fresh
for every run, in memory; the hub is SQLite in a temporary directory, filled before the clock starts.

Cases (--scale multiplies the sizes): Salesforce sObject Collections 10,000 profiles (200 a call), Salesforce Bulk
API 2.0 10,000 and 100,000 (one job of up to 100,000 records), HubSpot 10,000 (100 a call). BottleCRM is left out:
it needs the real server of tests/servers/bottlecrm.py and writes one record per call (bench/README.md gives its
figures from tests/test_bottlecrm.py).

    .venv/bin/python bench/push_bench.py                       # every case, 3 runs each (~5 min on 2 cores)
    .venv/bin/python bench/push_bench.py --scale 0.01 --runs 1 # smoke run
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (bench/ is sys.path[0] when run as a script)

_common.ensure_repo_on_path()

TOKEN = "bench-token-7d2a"
# name, target kind, profiles at scale 1, TargetConfig options, the target (calls per 1,000 profiles)
CASES = [
    ("salesforce_collections", "salesforce", 10_000, {"bulk_threshold": None}, 5.0),
    ("salesforce_bulk", "salesforce", 10_000, {"bulk_threshold": 1}, 0.1),
    ("salesforce_bulk", "salesforce", 100_000, {"bulk_threshold": 1}, 0.1),
    ("hubspot", "hubspot", 10_000, {}, 10.0),
]
CITIES = ["Berlin", "Hamburg", "München", "Köln", "Shanghai", "北京", "Wien", "Zürich"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_profiles(n: int, seed: int) -> list[dict]:
    """Profiles with every field the shipped outbound mappings send, deterministic for a seed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        revenue = round(rng.lognormvariate(8, 1.2), 2)
        out.append({
            "customer_id": f"UC{i:08d}", "name": f"Kunde {i} GmbH" if i % 3 else f"客户 {i} 有限公司",
            "phone": f"+49 30 {rng.randrange(10**7):07d}", "street": f"Hauptstraße {rng.randrange(1, 300)}",
            "city": rng.choice(CITIES), "postcode": f"{rng.randrange(10000, 99999)}", "country": "DE",
            "email": f"info{i}@kunde{i}.example", "tax_id": None if i % 5 == 0 else f"DE{rng.randrange(10**9):09d}",
            "source_ids": f"odoo:{i}; erpnext:CUST-{i:05d}", "reporting_currency": "EUR",
            "segment": rng.choice(["A", "B", "C"]), "lifetime_revenue": revenue,
            "revenue_12m": round(revenue * rng.random(), 2), "net_value": round(revenue * 0.9, 2),
            "clv": round(revenue * 1.8, 2), "order_count": rng.randrange(1, 200),
            "last_order_at": f"2026-{rng.randrange(1, 12):02d}-{rng.randrange(1, 28):02d}T10:00:00+00:00",
            "avg_order_value": round(rng.uniform(20, 2000), 2), "top_categories": "Tools; Garden; Paint",
            "open_receivables": round(rng.uniform(0, 5000), 2), "overdue_amount": round(rng.uniform(0, 800), 2),
            "credit_class": rng.choice(["good", "watch", "risk"]), "avg_days_paid_late": round(rng.uniform(0, 30), 1),
            "paid_on_time_share": round(rng.random(), 2), "tickets_open": rng.randrange(0, 4),
            "satisfaction": round(rng.uniform(1, 5), 1), "churn_risk": round(rng.random(), 2),
            "churn_flag": rng.random() < 0.1})
    return out


class Emulator:
    """The target's emulator in a process of its own: `erp2crm emulator <kind>` as a user starts it."""

    def __init__(self, kind: str):
        options = ["--window-max", "100"] if kind == "hubspot" else ["--bulk-polls-in-progress", "0",
                                                                      "--daily-limit", "1000000"]
        env = {**os.environ, f"{kind.upper()}_EMULATOR_TOKEN": TOKEN}
        self.process = subprocess.Popen([sys.executable, "-m", f"emulators.{kind}", "--port", "0", *options],
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=_common.REPO_ROOT)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the {kind} emulator did not start: {line!r}")
        self.url = line.strip().rsplit(" ", 1)[-1]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/__emulator__/stats", timeout=60) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def one_run(kind: str, n: int, options: dict, profiles: list[dict], workdir: Path) -> dict:
    import erp2crm.push as push_module
    from erp2crm.config import TargetConfig
    from hub import HubStore

    hub = HubStore(f"sqlite:///{workdir / 'hub.db'}")
    hub.migrate()
    hub.replace_rows("profiles", [{"customer_id": p["customer_id"], "profile": json.dumps(p, ensure_ascii=False),
                                   "push_ready": True} for p in profiles[:n]])
    target = TargetConfig(name=kind, kind=kind, **options)
    slept = []
    open_sink = push_module.open_sink

    def open_measured(*args, **kwargs):  # the same sink; its sleeps (Bulk polling, pacing) are added up
        sink = open_sink(*args, **kwargs)
        sleep = sink.client.sleep

        def measured(seconds: float) -> None:
            slept.append(seconds)
            sleep(seconds)

        sink.client.sleep = measured
        if hasattr(sink, "sleep"):
            sink.sleep = measured
        return sink

    emulator = Emulator(kind)
    push_module.open_sink = open_measured
    os.environ[f"AIRFLOW_CONN_{kind.upper()}_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": emulator.url, "password": TOKEN})
    try:
        reset_ok = _common.reset_peak_rss()
        started = time.perf_counter()
        first = push_module.push(hub, "bench-first", target)
        first_s = time.perf_counter() - started
        peak = _common.peak_rss_mib()
        served = emulator.stats()
        started = time.perf_counter()
        second = push_module.push(hub, "bench-second", target)
        second_s = time.perf_counter() - started
    finally:
        push_module.open_sink = open_sink
        emulator.stop()
    created = served.get("records_created", 0)
    checks = {"created_all": first["created"] == n and first["rejected"] == 0 and created == n,
              "second_sent_nothing": second["sent"] == 0 and second["api_calls"] == 0,
              "client_and_emulator_agree_on_calls": served.get("requests") == first["api_calls"]}
    return {"first_push_s": first_s, "second_push_s": second_s, "api_calls": first["api_calls"],
            "emulator_requests": served.get("requests"), "client_sleep_s": sum(slept), "peak_rss_mib": peak,
            "rss_reset_supported": reset_ok, "checks": checks}


def main() -> int:
    ap = _common.arg_parser("push_bench", __doc__.split("\n")[0], "multiplier on the profile counts (default 1.0)")
    ap.add_argument("--cases", nargs="*", help="only these cases (salesforce_collections, salesforce_bulk, hubspot)")
    args = ap.parse_args()
    cases = [(name, kind, max(1, int(size * args.scale)), opts, goal) for name, kind, size, opts, goal in CASES
             if not args.cases or name in args.cases]
    profiles = make_profiles(max(n for _, _, n, _, _ in cases), args.seed)
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews the figures
    results, ok = [], True
    for name, kind, n, options, goal in cases:
        runs = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="push-bench-") as workdir:
                runs.append(one_run(kind, n, options, profiles, Path(workdir)))
            log(f"{name} {n:,}: run {run + 1}: first push {runs[-1]['first_push_s']:.2f} s, "
                f"{runs[-1]['api_calls']} calls, second {runs[-1]['second_push_s']:.2f} s")
        calls = _common.median([r["api_calls"] for r in runs])
        first_s = _common.median([r["first_push_s"] for r in runs])
        per_1000 = round(calls / n * 1000, 3)
        checks_ok = all(all(r["checks"].values()) for r in runs)
        ok &= checks_ok
        results.append({
            "case": name, "target_kind": kind, "profiles": n, "target_config": options,
            "api_calls": calls, "api_calls_per_1000_profiles": per_1000, "target_per_1000": goal,
            "target_met": per_1000 <= goal,
            "first_push": {"median_s": round(first_s, 3), "runs_s": [round(r["first_push_s"], 3) for r in runs],
                           "records_per_s": round(n / first_s, 1),
                           "client_sleep_median_s": round(_common.median([r["client_sleep_s"] for r in runs]), 3)},
            "unchanged_second_push": {"median_s": round(_common.median([r["second_push_s"] for r in runs]), 3),
                                      "runs_s": [round(r["second_push_s"], 3) for r in runs], "api_calls": 0},
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
            "checks": {k: all(r["checks"][k] for r in runs) for k in runs[0]["checks"]}})
        print(f"{name} {n:,} profiles: {per_1000} calls per 1,000 (target {goal}: "
              f"{_common.verdict(per_1000 <= goal)}), first push {first_s:.2f} s ({n / first_s:,.0f} records/s), "
              f"unchanged push {results[-1]['unchanged_second_push']['median_s']:.2f} s, checks "
              f"{'ok' if checks_ok else 'FAILED'}", flush=True)
    from importlib.metadata import version

    payload = {"benchmark": "push_bench", "date": _common.now_iso(), "scale": args.scale, "runs": args.runs,
               "seed": args.seed, "machine": _common.machine_info(), "load_average_before": load_before,
               "load_average_after": [round(x, 2) for x in os.getloadavg()],
               "libraries": _common.library_versions("requests", "urllib3", "SQLAlchemy", "pandas"),
               "erp2crm": version("erp2crm"),
               "method": "erp2crm.push.push against the emulator in its own process; medians of the runs; "
                         "calls counted by the client (HttpClient.requests_sent) and by the emulator",
               "cases": results}
    path = _common.save("push_bench", args.scale, args.out, payload)
    log(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
