"""The embedded default environment: Airflow on SQLite under var/, connections from environment variables,
and DAG runs through real Airflow (`dag.test()`), for the demo and the tests."""
from __future__ import annotations

import json
import os
from pathlib import Path

from erp2crm.paths import ROOT


def configure(var_dir: Path, connections: dict[str, dict], log_level: str | None = None) -> None:
    """Point Airflow at this repository's airflow.cfg and a state folder; define connections as
    AIRFLOW_CONN_* variables (Airflow's environment secrets backend). Call before importing Airflow models."""
    var_dir = Path(var_dir).resolve()
    (var_dir / "airflow").mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "ERP2CRM_HOME": str(ROOT), "ERP2CRM_VAR": str(var_dir),
        "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"), "AIRFLOW_HOME": str(var_dir / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{var_dir / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    })
    if log_level:  # the demo keeps Airflow's per-task INFO lines out of the summary it prints
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = log_level
    for conn_id, spec in connections.items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(spec)


def init_airflow_db() -> None:
    from airflow.utils.db import initdb

    initdb()


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def run_dag(dag_id: str, conf: dict | None = None):
    """One run through real Airflow (scheduler loop in-process, tasks through the task SDK)."""
    import pendulum

    return load_dag(dag_id).test(logical_date=pendulum.now("UTC"), run_conf=conf or {})
