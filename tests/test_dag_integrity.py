"""The DAG files parse without I/O or errors and declare what operators rely on."""
from __future__ import annotations

import socket

from airflow.dag_processing.dagbag import DagBag

from erp2crm.paths import ROOT


def _bag() -> DagBag:
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dags_import_without_errors():
    bag = _bag()
    assert bag.import_errors == {}
    assert "erp_crm_customer_sync" in bag.dags


def test_parsing_does_no_io(monkeypatch):
    """DAG files hold wiring only: parsing must not open network connections or read the config."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access during DAG parsing")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("ERP2CRM_CONFIG", "/nonexistent/erp2crm.yaml")  # a parse-time config read would fail
    bag = _bag()
    assert bag.import_errors == {}


def test_sync_dag_shape(sync_dag):
    dag = sync_dag
    assert dag.max_active_runs == 1
    assert not dag.catchup
    assert {"erp2crm", "sync"} <= set(dag.tags)
    assert set(dag.params.keys()) >= {"full_refresh", "as_of"}
    order = ["begin", "extract", "validate_staged", "reconcile", "validate_customers", "enrich",
             "validate_profiles", "push", "finish"]
    for upstream, downstream in zip(order, order[1:]):
        assert upstream in dag.get_task(downstream).upstream_task_ids or \
            any(upstream in dag.get_task(t).upstream_task_ids for t in dag.get_task(downstream).upstream_task_ids), \
            f"{upstream} must run before {downstream}"


def test_every_task_retries_with_backoff_except_finish(sync_dag):
    for task in sync_dag.tasks:
        if task.task_id == "finish":
            assert task.retries == 0 and task.trigger_rule == "all_done"
            continue
        assert task.retries >= 3, task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_extract_and_push_are_mapped_per_source_and_target(sync_dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(sync_dag.get_task("extract"), MappedOperator)
    assert isinstance(sync_dag.get_task("push"), MappedOperator)


def test_connection_check_dag_is_manual_and_never_retries():
    dag = _bag().dags["erp_crm_connection_check"]
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "Never, external triggers only")
    assert {t.task_id for t in dag.tasks} >= {"check_hub", "check_source", "check_target"}
    assert all(t.retries == 0 for t in dag.tasks)


def test_backfill_dag_is_manual_with_source_and_period_params():
    dag = _bag().dags["erp_crm_backfill"]
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "Never, external triggers only")
    assert dag.max_active_runs == 1
    assert {"source", "start", "end"} <= set(dag.params.keys())
    sync = _bag().dags["erp_crm_customer_sync"]
    assert {t.task_id for t in dag.tasks} == {t.task_id for t in sync.tasks}  # the same stages, one source
