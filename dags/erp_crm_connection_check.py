"""erp_crm_connection_check: can every configured source, target and the hub store be reached with its
Airflow connection? Run it after creating or rotating connections, before the first sync.

Each source connects and checks every table and column its mapping names (and counts rows); each CRM target
makes one authenticated call that writes nothing; the hub store is migrated to the latest schema. Nothing is
retried: a failure is a configuration problem to fix, named in the task's log.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag, task


@dag(
    dag_id="erp_crm_connection_check",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"owner": "erp2crm", "retries": 0},
    tags=["erp2crm", "operations"],
    doc_md=__doc__,
)
def erp_crm_connection_check():
    @task
    def endpoints() -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.list_endpoints)

    @task
    def sources(found: dict) -> list[str]:
        return found["sources"]

    @task
    def targets(found: dict) -> list[str]:
        return found["targets"]

    @task
    def check_hub() -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.check_hub)

    @task
    def check_source(source: str) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.check_source, source)

    @task
    def check_target(target: str) -> dict:
        from erp2crm import pipeline, tasks
        return tasks.run(pipeline.check_target, target)

    found = endpoints()
    check_hub()
    check_source.expand(source=sources(found))
    check_target.expand(target=targets(found))


erp_crm_connection_check()
