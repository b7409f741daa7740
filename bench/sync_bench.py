"""Benchmark: the full sync end to end — demo ERPs at scale → real Airflow DAG run → local Salesforce emulator.

    .venv/bin/python bench/sync_bench.py --scale small                 # 10k customer records, 3 runs, SQLite ERPs
    .venv/bin/python bench/sync_bench.py --scale small --incremental   # each run: full, then 1 % of changes
    .venv/bin/python bench/sync_bench.py --scale medium --db postgres --incremental --runs 1
    .venv/bin/python bench/sync_bench.py --readme                      # refresh the table in bench/README.md

Data: `demodata.scale` (the demo's customers, their documents drawn vectorised) at the issue's shapes, generated once
and cached under var/bench/data/ (bench/_sync_data.py). small: 10k customer records; medium: 300k records, 3M orders,
1M invoices, 300k tickets; large: 1M records, 10M orders. With --db postgres the three ERP databases are loaded into
PostgreSQL (COPY, once, as template databases) and every run gets fresh clones, and the hub store is a fresh
PostgreSQL database too; with --db sqlite (default) every run gets fresh copies of the SQLite files and a new SQLite
hub.

Each run is one process (`--child`): it configures the embedded Airflow (erp2crm.local), initialises its database
(not timed), then times `dag.test()` of erp_crm_customer_sync — the same DAG, tasks and pipeline calls as production,
all tasks in this one process. Per stage: wall time from the hub's run history (hub.stages(run_id), the time inside
each pipeline call) and the Airflow task instance's own duration (call plus task overhead); peak memory from a
sampling thread (see `RssSampler`). The Salesforce emulator runs in a process of its own, as a CRM would; API calls
per target come from the push stage's counts and are checked against the emulator's request counter.

--incremental: after each full run, 1 % of the source rows change (new orders with their lines, changed customer
addresses, paid invoices with their payments; bench/_sync_data.apply_changes) with the current time as their write
date, and the DAG runs again without full_refresh. Both runs compute profiles as of the same instant, so a profile
changes only when its data did. Checked: only profiles whose CRM payload changed are sent, and the CRM calls are
ceil(sent / batch_size) with sObject Collections (or the Bulk API job's calls when `bulk_threshold` records or more
are sent).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common  # noqa: E402
import _sync_data as data  # noqa: E402

NAME = "sync"
DAG_ID = "erp_crm_customer_sync"
SCALES = ("small", "medium", "large")
DEFAULT_RUNS = {"small": 3, "medium": 1, "large": 1}
CHANGE_SHARE = 0.01
TARGETS = {"medium_full_s": 180, "medium_peak_gib": 6, "incremental_share_of_full": 0.15, "large_over_medium": 3.5}
README = _common.BENCH_DIR / "README.md"
BEGIN, END = "<!-- sync:begin -->", "<!-- sync:end -->"
log = data.log


# ================================================================ memory sampling (in the run's process)

def _status_kib(pid: str = "self") -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def _private_kib(pid: int) -> int:
    """Memory a (forked) child holds on its own: Private_Clean + Private_Dirty; pages it shares with its parent are
    counted in the parent's RSS already."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except OSError:
        pass
    return total


def _descendants(pid: int) -> list[int]:
    """Child processes, recursively, from /proc/<pid>/task/<tid>/children (no scan of every process)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{current}/task/{tid}/children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class RssSampler(threading.Thread):
    """Every `interval` s: this process's peak RSS since the previous sample (VmHWM, then the high-water mark reset to
    the current RSS through /proc/self/clear_refs), so no peak between samples is missed; and every `child_interval`
    s, the private memory of its child processes (reconcile forks normalisation workers from 200k records on).
    Each sample is (wall time, peak KiB of this process over (previous sample, this one], children's KiB)."""

    def __init__(self, interval: float = 0.05, child_interval: float = 0.25):
        super().__init__(name="rss-sampler", daemon=True)
        self.interval, self.child_interval = interval, child_interval
        self.samples: list[tuple[float, int, int]] = []
        self.reset_ok = _common.reset_peak_rss()
        self._halt = threading.Event()

    def run(self) -> None:
        last_children, children_kib = 0.0, 0
        while not self._halt.is_set():
            now = time.time()
            hwm = _status_kib().get("VmHWM", 0)
            _common.reset_peak_rss()
            if now - last_children >= self.child_interval:
                last_children = now
                children_kib = sum(_private_kib(pid) for pid in _descendants(os.getpid()))
            self.samples.append((now, hwm, children_kib))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.samples.append((time.time(), _status_kib().get("VmHWM", 0), 0))

    def peak(self, start: float, end: float) -> dict:
        """Peak MiB of this process, and of it plus its children, over [start, end] (epoch seconds)."""
        own = tree = 0
        previous = self.samples[0][0] if self.samples else start
        for t, hwm, kids in self.samples:
            if t >= start and previous <= end:
                own, tree = max(own, hwm), max(tree, hwm + kids)
            previous = t
        return {"peak_rss_mib": round(own / 1024, 1), "peak_with_children_mib": round(tree / 1024, 1)}


# ================================================================ one run (child process)

def _epoch(naive_utc) -> float:
    import pandas as pd

    stamp = pd.Timestamp(naive_utc)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.timestamp()


def _stage_rows(stage: str, counts: dict) -> int | None:
    """The rows a stage works through, for rows per second."""
    if stage.startswith("extract:"):
        return sum(v for k, v in counts.items() if isinstance(v, int))
    if stage == "validate:staging":
        return sum(v["rows_in"] for v in counts.values() if isinstance(v, dict) and "rows_in" in v)
    if stage == "reconcile":
        return counts.get("customer_records")
    if stage == "enrich":
        return counts.get("ledger_lines")
    if stage.startswith("push:"):
        return counts.get("profiles_ready")
    return counts.get("rows_in")


def child(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text())
    var_dir = Path(spec["var_dir"])
    from erp2crm import local

    local.configure(var_dir, spec["connections"], log_level="WARNING")
    t = time.perf_counter()
    local.init_airflow_db()
    airflow_init_s = time.perf_counter() - t
    import pendulum

    sampler = RssSampler()
    sampler.start()
    t0 = time.time()
    dag = local.load_dag(DAG_ID)
    t1 = time.time()
    dag_run = dag.test(logical_date=pendulum.parse(spec["logical_date"]), run_conf=spec["conf"])
    t2 = time.time()
    sampler.stop()

    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from erp2crm.pipeline import hub_store

    hub = hub_store()
    stages = hub.stages(dag_run.run_id)
    run = hub.run(dag_run.run_id) or {}
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == DAG_ID,
                                                 TaskInstance.run_id == dag_run.run_id).all()
        tasks = [{"task": ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""), "state": str(ti.state),
                  "start": ti.start_date.timestamp() if ti.start_date else None,
                  "end": ti.end_date.timestamp() if ti.end_date else None} for ti in tis]
    out_stages = []
    for row in stages.itertuples(index=False):
        start, end = _epoch(row.started_at), _epoch(row.finished_at)
        rows = _stage_rows(row.stage, row.counts)
        out_stages.append({"stage": row.stage, "duration_s": float(row.duration_s), "start": start, "end": end,
                           "rows": rows, "rows_per_s": round(rows / row.duration_s) if rows and row.duration_s else None,
                           **sampler.peak(start, end), "counts": row.counts})
    for task in tasks:
        if task["start"] and task["end"]:
            task["duration_s"] = round(task["end"] - task["start"], 3)
            task.update(sampler.peak(task["start"], task["end"]))
    result = {
        "label": spec["label"], "run_id": dag_run.run_id, "airflow_state": str(dag_run.state),
        "hub_status": run.get("status"), "wall_s": round(t2 - t1, 3), "dag_parse_s": round(t1 - t0, 3),
        "airflow_db_init_s": round(airflow_init_s, 1), "started": t1, "finished": t2,
        "stage_sum_s": round(sum(s["duration_s"] for s in out_stages), 3), "stages": out_stages,
        "tasks": sorted(tasks, key=lambda x: x["start"] or 0),
        "memory": {"method": "RssSampler: VmHWM every 50 ms with the high-water mark reset after each read "
                             "(/proc/self/clear_refs), children's Private_Clean+Private_Dirty every 250 ms",
                   "rss_reset_supported": sampler.reset_ok, **sampler.peak(t1, t2), "samples": len(sampler.samples)},
        "summary": run.get("summary"),
    }
    Path(spec["result"]).write_text(json.dumps(result, indent=2, default=str))
    return 0 if result["airflow_state"] == "success" else 1


# ================================================================ the driver

class Emulator:
    """The Salesforce emulator in a process of its own (`python -m emulators.salesforce`)."""

    def __init__(self, log_file: Path):
        self.token = secrets.token_urlsafe(24)
        env = {**os.environ, "SALESFORCE_EMULATOR_TOKEN": self.token, "PYTHONUNBUFFERED": "1"}
        self.log = open(log_file, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "emulators.salesforce", "--port", "0",
                                      "--daily-limit", "1000000000"], cwd=_common.REPO_ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the Salesforce emulator did not start: {line!r} (see {log_file})")
        self.url = line.split("listening on", 1)[1].split()[0]

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/__emulator__/stats", timeout=30) as r:
            return json.loads(r.read())

    def peak_rss_mib(self) -> float:
        return round(_status_kib(str(self.proc.pid)).get("VmHWM", 0) / 1024, 1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _connections(var_dir: Path, erp: dict[str, dict], hub: dict, crm: Emulator) -> dict:
    conns = {f"{s}_default": erp[s] for s in data.SYSTEMS}
    conns["erp2crm_hub"] = hub
    conns["salesforce_default"] = {"conn_type": "http", "host": crm.url, "password": crm.token,
                                   "extra": {"api_version": "v60.0"}}
    return conns


def _run_child(var_dir: Path, label: str, connections: dict, logical_date: datetime, conf: dict,
               profile: bool = False) -> dict:
    spec = {"var_dir": str(var_dir), "label": label, "connections": connections, "conf": conf,
            "logical_date": logical_date.isoformat(), "result": str(var_dir / f"result_{label}.json")}
    spec_path = var_dir / f"spec_{label}.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    out = var_dir / f"child_{label}.log"
    load_before = os.getloadavg()
    probe_before = _common.cpu_probe_s()
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)]
    if profile:  # py-spy from outside the process, 100 samples/s, forked workers included
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if not py_spy:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy (not in requirements.lock)")
        command = [py_spy, "record", "--format", "raw", "--rate", "100", "--subprocesses", "--threads", "--output",
                   str(var_dir / f"profile_{label}.txt"), "--", *command]
    with open(out, "w") as f:
        code = subprocess.call(command, cwd=_common.REPO_ROOT, stdout=f, stderr=subprocess.STDOUT)
    result_file = Path(spec["result"])
    if not result_file.exists():
        raise RuntimeError(f"run {label} failed (exit {code}) before writing its result; see {out}")
    result = json.loads(result_file.read_text())
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["cpu_probe_s"] = {"before": probe_before, "after": _common.cpu_probe_s()}
    result["exit_code"] = code
    if code:
        log(f"run {label}: Airflow state {result['airflow_state']} (exit {code}); see {out}")
    return result


def _push_stage(result: dict) -> dict:
    return next((s["counts"] for s in result["stages"] if s["stage"].startswith("push:")), {})


def _hub_frames(url: str) -> tuple:
    """Profiles (customer id → profile JSON), push state (customer id → payload hash) and the crosswalk."""
    from hub import HubStore

    hub = HubStore(url)
    profiles = hub.read_table("profiles")
    state = hub.read_table("push_state")
    crosswalk = hub.read_table("crosswalk")
    hub.engine.dispose()
    return (dict(zip(profiles["customer_id"], profiles["profile"])), dict(zip(state["customer_id"], state["payload_hash"])),
            crosswalk)


def _incremental_checks(before: tuple, after: tuple, changes: dict, push: dict, target) -> dict:
    """What the incremental run sent against what changed in the sources and in the profiles."""
    import json as _json

    from connectors.outbound import build_payload, load_outbound, payload_hash

    profiles_before, hashes_before, _ = before
    profiles_after, _, crosswalk = after
    keys = set()
    for system, change in changes.items():
        for kind in ("new_order_customers", "address_customers", "paid_invoice_customers"):
            keys |= {(system, str(k)) for k in change[kind]}
    cw = crosswalk.assign(key=list(zip(crosswalk["source_system"], crosswalk["source_id"].astype(str))))
    touched = set(cw.loc[cw["key"].isin(keys), "customer_id"])
    changed_profiles = {c for c, p in profiles_after.items() if profiles_before.get(c) != p}
    mapping = load_outbound(target.mapping_path)
    changed_payloads = {c for c in profiles_after
                        if hashes_before.get(c) != payload_hash(build_payload(mapping, c, _json.loads(profiles_after[c])))}
    sent = push.get("sent", 0)
    batch = target.batch_size
    bulk = target.bulk_threshold is not None and sent >= target.bulk_threshold
    calls = push.get("api_calls")
    retired = push.get("to_retire", 0) or 0  # merged-away customers' records, flagged by an upsert of their own
    expected = None if bulk else math.ceil(sent / batch) + math.ceil(retired / batch)
    return {
        "source_changes": {s: {k: v for k, v in c.items() if not k.endswith("_customers")} for s, c in changes.items()},
        "changed_source_keys": len(keys),
        "touched_customers": len(touched),
        "changed_profiles": len(changed_profiles),
        "changed_profiles_of_untouched_customers": len(changed_profiles - touched),
        "changed_payloads": len(changed_payloads),
        "sent": sent, "unchanged": push.get("unchanged"), "to_retire": push.get("to_retire"),
        "api_calls": calls, "batch_size": batch, "bulk_threshold": target.bulk_threshold,
        "mode": "bulk" if bulk else "collections",
        "expected_calls": expected if not bulk else f"one Bulk API job per 100,000 records: {math.ceil(sent / 100_000)} job(s)",
        "expected_calls_rule": "ceil(sent / batch_size) + ceil(retired / batch_size)",
        "checks": {"sent_equals_changed_payloads": sent == len(changed_payloads),
                   "calls_as_expected": (calls == expected) if not bulk else None},
        "note": "A profile can change without its own data changing: segments are relative (most_valuable is the "
                "top share by net value), so customers near a threshold move when others' values do.",
    }


def bench_once(args, dataset: data.Dataset, templates: dict | None, index: int, root: Path) -> dict:
    var_dir = root / f"run{index}"
    shutil.rmtree(var_dir, ignore_errors=True)
    (var_dir / "erp").mkdir(parents=True)
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    as_of = today.isoformat()  # the same instant for both runs: a profile changes only when its data did
    erp_urls, databases = {}, []
    if args.db == "postgres":
        erp = {}
        for system in data.SYSTEMS:
            name = f"e2c_bench_run_{system}"
            erp_urls[system] = data.pg_fresh(name, templates[system])
            erp[system] = data.pg_connection(name)
            databases.append(name)
        data.pg_fresh("e2c_bench_run_hub")
        databases.append("e2c_bench_run_hub")
        hub_conn, hub_url = data.pg_connection("e2c_bench_run_hub"), f"{data.PG_SERVER}/e2c_bench_run_hub"
    else:
        erp = {}
        for system in data.SYSTEMS:
            shutil.copy2(dataset.folder / f"{system}.db", var_dir / "erp" / f"{system}.db")
            erp[system] = {"conn_type": "sqlite", "host": str(var_dir / "erp" / f"{system}.db")}
            erp_urls[system] = f"sqlite:///{var_dir / 'erp' / f'{system}.db'}"
        hub_conn = {"conn_type": "sqlite", "host": str(var_dir / "hub.db")}
        hub_url = f"sqlite:///{var_dir / 'hub.db'}"
    crm = Emulator(var_dir / "emulator.log")
    try:
        connections = _connections(var_dir, erp, hub_conn, crm)
        log(f"run {index}: full sync ({args.scale}, {args.db})")
        full = _run_child(var_dir, "full", connections, today - timedelta(days=2), {"full_refresh": True, "as_of": as_of},
                          args.profile)
        full["emulator_stats"] = crm.stats()
        log(f"run {index}: full sync {full['airflow_state']} in {full['wall_s']:.1f} s")
        out = {"full": full}
        if args.incremental and full["airflow_state"] == "success":
            before = _hub_frames(hub_url)
            when = today - timedelta(hours=12)  # yesterday noon UTC: inside the next run's window
            t = time.perf_counter()
            changes = data.apply_changes(erp_urls, CHANGE_SHARE, when, args.seed + index)
            change_s = time.perf_counter() - t
            log(f"run {index}: changed 1 % of the source rows in {change_s:.1f} s; incremental sync")
            calls_before = crm.stats()
            inc = _run_child(var_dir, "incremental", connections, today, {"full_refresh": False, "as_of": as_of},
                             args.profile)
            inc["emulator_stats"] = crm.stats()
            inc["emulator_requests"] = inc["emulator_stats"]["requests"] - calls_before["requests"]
            inc["change_s"] = round(change_s, 1)
            from erp2crm.config import load_config

            target = load_config(_common.REPO_ROOT / "config" / "erp2crm.yaml").target("salesforce")
            inc["checks"] = _incremental_checks(before, _hub_frames(hub_url), changes, _push_stage(inc), target)
            log(f"run {index}: incremental {inc['airflow_state']} in {inc['wall_s']:.1f} s, "
                f"sent {inc['checks']['sent']}, calls {inc['checks']['api_calls']}")
            out["incremental"] = inc
        out["emulator_peak_rss_mib"] = crm.peak_rss_mib()
    finally:
        crm.stop()
        for name in databases if not args.keep else []:
            data.pg_drop(name)
    if args.profile:
        import _sync_profile

        for label in ("full", "incremental"):
            raw = var_dir / f"profile_{label}.txt"
            if raw.exists():
                out[f"profile_{label}"] = _sync_profile.analyse([raw])
    if not args.keep:
        for child in ("erp", "hub.db", "airflow", "reports", "landing"):
            path = var_dir / child
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return out


# ================================================================ summary and report

def _median_run(runs: list[dict]) -> dict:
    """Medians over the runs: wall time, per stage time and peak, per target API calls."""
    ok = [r for r in runs if r["airflow_state"] == "success"]
    if not ok:
        return {}
    stage_names = list(dict.fromkeys(s["stage"] for r in ok for s in r["stages"]))
    stages = {}
    for name in stage_names:
        per = [next(s for s in r["stages"] if s["stage"] == name) for r in ok if any(s["stage"] == name for s in r["stages"])]
        duration = statistics.median(s["duration_s"] for s in per)
        rows = per[0]["rows"]
        stages[name] = {"duration_s": round(duration, 3), "runs_s": [s["duration_s"] for s in per],
                        "peak_rss_mib": round(statistics.median(s["peak_rss_mib"] for s in per), 1),
                        "peak_with_children_mib": round(statistics.median(s["peak_with_children_mib"] for s in per), 1),
                        "rows": rows, "rows_per_s": round(rows / duration) if rows and duration else None}
    pushes = {s["stage"].split(":", 1)[1]: s for r in ok[:1] for s in r["stages"] if s["stage"].startswith("push:")}
    wall = statistics.median(r["wall_s"] for r in ok)
    read = sum(v for n, s in stages.items() if n.startswith("extract:") for v in [s["rows"] or 0])
    return {
        "wall_s": round(wall, 2), "runs_wall_s": [r["wall_s"] for r in ok],
        "stage_sum_s": round(statistics.median(r["stage_sum_s"] for r in ok), 2),
        "airflow_overhead_s": round(statistics.median(r["wall_s"] - r["stage_sum_s"] for r in ok), 2),
        "peak_rss_mib": round(statistics.median(r["memory"]["peak_rss_mib"] for r in ok), 1),
        "peak_with_children_mib": round(statistics.median(r["memory"]["peak_with_children_mib"] for r in ok), 1),
        "source_rows_read": read, "source_rows_per_s": round(read / wall) if wall else None,
        "stages": stages,
        "api_calls": {t: statistics.median(next(s["counts"]["api_calls"] for s in r["stages"] if s["stage"] == f"push:{t}")
                                           for r in ok) for t in pushes},
        "sent": {t: s["counts"].get("sent") for t, s in pushes.items()},
    }


def summarise(args, dataset: data.Dataset, pg_load_s, runs: list[dict]) -> dict:
    full = [r["full"] for r in runs]
    inc = [r["incremental"] for r in runs if "incremental" in r]
    payload = {
        "benchmark": "sync_bench", "scale": args.scale, "db": args.db, "date": _common.now_iso(), "seed": args.seed,
        "data": {"key": dataset.key, "folder": str(dataset.folder.relative_to(_common.REPO_ROOT)),
                 "generator": "demodata.scale.generate_at_scale", "shape": data.SHAPE.__dict__,
                 "counts": data.totals(dataset.counts), "counts_per_system": dataset.counts,
                 "generation_s": dataset.generation_s, "postgres_load_s": pg_load_s},
        "full": {"median": _median_run(full), "runs": full},
        "machine": _common.machine_info(),
        "versions": _common.library_versions("apache-airflow", "pandas", "SQLAlchemy", "psycopg", "splink", "duckdb",
                                             "great_expectations"),
        "emulator_peak_rss_mib": [r.get("emulator_peak_rss_mib") for r in runs],
        "notes": "Shared 2-core machine: other work (tests, other sessions) may run at the same time; load averages "
                 "before and after each run are recorded per run.",
    }
    if inc:
        med = _median_run(inc)
        full_wall = payload["full"]["median"].get("wall_s")
        payload["incremental"] = {"median": med, "runs": inc, "checks": [r["checks"] for r in inc],
                                  "share_of_full": round(med["wall_s"] / full_wall, 3) if med and full_wall else None}
    payload["targets"] = _targets(payload)
    return payload


def _targets(payload: dict) -> dict:
    full = payload["full"]["median"]
    out = {}
    if payload["scale"] == "medium" and full:
        out["medium_full_le_180s"] = {"target": "≤ 180 s", "measured": full["wall_s"], "met": full["wall_s"] <= 180}
        peak = max(full["peak_with_children_mib"], full["peak_rss_mib"]) / 1024
        out["medium_peak_le_6gb"] = {"target": "≤ 6 GiB", "measured_gib": round(peak, 2), "met": peak <= 6}
    inc = payload.get("incremental")
    if inc and inc.get("share_of_full") is not None:
        out["incremental_le_15pct_of_full"] = {"target": "≤ 15 % of the full run", "measured": inc["share_of_full"],
                                               "met": inc["share_of_full"] <= 0.15}
        checks = inc["checks"][0]["checks"]
        out["incremental_sends_only_changed"] = {"met": checks["sent_equals_changed_payloads"]}
        out["incremental_calls_equal_ceil"] = {"met": checks["calls_as_expected"]}
    if payload["scale"] == "large" and full:
        medium = _load_result("medium", payload["db"])
        if medium and medium["full"]["median"]:
            ratio = full["wall_s"] / medium["full"]["median"]["wall_s"]
            out["large_over_medium_le_3_5"] = {"target": "≤ 3.5×", "measured": round(ratio, 2), "met": ratio <= 3.5}
    return out


def _result_path(scale: str, db: str) -> Path:
    return _common.RESULTS_DIR / f"{NAME}_{scale}_{db}.json"


def _load_result(scale: str, db: str) -> dict | None:
    path = _result_path(scale, db)
    return json.loads(path.read_text()) if path.exists() else None


def _fmt_s(x) -> str:
    return "–" if x is None else f"{x:,.1f} s" if x >= 10 else f"{x:.2f} s"


def _fmt_mib(x) -> str:
    return "–" if x is None else f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:,.0f} MiB"


def render_table() -> str:
    """The Markdown for bench/README.md from every bench/results/sync_*.json."""
    lines = []
    results = [r for s in SCALES for db in ("sqlite", "postgres") if (r := _load_result(s, db))]
    if not results:
        return "No results yet: run `bench/sync_bench.py`.\n"
    lines += ["| scale | ERP + hub | data | full sync, end to end (median) | runs | stages sum / Airflow overhead | "
              "source rows/s | peak RSS (+ children) | API calls (salesforce) | incremental 1 % | machine | date |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f, c = r["full"]["median"], r["data"]["counts"]
        shape = (f"{c['customer_records']:,} customer records, {c['orders']:,} orders, {c['order_lines']:,} lines, "
                 f"{c['invoices']:,} invoices, {c['payments']:,} payments, {c['service_tickets']:,} tickets")
        if not f:
            lines.append(f"| {r['scale']} | {r['db']} | {shape} | failed | | | | | | | | {r['date'][:10]} |")
            continue
        inc = r.get("incremental")
        inc_text = "–"
        if inc and inc["median"]:
            ch = inc["checks"][0]
            inc_text = (f"{_fmt_s(inc['median']['wall_s'])} ({inc['share_of_full']:.0%} of full); sent {ch['sent']:,} of "
                        f"{ch['changed_payloads']:,} changed payloads, {ch['api_calls']} calls ({ch['mode']}"
                        + (f", expected {ch['expected_calls']}" if ch["mode"] == "collections" else "") + ")")
        m = r["machine"]
        calls = ", ".join(f"{t}: {n:g} for {f['sent'][t]:,} sent" for t, n in f["api_calls"].items())
        walls = ", ".join(f"{x:.1f}" for x in f["runs_wall_s"])
        cpu = " ".join(m["cpu_model"].split()[:2])
        lines.append(
            f"| {r['scale']} | {r['db']} | {shape} | **{_fmt_s(f['wall_s'])}** | {walls} | "
            f"{_fmt_s(f['stage_sum_s'])} / {_fmt_s(f['airflow_overhead_s'])} | {f['source_rows_per_s']:,} | "
            f"{_fmt_mib(f['peak_rss_mib'])} ({_fmt_mib(f['peak_with_children_mib'])}) | {calls} | {inc_text} | "
            f"{cpu}, {m['cpus_usable']} CPUs, {m['mem_total_gib']} GiB, Python {m['python']} | {r['date'][:10]} |")
    for r in results:
        f = r["full"]["median"]
        if not f:
            continue
        lines += ["", f"**{r['scale']}, {r['db']}: per stage** (median of {len(f['runs_wall_s'])} run(s); time inside "
                      "the pipeline call from the hub's run history; peak RSS of the run's process while the stage ran)", "",
                  "| stage | time | share | rows | rows/s | peak RSS | peak with children |", "|---|---|---|---|---|---|---|"]
        for name, s in f["stages"].items():
            rows = "–" if s["rows"] is None else f"{s['rows']:,}"
            rate = "–" if s["rows_per_s"] is None else f"{s['rows_per_s']:,}"
            lines.append(f"| {name} | {_fmt_s(s['duration_s'])} | {s['duration_s'] / f['wall_s']:.0%} | {rows} | {rate} | "
                         f"{_fmt_mib(s['peak_rss_mib'])} | {_fmt_mib(s['peak_with_children_mib'])} |")
        lines.append(f"| *outside the stage timers: Airflow (run loop, task start, XCom), begin and finish tasks* | "
                     f"{_fmt_s(f['airflow_overhead_s'])} | "
                     f"{f['airflow_overhead_s'] / f['wall_s']:.0%} | | | | |")
        inc = r.get("incremental")
        if inc and inc["median"]:
            im = inc["median"]
            lines += ["", f"Incremental run ({r['scale']}, {r['db']}), per stage: " + ", ".join(
                f"{n} {_fmt_s(s['duration_s'])}" for n, s in im["stages"].items())
                + f"; Airflow {_fmt_s(im['airflow_overhead_s'])}; peak {_fmt_mib(im['peak_rss_mib'])}."]
    targets = [(r["scale"], r["db"], k, v) for r in results for k, v in r.get("targets", {}).items()]
    if targets:
        lines += ["", "| target | scale, ERP | measured | met? |", "|---|---|---|---|"]
        for scale, db, k, v in targets:
            measured = v.get("measured", v.get("measured_gib", ""))
            measured = f"{measured:.0%} of the full run" if k.startswith("incremental_le") else measured
            lines.append(f"| {k} {v.get('target', '')} | {scale}, {db} | {measured} | "
                         f"{'yes' if v['met'] else 'n/a' if v['met'] is None else '**no**'} |")
    return "\n".join(lines) + "\n"


def update_readme() -> None:
    text = README.read_text()
    if BEGIN not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{render_table()}{END}{tail}")


# ================================================================ entry point

def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=SCALES, default="small")
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3 at small, 1 at medium and large); medians")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="where the ERPs and the hub live")
    ap.add_argument("--incremental", action="store_true", help="after each full run, change 1 %% and sync again")
    ap.add_argument("--records", type=int, default=None,
                    help="customer records instead of the scale's (same shape; for estimates between the scales: the "
                         "result goes to sync_records<N>_<db>.json and not into the README table)")
    ap.add_argument("--seed", type=int, default=7, help="demo data seed")
    ap.add_argument("--keep", action="store_true", help="keep each run's databases, hub and Airflow state")
    ap.add_argument("--no-readme", action="store_true", help="do not update the table in bench/README.md")
    ap.add_argument("--readme", action="store_true", help="only refresh the README table from the result files")
    ap.add_argument("--profile", action="store_true",
                    help="run under py-spy and report hot spots per stage (bench/results/sync_<scale>_<db>_profile.json; "
                         "the timings of a profiled run are not recorded as results)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return child(args.child)
    if args.readme:
        update_readme()
        return 0
    runs = args.runs or DEFAULT_RUNS[args.scale]
    if args.records:
        args.scale = f"records{args.records}"
        data.RECORDS[args.scale] = args.records
        args.no_readme = True
    dataset = data.prepare(args.scale, args.seed)
    templates, pg_load_s = (data.pg_templates(dataset) if args.db == "postgres" else (None, None))
    root = _common.REPO_ROOT / "var" / "bench" / "runs" / f"{args.scale}-{args.db}"
    results = []
    for i in range(1, runs + 1):
        results.append(bench_once(args, dataset, templates, i, root))
    if args.profile:
        import _sync_profile

        report = {k: r[k] for r in results for k in r if k.startswith("profile_")}
        path = _common.RESULTS_DIR / f"{NAME}_{args.scale}_{args.db}_profile.json"
        path.write_text(json.dumps({"scale": args.scale, "db": args.db, "date": _common.now_iso(),
                                    "wall_s": {k: r[k]["wall_s"] for r in results for k in ("full", "incremental") if k in r},
                                    "method": _sync_profile.__doc__.strip(), **report}, indent=2) + "\n")
        for label, rep in report.items():
            print(f"--- {label}\n{_sync_profile.render(rep)}")
        print(f"profile → {path}")
        return 0
    payload = summarise(args, dataset, pg_load_s, results)
    path = _result_path(args.scale, args.db)
    _common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if not args.no_readme:
        update_readme()
    f = payload["full"]["median"]
    if f:
        print(f"sync {args.scale} ({args.db}): full sync {f['wall_s']} s median of {f['runs_wall_s']}, "
              f"{f['source_rows_per_s']:,} source rows/s, peak {f['peak_rss_mib']} MiB "
              f"({f['peak_with_children_mib']} with children), API calls {f['api_calls']} → {path}")
    else:
        print(f"sync {args.scale} ({args.db}): every run failed; see {root}")
    inc = payload.get("incremental")
    if inc and inc["median"]:
        ch = inc["checks"][0]
        print(f"incremental: {inc['median']['wall_s']} s ({inc['share_of_full']:.0%} of full), sent {ch['sent']} of "
              f"{ch['changed_payloads']} changed payloads, {ch['api_calls']} calls ({ch['mode']}), checks {ch['checks']}")
    ok = bool(f) and all(r["full"]["airflow_state"] == "success" for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
