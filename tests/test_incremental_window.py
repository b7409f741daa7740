"""Incremental runs read on from each source's watermark, not only over their own data interval: rows changed
while the DAG was paused (runs skipped, catchup off) reach the CRM with the next run."""
from __future__ import annotations

import sqlite3

import pandas as pd
import pendulum

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.pipeline import hub_store

TOKEN = "incremental-secret-token-5be2"


def test_a_run_after_a_pause_reads_every_change_since_the_last_run(airflow_db, tmp_path):
    generate(tmp_path / "erp", n_customers=40, seed=21)
    with SalesforceEmulator(state_file=tmp_path / "crm.json", token=TOKEN) as crm:
        local.configure(tmp_path, connections(tmp_path, tmp_path / "erp", crm.url, TOKEN))
        now = pendulum.now("UTC")
        paused_at = now.subtract(days=5)
        first = local.load_dag("erp_crm_customer_sync").test(
            logical_date=paused_at, run_conf={"full_refresh": True, "as_of": DEMO_AS_OF})
        assert str(first.state) == "success"
        # While the DAG was paused, someone changed a partner's city in Odoo three days ago.
        changed_at = now.subtract(days=3).strftime("%Y-%m-%d %H:%M:%S")
        with sqlite3.connect(tmp_path / "erp" / "odoo.db") as con:
            partner = con.execute("SELECT id FROM res_partner WHERE active = 1 AND name IS NOT NULL "
                                  "ORDER BY id LIMIT 1").fetchone()[0]
            con.execute("UPDATE res_partner SET city = 'Paused City', write_date = ? WHERE id = ?",
                        (changed_at, partner))
        # The next run's own interval is today's; the change is older than its one-day look-back.
        second = local.load_dag("erp_crm_customer_sync").test(logical_date=now, run_conf={"as_of": DEMO_AS_OF})
        assert str(second.state) == "success"
        stages = hub_store().stages(second.run_id).set_index("stage")["counts"]
        assert pd.Timestamp(stages["extract:odoo"]["window_start"]) == pd.Timestamp(paused_at.subtract(hours=24))
        assert stages["extract:odoo"]["customer_record"] >= 1
        assert "Paused City" in {a.get("BillingCity") for a in crm.records("Account")}
