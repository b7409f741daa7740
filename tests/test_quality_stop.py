"""A source whose share of quarantined rows passes the threshold stops the run before anything is pushed,
through real Airflow; the run history says why and the DAG run is failed, not green."""
from __future__ import annotations

import pytest
import yaml

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.paths import CONFIG
from erp2crm.pipeline import hub_store


def test_too_many_bad_rows_stop_the_run_before_the_push(airflow_db, tmp_path, monkeypatch):
    erp = tmp_path / "erp"
    generate(erp, n_customers=60, seed=5)
    config = yaml.safe_load((CONFIG / "erp2crm.yaml").read_text())
    config["quality"]["max_quarantine_share"] = 0.0  # the demo's few bad rows are now too many
    path = tmp_path / "erp2crm.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("ERP2CRM_CONFIG", str(path))
    with SalesforceEmulator(token="t0ken-stop") as crm:
        local.configure(tmp_path, connections(tmp_path, erp, crm.url, "t0ken-stop"))
        dag_run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True, "as_of": DEMO_AS_OF})
        assert crm.records("Account") == [] and crm.stats["requests"] == 0

    assert str(dag_run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states["validate_staged"] == "failed" and states["reconcile"] == "upstream_failed"
    assert states["finish"] == "failed"  # ran, wrote the summary, and kept the run red
    summary = hub_store().run(dag_run.run_id)["summary"]
    assert summary["status"] == "failed" and summary["crm_writes"] == 0
    assert summary["rows_accounted"]  # held rows are still accounted for
    assert not hub_store().held_quarantine().empty


def test_stop_message_names_source_share_and_main_reasons():
    from erp2crm.errors import DataError
    from erp2crm.pipeline import _check_quarantine_share

    per_source = {"odoo": {"rows": 100, "held": 1, "reasons": {"negative_amount": 1}},
                  "tryton": {"rows": 50, "held": 10, "reasons": {"unknown_currency": 7, "missing_name": 2, "x": 1, "y": 0}}}
    _check_quarantine_share(per_source, 0.25)  # 20% is within the limit
    with pytest.raises(DataError) as err:
        _check_quarantine_share(per_source, 0.05)
    message = str(err.value)
    assert "source 'tryton': 10 of 50 rows (20.0%)" in message and "above the 5% limit" in message
    assert "unknown_currency (7), missing_name (2), x (1)" in message and "nothing was pushed" in message


def test_customer_gates_stop_the_run_above_their_own_threshold():
    from erp2crm.errors import DataError
    from erp2crm.pipeline import _check_held_share

    counts = {"rows_in": 200, "rows_quarantined": 12, "reasons": {"missing_name": 9, "malformed_email": 3}}
    _check_held_share("unified customers", counts, 0.10)  # 6% is within a 10% limit
    with pytest.raises(DataError) as err:
        _check_held_share("profiles", counts, 0.05)
    assert "12 of 200 profiles (6.0%)" in str(err.value) and "missing_name (9), malformed_email (3)" in str(err.value)
    _check_held_share("profiles", {"rows_in": 0, "rows_quarantined": 0, "reasons": {}}, 0.0)  # nothing to judge
