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


# --- DAGs generated from the configuration ------------------------------------------------------------------
def test_shipped_generated_dag_settings_match_the_shipped_config():
    from erp2crm.config import load_config
    from erp2crm.dagconfig import GENERATED, generated, stale
    from erp2crm.paths import CONFIG

    assert stale(load_config(CONFIG / "erp2crm.yaml"), generated(GENERATED).FINGERPRINT) is None, \
        "run `erp2crm dags generate` and commit dags/erp2crm_dag_config.py"


def _dags_generated_from(tmp_path, config: dict):
    """A copy of the DAG folder, generated from `config` the way a user does it, then parsed."""
    import shutil

    import yaml
    from click.testing import CliRunner

    from erp2crm.cli import main

    folder = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", folder, ignore=shutil.ignore_patterns("__pycache__", "erp2crm_dag_config.py"))
    config_file = tmp_path / "erp2crm.yaml"
    config_file.write_text(yaml.safe_dump(config))
    import erp2crm.dagconfig as dagconfig
    out = dagconfig.generate(config_file, folder / dagconfig.GENERATED.name)
    assert out.exists()
    check = CliRunner().invoke(main, ["dags", "check", "--config", str(config_file)])
    return DagBag(dag_folder=str(folder)), check


def test_schedule_start_date_and_sources_come_from_the_configuration(tmp_path):
    config = {"schedule": "30 2 * * 1-5", "start_date": "2026-03-01",
              "sources": [{"name": "odoo"}, {"name": "dolibarr"}],
              "targets": [{"name": "hubspot", "kind": "hubspot"}]}
    bag, check = _dags_generated_from(tmp_path, config)
    assert bag.import_errors == {}
    sync = bag.dags["erp_crm_customer_sync"]
    assert sync.schedule == "30 2 * * 1-5"  # the cron from the config, as given
    assert sync.start_date.isoformat().startswith("2026-03-01")
    backfill = bag.dags["erp_crm_backfill"]
    assert backfill.params.get_param("source").schema["examples"] == ["odoo", "dolibarr"]
    # The repository's own generated file was made from another configuration: the check says it is stale.
    assert check.exit_code == 1 and "erp2crm dags generate" in check.output


def test_manual_only_schedule(tmp_path):
    bag, _ = _dags_generated_from(tmp_path, {"schedule": None, **{k: v for k, v in {
        "sources": [{"name": "odoo"}], "targets": [{"name": "salesforce", "kind": "salesforce"}]}.items()}})
    assert bag.import_errors == {}
    assert bag.dags["erp_crm_customer_sync"].schedule is None


def test_missing_generated_settings_say_how_to_make_them(tmp_path):
    import shutil

    folder = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", folder, ignore=shutil.ignore_patterns("__pycache__", "erp2crm_dag_config.py"))
    bag = DagBag(dag_folder=str(folder))
    errors = "\n".join(bag.import_errors.values())
    assert "erp_crm_customer_sync.py" in "\n".join(bag.import_errors) and "erp2crm dags generate" in errors


def test_a_run_with_stale_generated_settings_is_logged(caplog):
    from erp2crm.config import load_config
    from erp2crm.dagconfig import check_generated, dag_settings, fingerprint
    from erp2crm.paths import CONFIG

    config = load_config(CONFIG / "erp2crm.yaml")
    with caplog.at_level("WARNING"):
        check_generated(config, fingerprint(dag_settings(config)))
    assert caplog.records == []
    changed = config.model_copy(update={"schedule": "@hourly"})
    with caplog.at_level("WARNING"):
        check_generated(changed, fingerprint(dag_settings(config)))
    assert "erp2crm dags generate" in caplog.text
