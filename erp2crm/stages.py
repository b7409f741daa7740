"""The sync's stages as TaskFlow tasks, for the DAG files to wire. Each task is one call into
`erp2crm.pipeline` and passes the run id and counts through XCom, never data; importing this module does no I/O."""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import task

DEFAULT_ARGS = {
    "owner": "erp2crm",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
}


@task
def begin() -> dict:
    from erp2crm import pipeline, tasks
    w = tasks.window()
    return tasks.run(pipeline.begin_run, w["run_id"], w["dag_id"], w["window_start"], w["window_end"],
                     w["full_refresh"], w["sources"])


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


def sync() -> None:
    """Extract every source of the run (one mapped task each), then gate, reconcile, enrich and push."""
    run = begin()
    extracted = extract.partial(run=run).expand(source=sources(run))
    staged = validate_staged(run, extracted)
    profiles_ok = validate_profiles(run, enrich(run, validate_customers(run, reconcile(run, staged))))
    pushed = push.partial(run=run, validated=profiles_ok).expand(target=targets(run))
    pushed >> finish(run)  # runs even when a stage failed, so that the run history says what happened
