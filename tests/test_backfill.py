"""erp_crm_backfill through real Airflow: one source re-read over a past period, exactly the rows whose last
change falls in it, pushed to the CRM, with the scheduled sync's watermark left alone."""
from __future__ import annotations

import sqlite3

import pytest

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.errors import ConfigError
from erp2crm.pipeline import begin_run, hub_store

TOKEN = "backfill-secret-token-93d1"


@pytest.fixture(scope="module")
def world(airflow_db, tmp_path_factory):
    var = tmp_path_factory.mktemp("backfill")
    generate(var / "erp", n_customers=80, seed=13)
    crm = SalesforceEmulator(state_file=var / "crm.json", token=TOKEN).start()
    local.configure(var, connections(var, var / "erp", crm.url, TOKEN))
    first = local.run_dag("erp_crm_customer_sync", {"as_of": DEMO_AS_OF, "full_refresh": True})
    assert str(first.state) == "success"
    yield {"var": var, "erp": var / "erp", "crm": crm, "sync_run": first.run_id}
    crm.stop()


def _in_period(db, table: str, start: str, end: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table} WHERE coalesce(write_date, create_date) >= ? "
                           f"AND coalesce(write_date, create_date) < ?", (start, end)).fetchone()[0]


def test_backfill_rereads_one_source_over_the_period_and_pushes_the_changes(world):
    # Three Odoo partners changed "in March" (as if the ERP had been restored from a backup), with new cities.
    with sqlite3.connect(world["erp"] / "odoo.db") as con:
        ids = [r[0] for r in con.execute("SELECT id FROM res_partner WHERE active = 1 AND name IS NOT NULL "
                                         "ORDER BY id LIMIT 3")]
        for n, partner in enumerate(ids):
            con.execute("UPDATE res_partner SET city = ?, write_date = ? WHERE id = ?",
                        (f"Backfill City {n}", f"2026-03-0{n + 2} 10:00:00", partner))
    expected = {t: _in_period(world["erp"] / "odoo.db", t, "2026-03-01", "2026-03-05")
                for t in ("res_partner", "sale_order", "account_move")}
    state_before = hub_store().read_table("source_state").set_index("source_system")["last_success_run_id"].to_dict()

    run = local.run_dag("erp_crm_backfill", {"source": "odoo", "start": "2026-03-01", "end": "2026-03-05",
                                             "as_of": DEMO_AS_OF})
    summary = hub_store().run(run.run_id)["summary"]
    assert str(run.state) == "success", summary
    assert set(summary["rows_read"]) == {"odoo"}  # the one source asked for
    read = summary["rows_read"]["odoo"]
    assert read["customer_record"] - summary["rows_rechecked"]["customer_record"] == expected["res_partner"] >= 3
    assert read["order"] - summary["rows_rechecked"]["order"] == expected["sale_order"]
    stages = hub_store().stages(run.run_id).set_index("stage")["counts"]
    assert stages["extract:odoo"]["window_start"].startswith("2026-03-01 00:00:00")  # no look-back
    # Only the changed customers' profiles are sent; the CRM now has the new cities.
    cities = {a.get("BillingCity") for a in world["crm"].records("Account")}
    assert {f"Backfill City {n}" for n in range(3)} <= cities
    assert 3 <= summary["crm_writes"] <= expected["res_partner"]
    # The scheduled sync's watermark is untouched.
    state_after = hub_store().read_table("source_state").set_index("source_system")["last_success_run_id"].to_dict()
    assert state_after == state_before


def test_backfill_of_an_unknown_source_or_an_empty_period_is_a_config_error(world):
    with pytest.raises(ConfigError, match="unknown source 'nope'; configured: odoo, erpnext, tryton"):
        begin_run("manual__x", "erp_crm_backfill", None, None, False, ["nope"])
    run = local.run_dag("erp_crm_backfill", {"source": "odoo", "start": "2026-03-05", "end": "2026-03-01"})
    assert str(run.state) == "failed"
