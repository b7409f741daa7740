"""Long local runs show their progress: one line per finished stage off a terminal (logs, CI), in the order
the stages finish, counted against the stages the run is expected to have."""
from __future__ import annotations

import io
import threading
import time

from erp2crm.progress import StageProgress, expected_stages
from hub import HubStore
from hub.store import utcnow


def test_each_finished_stage_is_reported_once_with_the_count(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = HubStore(url)
    hub.migrate()
    expected = expected_stages(["odoo", "erpnext"], ["salesforce"])
    assert len(expected) == 8
    out = io.StringIO()

    def run():  # a sync in another thread, as dag.test() runs one alongside the progress thread
        hub.start_run("manual__1", "erp_crm_customer_sync", utcnow(), utcnow(), False)
        for stage in ["extract:erpnext", "extract:odoo", "validate:staging"]:
            time.sleep(0.05)
            hub.record_stage("manual__1", stage, utcnow(), {})

    hub.start_run("old_run", "erp_crm_customer_sync", utcnow(), utcnow(), False)  # before: not this run's
    hub.record_stage("old_run", "extract:odoo", utcnow(), {})
    time.sleep(0.01)
    with StageProgress(url, expected, stream=out, interval_s=0.02):
        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
    assert out.getvalue().splitlines() == ["sync: extract:erpnext done (1/8)", "sync: extract:odoo done (2/8)",
                                           "sync: validate:staging done (3/8)"]
