"""Test environment: Airflow on a throwaway SQLite database, configured before anything imports Airflow."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from erp2crm import local

_VAR = Path(tempfile.mkdtemp(prefix="erp2crm-tests-"))
atexit.register(shutil.rmtree, _VAR, ignore_errors=True)
local.configure(_VAR, {})
# Every DAG run in the session emits OpenLineage events through the Airflow provider, into one file.
OPENLINEAGE_EVENTS = _VAR / "openlineage" / "events.jsonl"
OPENLINEAGE_EVENTS.parent.mkdir()
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "erp2crm-tests"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True})


def pytest_sessionfinish(session, exitstatus):
    """Under dag.test() the OpenLineage listener emits DAG-run events from a process pool forked from this
    process, whose many threads (DuckDB, Arrow, HTTP servers) can leave a forked worker crashed in a loop; and the
    interpreter joins that pool at exit, so one such worker would hang the suite after its last test (seen once in
    CI: all tests passed, then no exit). The tests are over: stop the pool's workers without waiting for them."""
    import sys

    module = sys.modules.get("airflow.providers.openlineage.plugins.listener")
    executor = getattr(module.get_openlineage_listener(), "_executor", None) if module else None
    if executor is None:
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, created once per session (dag.test() needs its tables)."""
    local.init_airflow_db()
    return _VAR


@pytest.fixture(scope="session")
def sync_dag():
    return local.load_dag("erp_crm_customer_sync")


@pytest.fixture(scope="session")
def tryton():
    """A real Tryton 8.2 server with a seeded database (tests/servers/tryton.py). Skipped with its reason
    where the machine cannot run it, except under CI, where a missing real system fails the run."""
    from servers import tryton as harness

    yield from _real_server(harness, "real Tryton server")


@pytest.fixture(scope="module")
def bottlecrm():
    """A real BottleCRM server (tests/servers/bottlecrm.py), one per test module. Skipped with its reason where the
    machine cannot run it, except under CI."""
    from servers import bottlecrm as harness

    yield from _real_server(harness, "real BottleCRM server")


def _real_server(harness, what: str):
    """Start a harness's server for a fixture and stop it after; a server the machine cannot run is skipped
    here and fails the run under CI (servers.required)."""
    from servers.required import unavailable

    try:
        server = harness.start()
    except harness.Unavailable as e:
        unavailable(what, e)
    yield server
    harness.stop(server)
