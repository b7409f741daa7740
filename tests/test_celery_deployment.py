"""The real deployment: the sync DAG run by the Airflow scheduler with CeleryExecutor (Redis broker, two Celery
workers, tasks through the api-server's Execution API), PostgreSQL as the Airflow metadata database and as the
hub store (tests/servers/airflow_celery.py). Triggered from the Airflow CLI like an operator would; checked in
the metadata database (run state, which worker ran each task), the hub store (run summary) and the CRM emulator.
Skipped with the reason where the machine has no PostgreSQL, Redis or celery provider, except under CI."""
from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest
from servers import airflow_celery as harness
from servers.required import unavailable

from erp2crm.demo import DEMO_AS_OF

RUN_TIMEOUT_S = 600
CONF = {"full_refresh": True, "as_of": DEMO_AS_OF}


@pytest.fixture(scope="module")
def deployment():
    try:
        dep = harness.start()
    except harness.Unavailable as e:
        unavailable("Celery deployment (PostgreSQL, Redis, celery provider)", e)
    print(f"\n[celery deployment] up in {dep.timings['startup_s']} s (airflow db migrate {dep.timings['migrate_s']} s)")
    yield dep
    if dep.hub_url in _HUBS:
        _HUBS.pop(dep.hub_url).engine.dispose()
    if dep.processes and any(p.poll() is None for p in dep.processes.values()):
        harness.stop(dep)


_HUBS: dict = {}


def _hub(dep):
    from hub import HubStore

    if dep.hub_url not in _HUBS:
        _HUBS[dep.hub_url] = HubStore(dep.hub_url)
    return _HUBS[dep.hub_url]


def _trigger_and_wait(dep, run_id: str) -> str:
    """Trigger one run with the Airflow CLI and wait for it to finish; its final state."""
    started = time.monotonic()
    # A plain trigger, as from the UI: no logical date, so no data interval (erp2crm.tasks.window() copes).
    dep.airflow("dags", "trigger", harness.DAG_ID, "--run-id", run_id, "--conf", json.dumps(CONF))
    deadline = started + RUN_TIMEOUT_S
    state = None
    while time.monotonic() < deadline:
        dep.check_alive()
        rows = dep.query("SELECT state FROM dag_run WHERE dag_id = %(d)s AND run_id = %(r)s",
                         {"d": harness.DAG_ID, "r": run_id})
        state = rows[0][0] if rows else None
        if state in ("success", "failed"):
            print(f"[celery deployment] run {run_id}: {state} in {time.monotonic() - started:.1f} s")
            if state != "success":
                print(_task_table(dep, run_id), dep.task_logs(run_id), dep.all_logs(), sep="\n")
            return state
        time.sleep(2)
    print(f"run {run_id} still {state} after {RUN_TIMEOUT_S} s", _task_table(dep, run_id), dep.task_logs(run_id),
          dep.all_logs(12000), sep="\n")
    pytest.fail(f"run {run_id} did not finish within {RUN_TIMEOUT_S} s (last state {state}); logs printed above")


def _task_table(dep, run_id: str) -> str:
    rows = dep.query("SELECT task_id, map_index, state, try_number, hostname, external_executor_id "
                     "FROM task_instance WHERE run_id = %(r)s ORDER BY start_date NULLS LAST", {"r": run_id})
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


@pytest.fixture(scope="module")
def first_run(deployment):
    deployment.airflow("dags", "unpause", harness.DAG_ID)
    run_id = "celery_full_refresh_1"
    return run_id, _trigger_and_wait(deployment, run_id), len(deployment.crm.records("Account"))


def test_a_triggered_run_succeeds_and_accounts_for_every_row(deployment, first_run):
    run_id, state, _ = first_run
    assert state == "success"
    out = deployment.airflow("dags", "list-runs", harness.DAG_ID, "-o", "json").stdout  # log lines, then the JSON
    listed = json.loads(next(line for line in out.splitlines() if line.startswith("[")))
    assert {r["run_id"]: r["state"] for r in listed}[run_id] == "success"
    summary = _hub(deployment).run(run_id)["summary"]  # the hub store on PostgreSQL, not the demo's SQLite file
    assert not (deployment.var / "hub.db").exists()
    assert summary["status"] == "success" and summary["rows_accounted"]
    for entity, n in summary["rows_in"].items():
        assert n > 0 and n == summary["rows_passed"][entity] + summary["rows_quarantined"][entity]
    read = {s: sum(c.values()) for s, c in summary["rows_read"].items()}
    assert set(read) == {"odoo", "erpnext", "tryton"}
    assert sum(read.values()) == sum(summary["rows_in"].values())
    # Every task ran once, through Celery (a Celery task id on each task instance), and succeeded.
    tis = deployment.query("SELECT task_id, map_index, state, try_number, external_executor_id FROM task_instance "
                           "WHERE run_id = %(r)s", {"r": run_id})
    assert {t[2] for t in tis} == {"success"}, _task_table(deployment, run_id)
    assert all(t[3] == 1 and t[4] for t in tis), _task_table(deployment, run_id)


def _received(dep, worker: str) -> set[str]:
    """The Celery task ids a worker's log says it received."""
    text = (dep.logs / f"{worker}.log").read_text(errors="replace")
    return set(re.findall(r"Task execute_workload\[([0-9a-f-]{36})\] received", text))


def test_tasks_ran_on_both_celery_workers(deployment, first_run):
    """Which worker ran each task instance: its Celery task id (task_instance.external_executor_id) and the
    worker named in the Celery result (celery_taskmeta.worker, in the metadata database), and in the workers' logs."""
    run_id, state, _ = first_run
    assert state == "success"
    rows = deployment.query(
        "SELECT ti.task_id, ti.map_index, ti.external_executor_id, m.worker FROM task_instance ti "
        "LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id WHERE ti.run_id = %(r)s", {"r": run_id})
    by_worker: dict[str | None, list[str]] = {}
    for task_id, map_index, _, worker in rows:
        by_worker.setdefault(worker, []).append(f"{task_id}[{map_index}]" if map_index >= 0 else task_id)
    print(f"[celery deployment] tasks per worker: {by_worker}")
    assert None not in by_worker, f"task instances without a Celery result: {by_worker[None]}"
    assert {w.split("@")[0] for w in by_worker} == set(harness.WORKERS)
    for worker in harness.WORKERS:  # the workers' own logs agree
        assert {r[2] for r in rows if r[3].split("@")[0] == worker} <= _received(deployment, worker)


def test_crm_holds_one_account_per_unified_customer(deployment, first_run):
    run_id, state, accounts_after_first = first_run
    assert state == "success"
    hub = _hub(deployment)
    summary = hub.run(run_id)["summary"]
    truth = pd.read_csv(deployment.erp / "ground_truth.csv", dtype=str)
    bad = pd.read_csv(deployment.erp / "bad_rows.csv", dtype=str).query("entity == 'customer_record'")
    bad_keys = set(bad["source_system"] + ":" + bad["source_id"])
    truth["key"] = truth["source_system"] + ":" + truth["source_id"]
    expected = {frozenset(g) for _, g in truth[~truth["key"].isin(bad_keys)].groupby("true_customer_id")["key"]}
    accounts = deployment.crm.records("Account")
    assert len(accounts) == accounts_after_first
    got = [frozenset(json.loads(a["ERP2CRM_Source_Ids__c"])) for a in accounts]
    assert len(got) == len(set(got)), "two CRM records for the same source records"
    assert set(got) == expected
    ids = {a["ERP2CRM_Customer_Id__c"] for a in accounts}
    assert len(ids) == len(accounts)
    assert ids == set(hub.read_table("customers")["customer_id"])
    assert summary["profiles_pushed"] == summary["crm_writes"] == len(accounts)


def test_a_second_triggered_run_writes_nothing_to_the_crm(deployment, first_run):
    before = {a["ERP2CRM_Customer_Id__c"]: a for a in deployment.crm.records("Account")}
    writes_before = deployment.crm.stats["records_created"] + deployment.crm.stats["records_updated"]
    run_id = "celery_full_refresh_2"
    assert _trigger_and_wait(deployment, run_id) == "success"
    summary = _hub(deployment).run(run_id)["summary"]
    assert summary["status"] == "success"
    assert summary["crm_writes"] == 0 and summary["profiles_pushed"] == 0
    assert summary["crm_unchanged"] == len(before)
    assert {a["ERP2CRM_Customer_Id__c"]: a for a in deployment.crm.records("Account")} == before
    assert deployment.crm.stats["records_created"] + deployment.crm.stats["records_updated"] == writes_before


def test_the_deployment_stops_cleanly(deployment):
    if deployment.hub_url in _HUBS:
        _HUBS.pop(deployment.hub_url).engine.dispose()
    pids = {name: p.pid for name, p in deployment.processes.items()}
    killed = harness.stop(deployment)
    assert killed == [], f"needed SIGKILL: {killed}"
    assert all(p.poll() is not None for p in deployment.processes.values()), pids
    assert harness._marked(deployment.env["ERP2CRM_TEST_DEPLOYMENT"]) == []
