"""Test environment: Airflow on a throwaway SQLite database, configured before anything imports Airflow."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from erp2crm import local

_VAR = Path(tempfile.mkdtemp(prefix="erp2crm-tests-"))
atexit.register(shutil.rmtree, _VAR, ignore_errors=True)
local.configure(_VAR, {})


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, created once per session (dag.test() needs its tables)."""
    local.init_airflow_db()
    return _VAR


@pytest.fixture(scope="session")
def sync_dag():
    return local.load_dag("erp_crm_customer_sync")
