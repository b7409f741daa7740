"""An incremental run with the same as_of recomputes only the profiles its changes reach, and ends with exactly the
profiles a full recompute gives: a new invoice, an order moved to another customer, a changed order line, a moved
customer, a document whose new version is quarantined (its old owner loses it), and the customers whose
`most_valuable` place the new invoice pushes out, though none of their own data changed."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import yaml

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.paths import CONFIG
from erp2crm.pipeline import hub_store

TOKEN = "incremental-enrich-token-31c9"


def _profiles() -> dict[str, dict]:
    stored = hub_store().read_table("profiles", ["customer_id", "profile"])
    return {c: json.loads(p) for c, p in zip(stored["customer_id"], stored["profile"])}


def _run(**conf) -> tuple[dict, dict]:
    dag_run = local.run_dag("erp_crm_customer_sync", {"as_of": DEMO_AS_OF, **conf})
    assert str(dag_run.state) == "success"
    stages = hub_store().stages(dag_run.run_id).set_index("stage")["counts"]
    return stages["enrich"], stages["push:salesforce"]


def _partner(customer_id: str) -> int:
    """The customer's Odoo partner id."""
    crosswalk = hub_store().read_table("crosswalk")
    rows = crosswalk[(crosswalk["customer_id"] == customer_id) & (crosswalk["source_system"] == "odoo")]
    return int(rows["source_id"].iloc[0])


def _copy_row(con: sqlite3.Connection, table: str, row_id: int, **changes) -> int:
    con.row_factory = sqlite3.Row
    row = dict(con.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone())
    row.update(id=con.execute(f"SELECT MAX(id) + 1 FROM {table}").fetchone()[0], **changes)
    con.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return row["id"]


@pytest.fixture(scope="module")
def runs(airflow_db, tmp_path_factory):
    var = tmp_path_factory.mktemp("incremental_enrich")
    generate(var / "erp", n_customers=80, seed=5)
    config = yaml.safe_load((CONFIG / "erp2crm.yaml").read_text())
    config["quality"]["max_quarantine_share"] = 0.5  # the one orphaned order is a large share of a few changed rows
    (var / "erp2crm.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as patch, SalesforceEmulator(state_file=var / "crm.json", token=TOKEN) as crm:
        patch.setenv("ERP2CRM_CONFIG", str(var / "erp2crm.yaml"))
        local.configure(var, connections(var, var / "erp", crm.url, TOKEN))
        full = _run(full_refresh=True)
        before = _profiles()
        odoo_customers = set(hub_store().read_table("crosswalk").query("source_system == 'odoo'")["customer_id"])
        ranked = sorted((p for c, p in before.items() if c in odoo_customers and (p["net_value"] or 0) > 0),
                        key=lambda p: -p["net_value"])
        riser = next(p["customer_id"] for p in ranked if p["segment"] != "most_valuable")
        changed_at = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        touched = {riser}
        with sqlite3.connect(var / "erp" / "odoo.db") as con:
            invoice = con.execute("SELECT id FROM account_move WHERE move_type = 'out_invoice' AND state = 'posted' "
                                  "ORDER BY id LIMIT 1").fetchone()[0]
            # A big new invoice: the riser becomes the most valuable customer, and pushes the last one out.
            _copy_row(con, "account_move", invoice, partner_id=_partner(riser), amount_total=10_000_000.0,
                      amount_residual=0.0, payment_state="paid", invoice_date="2026-06-20",
                      invoice_date_due="2026-07-20", write_date=changed_at)
            orders = con.execute("SELECT o.id, o.partner_id FROM sale_order o WHERE o.state = 'sale' "
                                 "AND o.partner_id IN (SELECT id FROM res_partner WHERE parent_id IS NULL) "
                                 "ORDER BY o.id").fetchall()
            odoo = hub_store().read_table("crosswalk").query("source_system == 'odoo'")
            partners = {int(p): c for p, c in zip(odoo["source_id"], odoo["customer_id"])}
            (moved, old_owner), (_, new_owner) = orders[0], next(o for o in orders if o[1] != orders[0][1])
            con.execute("UPDATE sale_order SET partner_id = ?, write_date = ? WHERE id = ?", (new_owner, changed_at, moved))
            (line, line_order), = con.execute("SELECT id, order_id FROM sale_order_line WHERE order_id != ? "
                                              "ORDER BY id LIMIT 1", (moved,)).fetchall()
            con.execute("UPDATE sale_order_line SET price_subtotal = price_subtotal + 5000, write_date = ? WHERE id = ?",
                        (changed_at, line))
            line_owner = con.execute("SELECT partner_id FROM sale_order WHERE id = ?", (line_order,)).fetchone()[0]
            # An order whose new version names a partner Odoo does not have: held as orphan_customer, and gone
            # from its old owner's profile.
            orphaned, orphan_owner = next(o for o in orders[5:] if o[1] not in (old_owner, new_owner, line_owner))
            con.execute("UPDATE sale_order SET partner_id = 999999, write_date = ? WHERE id = ?", (changed_at, orphaned))
            mover = next(p for p in partners if p not in (old_owner, new_owner, line_owner, orphan_owner))
            con.execute("UPDATE res_partner SET city = 'Moved City', write_date = ? WHERE id = ?", (changed_at, mover))
        touched |= {partners[p] for p in (old_owner, new_owner, line_owner, orphan_owner, mover) if p in partners}
        incremental = _run()
        after = _profiles()
        pending_after = hub_store().read_table("changed_owners")
        again = _run(full_refresh=True)
        yield {"full": full, "incremental": incremental, "again": again, "before": before, "after": after,
               "recomputed": _profiles(), "touched": touched, "pending_after": pending_after}


def test_the_incremental_run_recomputes_only_what_its_changes_reach(runs):
    enrich, push = runs["incremental"]
    assert enrich["recomputed_because"] == "changed customers only"
    assert len(runs["touched"]) <= enrich["recomputed"] < enrich["profiles"] / 2
    assert push["sent"] >= len(runs["touched"]) - 1  # every touched customer's payload changed (one may only in lines)


def test_changes_wait_for_the_enrich_that_takes_them_in(runs):
    """Owners recorded by a run whose enrich never ran (it failed after its staging gate, or a quarantine replay)
    reach the next enrich; a run that could not record them one by one makes it recompute every profile."""
    from erp2crm import refresh

    assert runs["pending_after"].empty  # the incremental run's enrich took its own changes in
    hub = hub_store()
    customers = hub.read_table("customers")
    customers = customers[~customers["held"]].reset_index(drop=True)
    hashes = refresh.customer_hashes(customers)
    basis = hub.read_table("profiles")["basis"].iloc[0]
    crosswalk = hub.read_table("crosswalk", ["source_system", "source_id", "customer_id"])
    link = crosswalk.query("source_system == 'tryton'").iloc[0]
    assert refresh.scope(hub, "next", customers, hashes, basis, crosswalk).customer_ids.empty  # nothing changed since
    hub.record_changed_owners("failed-run", "service_ticket",
                              pd.DataFrame({"source_system": ["tryton"], "owner_id": [link["source_id"]]}))
    scope = refresh.scope(hub, "next", customers, hashes, basis, crosswalk)
    assert list(scope.customer_ids) == [link["customer_id"]] and scope.runs == {"failed-run"}
    hub.record_changed_owners("big-run", "*", pd.DataFrame({"source_system": ["*"], "owner_id": ["*"]}))
    everything = refresh.scope(hub, "next", customers, hashes, basis, crosswalk)
    assert everything.customer_ids is None and everything.runs == {"failed-run", "big-run"}
    hub.clear_changed_owners(everything.runs)
    assert hub.read_table("changed_owners").empty


def test_incremental_profiles_equal_a_full_recompute(runs):
    enrich, push = runs["again"]
    assert enrich["recomputed_because"] == "full refresh" and enrich["recomputed"] == enrich["profiles"]
    assert runs["after"] == runs["recomputed"]
    assert push["sent"] == 0  # nothing the incremental run sent was wrong, so nothing to correct


def test_a_rank_change_reaches_customers_whose_own_data_did_not_change(runs):
    before, after = runs["before"], runs["after"]
    pushed_out = {c for c in before if c in after and before[c]["segment"] == "most_valuable"
                  and after[c]["segment"] != "most_valuable"} - runs["touched"]
    assert pushed_out  # so the equality above covers reranking


def test_a_customer_hash_changes_with_every_column_a_profile_is_built_from():
    from erp2crm.refresh import CUSTOMER_COLUMNS, customer_hashes

    base = {c: "x" for c in CUSTOMER_COLUMNS}
    variants = [base, {**base, "city": None}, {**base, "city": "None"}, {**base, "city": ""},
                {**base, "is_company": True}, {**base, "is_company": False}]
    variants += [{**base, c: "y"} for c in CUSTOMER_COLUMNS]
    hashes = customer_hashes(pd.DataFrame(variants))
    assert hashes.nunique() == len(variants)
    assert customer_hashes(pd.DataFrame([base, {**base, "region": "elsewhere"}])).nunique() == 1  # not in a profile
