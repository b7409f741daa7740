"""The sync's stages as TaskFlow tasks, for the DAG files to wire. Each task is one call into
`erp2crm.pipeline` and passes the run id and counts through XCom, never data; importing this module does no I/O."""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, task

from erp2crm.alerts import task_failed

DEFAULT_ARGS = {
    "owner": "erp2crm",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "on_failure_callback": task_failed,  # a clear alert once a task has failed for good (log, optional webhook)
}

# What each gate has let through, in the hub store: other DAGs can be scheduled on them (schedule=[PROFILES]).
CUSTOMER_RECORDS = Asset(name="customer_records", uri="erp2crm://hub/customer_records", group="erp2crm")
UNIFIED_CUSTOMERS = Asset(name="unified_customers", uri="erp2crm://hub/unified_customers", group="erp2crm")
CUSTOMER_PROFILES = Asset(name="customer_profiles", uri="erp2crm://hub/customer_profiles", group="erp2crm")


@task
def begin(dag_fingerprint: str | None = None) -> dict:
    from erp2crm import pipeline, tasks
    w = tasks.window()
    return tasks.run(pipeline.begin_run, w["run_id"], w["dag_id"], w["window_start"], w["window_end"],
                     w["full_refresh"], w["sources"], dag_fingerprint)


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
    return tasks.run(pipeline.extract_source, run["run_id"], source, w["window_start"], w["window_end"],
                     w["full_refresh"], w["backfill"])


@task(outlets=[CUSTOMER_RECORDS])
def validate_staged(run: dict, extracted: list[dict]) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.validate_staged, run["run_id"])


@task
def reconcile(run: dict, staged: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.reconcile_customers, run["run_id"])


@task(outlets=[UNIFIED_CUSTOMERS])
def validate_customers(run: dict, reconciled: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.validate_customers, run["run_id"])


@task
def enrich(run: dict, validated: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.enrich_profiles, run["run_id"], tasks.window()["as_of"])


@task(outlets=[CUSTOMER_PROFILES])
def validate_profiles(run: dict, enriched: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.validate_profiles, run["run_id"])


@task(retries=5)
def push(target: str, run: dict, validated: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.push_target, run["run_id"], target)


# It fails only after a stage failed, which has alerted already: no second alert.
@task(trigger_rule="all_done", retries=0, on_failure_callback=None)
def finish(run: dict) -> dict:
    from erp2crm import pipeline, tasks
    return tasks.run(pipeline.finish_run, run["run_id"])


def sync(dag_fingerprint: str | None = None) -> None:
    """Extract every source of the run (one mapped task each), then gate, reconcile, enrich and push.
    `dag_fingerprint`: that of the generated DAG settings, so that each run can tell when they are stale."""
    run = begin(dag_fingerprint)
    extracted = extract.partial(run=run).expand(source=sources(run))
    staged = validate_staged(run, extracted)
    profiles_ok = validate_profiles(run, enrich(run, validate_customers(run, reconcile(run, staged))))
    pushed = push.partial(run=run, validated=profiles_ok).expand(target=targets(run))
    pushed >> finish(run)  # runs even when a stage failed, so that the run history says what happened
