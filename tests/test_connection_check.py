"""erp_crm_connection_check through real Airflow: every source, target and the hub store is reached with its
connection; a wrong token or a database without the mapped tables fails its own task with a clear error."""
from __future__ import annotations

import sqlite3

import pytest

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import connections
from erp2crm.errors import ConfigError
from erp2crm.pipeline import check_source, check_target

TOKEN = "check-token-3b9d"


@pytest.fixture(scope="module")
def erp(airflow_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("check") / "erp"
    generate(folder, n_customers=60, seed=3)
    return folder


def _states(dag_run) -> dict[str, str]:
    return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
            for ti in dag_run.get_task_instances()}


def test_all_connections_pass(erp, tmp_path):
    with SalesforceEmulator(token=TOKEN) as crm:
        local.configure(tmp_path, connections(tmp_path, erp, crm.url, TOKEN))
        dag_run = local.run_dag("erp_crm_connection_check")
        writes = len(crm.records("Account"))
    assert str(dag_run.state) == "success", _states(dag_run)
    states = _states(dag_run)
    assert states["check_hub"] == "success"
    assert [states[f"check_source[{i}]"] for i in range(3)] == ["success"] * 3
    assert states["check_target[0]"] == "success"
    assert writes == 0  # a check writes nothing to the CRM


def test_a_wrong_token_and_a_database_without_the_tables_fail_their_own_tasks(erp, tmp_path):
    conns = connections(tmp_path, erp, "http://127.0.0.1:1", "unused")
    sqlite3.connect(tmp_path / "empty.db").close()  # a database, but not Tryton's
    conns["tryton_default"] = {"conn_type": "sqlite", "host": str(tmp_path / "empty.db")}
    with SalesforceEmulator(token=TOKEN) as crm:
        conns["salesforce_default"]["host"] = crm.url
        conns["salesforce_default"]["password"] = "not-the-token"
        local.configure(tmp_path, conns)
        dag_run = local.run_dag("erp_crm_connection_check")
        # What the failed tasks said (the same calls the tasks make):
        with pytest.raises(ConfigError, match=r"tryton\.yaml: streams\.customer_record: table 'party_party' does not exist"):
            check_source("tryton")
        with pytest.raises(ConfigError, match="rejected the session"):
            check_target("salesforce")
    states = _states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["check_source[0]"] == "success" and states["check_source[1]"] == "success"  # odoo, erpnext
    assert states["check_source[2]"] == "failed" and states["check_target[0]"] == "failed"
    assert states["check_hub"] == "success"
