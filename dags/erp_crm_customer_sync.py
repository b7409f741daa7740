"""erp_crm_customer_sync: ERP orders, invoices and tickets → unified, enriched customer profiles → CRM.

Wiring only: every task is one call into `erp2crm.pipeline`; tasks pass the run id and counts through XCom,
never data. Sources and targets come from the configuration at run time (one mapped task each), so parsing
this file does no I/O.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, dag, task

DEFAULT_ARGS = {
    "owner": "erp2crm",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
}


@dag(
    dag_id="erp_crm_customer_sync",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["erp2crm", "sync"],
    params={
        "full_refresh": Param(False, type="boolean",
                              description="Read every source row, not only those changed in the data interval."),
        "as_of": Param(None, type=["null", "string"],
                       description="Compute profiles as of this UTC date or timestamp (default: end of the data interval)."),
    },
    doc_md=__doc__,
)
def erp_crm_customer_sync():
    @task
    def begin() -> dict:
        from erp2crm import pipeline, tasks
        w = tasks.window()
        return tasks.run(pipeline.begin_run, w["run_id"], w["dag_id"], w["window_start"], w["window_end"], w["full_refresh"])

    @task
    def sources(run: dict) -> list[str]:
        return run["sources"]

    @task
    def targets(run: dict) -> list[str]:
        return run["targets"]

    @task(max_active_tis_per_dagrun=4)
    def extract(source: str, run: dict) -> dict:
        from erp2crm import pipeline, tasks
        w = tasks.window()
        return tasks.run(pipeline.extract_source, run["run_id"], source, w["window_start"], w["window_end"], w["full_refresh"])

    @task
    def validate_staged(run: dict, extracted: list[dict]) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.validate_staged, run["run_id"])

    @task
    def reconcile(run: dict, staged: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.reconcile_customers, run["run_id"])

    @task
    def validate_customers(run: dict, reconciled: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.validate_customers, run["run_id"])

    @task
    def enrich(run: dict, validated: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.enrich_profiles, run["run_id"], tasks.window()["as_of"])

    @task
    def validate_profiles(run: dict, enriched: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.validate_profiles, run["run_id"])

    @task(retries=5)
    def push(target: str, run: dict, validated: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.push_target, run["run_id"], target)

    @task(trigger_rule="all_done", retries=0)
    def finish(run: dict) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.finish_run, run["run_id"])

    run = begin()
    extracted = extract.partial(run=run).expand(source=sources(run))
    staged = validate_staged(run, extracted)
    profiles_ok = validate_profiles(run, enrich(run, validate_customers(run, reconcile(run, staged))))
    pushed = push.partial(run=run, validated=profiles_ok).expand(target=targets(run))
    pushed >> finish(run)  # runs even when a stage failed, so that the run history says what happened


erp_crm_customer_sync()
