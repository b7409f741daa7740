"""The whole sync through real Airflow (dag.test()) on generated ERP databases, checked against the
generator's ground truth: the CRM ends with exactly one record per real customer, bad rows are held with
the right reason, a second identical run writes nothing, and a change in one ERP sends one update."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.canonical import ENTITIES
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.pipeline import hub_store

TOKEN = "e2e-secret-token-7f3a"


@pytest.fixture(scope="module")
def world(airflow_db, tmp_path_factory):
    var = tmp_path_factory.mktemp("e2e")
    erp = var / "erp"
    generate(erp, n_customers=120, seed=11)
    crm = SalesforceEmulator(state_file=var / "crm.json", token=TOKEN).start()
    local.configure(var, connections(var, erp, crm.url, TOKEN))
    yield {"var": var, "erp": erp, "crm": crm}
    crm.stop()


def _run(world, **conf):
    dag_run = local.run_dag("erp_crm_customer_sync", {"as_of": DEMO_AS_OF, **conf})
    return dag_run, hub_store().run(dag_run.run_id)["summary"]


@pytest.fixture(scope="module")
def first_run(world):
    return _run(world, full_refresh=True)


def test_first_run_succeeds_and_accounts_for_every_row(world, first_run):
    dag_run, summary = first_run
    assert str(dag_run.state) == "success"
    assert summary["status"] == "success" and summary["rows_accounted"]
    for entity, n in summary["rows_in"].items():
        assert n > 0
        assert n == summary["rows_passed"][entity] + summary["rows_quarantined"][entity]
    read = {s: sum(c.values()) for s, c in summary["rows_read"].items()}
    assert set(read) == {"odoo", "erpnext", "tryton"}
    assert sum(read.values()) == sum(summary["rows_in"].values())


def test_payments_and_order_lines_from_every_erp_reach_the_profiles_and_the_crm(world, first_run):
    _, summary = first_run
    assert all(counts.get("payment", 0) > 0 for counts in summary["rows_read"].values())
    profiles = pd.DataFrame([json.loads(p) for p in hub_store().read_table("profiles")["profile"]])
    settled = profiles[profiles["avg_days_paid_late"].notna()]
    assert len(settled) > len(profiles) / 2 and (settled["avg_days_paid_late"] >= 0).all()
    assert ((settled["paid_on_time_share"] >= 0) & (settled["paid_on_time_share"] <= 1)).all()
    assert (settled["payments_received"] > 0).all()  # a settled invoice was paid with money received
    accounts = world["crm"].records("Account")
    assert sum(a.get("ERP2CRM_Avg_Days_Paid_Late__c") is not None for a in accounts) == len(settled)
    # Order lines from every ERP give most customers with orders their top product categories.
    assert all(counts.get("order_line", 0) > 0 for counts in summary["rows_read"].values())
    with_orders = profiles[profiles["order_count"] > 0]
    assert with_orders["top_categories"].notna().mean() > 0.9
    assert sum(bool(a.get("ERP2CRM_Top_Categories__c")) for a in accounts) == with_orders["top_categories"].notna().sum()


def test_bad_rows_are_quarantined_with_their_reason_and_nothing_else_is(world, first_run):
    bad = pd.read_csv(world["erp"] / "bad_rows.csv", dtype=str)
    held = hub_store().held_quarantine()
    held = held[held["stage"] == "staging"]
    got = {(r.entity, r.source_system, r.record_id): set(r.reason_code.split(";")) for r in held.itertuples()}
    expected = {(r.entity, r.source_system, r.source_id): r.defect for r in bad.itertuples()}
    assert set(got) == set(expected)
    for key, defect in expected.items():
        assert defect in got[key], f"{key}: expected {defect}, got {got[key]}"


def test_crm_has_one_record_per_real_customer(world, first_run):
    truth = pd.read_csv(world["erp"] / "ground_truth.csv", dtype=str)
    bad_customers = pd.read_csv(world["erp"] / "bad_rows.csv", dtype=str).query("entity == 'customer_record'")
    bad_keys = set(bad_customers["source_system"] + ":" + bad_customers["source_id"])
    truth["key"] = truth["source_system"] + ":" + truth["source_id"]
    truth = truth[~truth["key"].isin(bad_keys)]
    expected = {frozenset(g) for _, g in truth.groupby("true_customer_id")["key"]}

    accounts = world["crm"].records("Account")
    got = [frozenset(json.loads(a["ERP2CRM_Source_Ids__c"])) for a in accounts]
    assert len(got) == len(set(got)), "two CRM records for the same source records"
    assert set(got) == expected
    assert first_run[1]["unified_customers"] == len(expected) + len(bad_keys) - first_run[1]["rows_quarantined"]["customer_record"]
    ids = [a["ERP2CRM_Customer_Id__c"] for a in accounts]
    assert len(ids) == len(set(ids))
    one = next(a for a in accounts if a["ERP2CRM_Segment__c"])
    assert one["ERP2CRM_Segment__c"] in {"most_valuable", "growth_potential", "below_zero", "standard"}
    assert one["ERP2CRM_Currency__c"] == "CNY"


def test_second_identical_run_writes_nothing(world, first_run):
    before = {a["ERP2CRM_Customer_Id__c"]: a for a in world["crm"].records("Account")}
    dag_run, summary = _run(world, full_refresh=True)
    assert str(dag_run.state) == "success"
    assert summary["crm_writes"] == 0 and summary["profiles_pushed"] == 0
    assert summary["crm_unchanged"] == len(before)
    after = {a["ERP2CRM_Customer_Id__c"]: a for a in world["crm"].records("Account")}
    assert after == before


def test_landing_partitions_are_parquet_files_of_the_last_runs_only(world, first_run):
    """The shipped configuration lands each run's extracted rows as Parquet files, one per entity and source, that
    its staging gate reads; after each run only the last `landing_keep_runs` runs keep theirs."""
    from urllib.parse import quote

    from erp2crm.config import load_config
    from hub import schema

    config = load_config()
    for _ in range(config.landing_keep_runs):
        assert str(_run(world)[0].state) == "success"
    runs = [r["run_id"] for r in hub_store().last_runs(20)]
    assert len(runs) > config.landing_keep_runs
    kept = sorted(p.name for p in config.landing_path.iterdir())
    assert kept == sorted(quote(r, safe="") for r in runs[:config.landing_keep_runs])
    partition = config.landing_path / quote(runs[0], safe="")
    assert {p.name for p in (partition / "customer_record").iterdir()} == {"odoo.parquet", "erpnext.parquet",
                                                                         "tryton.parquet"}
    with hub_store().engine.connect() as conn:  # nothing went through the stg_ tables
        assert all(conn.execute(schema.STAGING_TABLES[e].select().limit(1)).first() is None
                   for e in schema.STAGING_TABLES)


def test_a_gate_that_cannot_see_the_landing_folder_stops_with_a_config_error(world, first_run):
    """A worker whose landing_dir is not the folder the extracts wrote to (no shared volume) must not pass an
    empty landing as a run without changes."""
    from urllib.parse import quote

    from erp2crm import pipeline
    from erp2crm.config import load_config
    from erp2crm.errors import ConfigError

    run_id = hub_store().last_runs(1)[0]["run_id"]
    folder = load_config().landing_path / quote(run_id, safe="")
    moved = folder.with_name("elsewhere")
    folder.rename(moved)
    try:
        with pytest.raises(ConfigError, match=r"landed \d+ rows, but .* holds none of them. Either this worker"):
            pipeline.validate_staged(run_id)
    finally:
        moved.rename(folder)
    assert "customer_record" in pipeline.validate_staged(run_id)  # the folder back: the gate runs


def test_incremental_run_sends_only_the_changed_customer(world, first_run):
    test_second_identical_run_writes_nothing(world, first_run)  # start from a settled state
    # A minute ago: inside this run's look-back window, before its end (the run starts after this write).
    now = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    # A customer known only to Odoo, so that survivorship lets the Odoo value through to the golden record.
    customers = hub_store().read_table("customers")
    only_odoo = [json.loads(k)[0] for k in customers["source_ids"] if len(json.loads(k)) == 1 and k.startswith('["odoo:')]
    partner_id = int(sorted(only_odoo)[0].split(":")[1])
    con = sqlite3.connect(world["erp"] / "odoo.db")
    con.execute("update res_partner set city = 'Changed City 42', write_date = ? where id = ?", (now, partner_id))
    con.commit()
    con.close()
    held = hub_store().held_quarantine(stage="staging")
    dag_run, summary = _run(world)  # not a full refresh: only rows changed in the look-back window
    assert str(dag_run.state) == "success"
    # The changed row, plus the held rows read again by key (still bad, so still held, and not double-counted).
    for entity in ("customer_record", "order", "invoice", "service_ticket"):
        assert summary["rows_rechecked"][entity] == (held["entity"] == entity).sum()
    assert summary["rows_in"]["customer_record"] - summary["rows_rechecked"]["customer_record"] == 1
    assert summary["quarantine_held"] == len(held)
    assert summary["crm_writes"] == 1
    # Identity resolution scored only the changed record and rebuilt only the customers it could reach.
    stages = hub_store().stages(dag_run.run_id).set_index("stage")["counts"]
    assert stages["reconcile"]["records_scored"] == 1
    assert stages["reconcile"]["records_normalised"] == 1  # the others' normal forms come from the hub
    assert 1 <= stages["reconcile"]["records_rebuilt"] < stages["reconcile"]["customer_records"] / 10
    changed = [a for a in world["crm"].records("Account") if a.get("BillingCity") == "Changed City 42"]
    assert len(changed) == 1 and f"odoo:{partner_id}" in json.loads(changed[0]["ERP2CRM_Source_Ids__c"])


def test_no_secret_in_hub_run_history_or_xcom(world, first_run):
    hub = hub_store()
    for table in ("runs", "run_stages", "push_receipts", "quarantine"):
        assert TOKEN not in hub.read_table(table).to_json()


def _openlineage_events() -> list[dict]:
    path = json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"]
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_no_secret_in_any_file_the_runs_wrote(world, first_run):
    """The CRM token planted in the connection is in none of the files written by the runs: Airflow's metadata
    database (XCom, task logs, rendered fields), its log folder, the hub store, run reports, Data Docs and the
    OpenLineage events. Only the CRM emulator's own state (the stand-in CRM, not an output) is left out."""
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    events = Path(json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"])
    folders = {world["var"], airflow_home, events.parent.parent}
    scanned = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "crm.json":
                assert TOKEN.encode() not in path.read_bytes(), f"the secret leaked into {path}"
                scanned += 1
    assert scanned >= 10 and events.stat().st_size > 0


def test_openlineage_events_trace_each_task_from_erp_tables_to_the_crm(world, first_run):
    dag_run, summary = first_run
    events = [e for e in _openlineage_events()
              if e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == dag_run.run_id]
    done = {}
    for e in events:
        if e["eventType"] == "COMPLETE":
            task = e["job"]["name"].split(".", 1)[1]
            ins = {f"{d['namespace']}/{d['name']}" for d in e["inputs"]}
            outs = {f"{d['namespace']}/{d['name']}" for d in e["outputs"]}
            prev_in, prev_out = done.get(task, (set(), set()))
            done[task] = (prev_in | ins, prev_out | outs)  # mapped tasks: one event per source or target
    assert {"begin", "extract", "validate_staged", "reconcile", "validate_customers", "enrich",
            "validate_profiles", "push", "finish"} <= set(done)
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE"}
    erp_tables = {f"erp2crm://erp.{s}/{ENTITIES[e].table}" for s, counts in summary["rows_read"].items()
                  for e in counts}
    assert done["extract"] == (erp_tables, {"erp2crm://hub/staging"})
    # Each stage reads what the one before it wrote, up to the CRM's records.
    chain = ["extract", "validate_staged", "reconcile", "validate_customers", "enrich", "validate_profiles", "push"]
    for before, after in zip(chain, chain[1:]):
        assert done[before][1] & done[after][0], f"{after} reads nothing {before} wrote"
    assert done["push"][1] == {"erp2crm://crm.salesforce/Account", "erp2crm://crm.salesforce/Contact"}
    assert done["begin"] == (set(), set()) and done["finish"] == (set(), set())


NAME_COLUMN = {"odoo": ("res_partner", "name", "id"), "erpnext": ("tabCustomer", "customer_name", "name"),
               "tryton": ("party_party", "name", "id")}


def test_quarantine_replay_releases_a_row_fixed_in_the_erp_and_the_next_run_pushes_it(world, first_run):
    """The ERP row is fixed without its last-change time moving (as when a mapping is corrected, or a DBA fixes
    a value in place): no window would see it, the replay re-reads it by key."""
    from click.testing import CliRunner

    from erp2crm.cli import main

    bad = pd.read_csv(world["erp"] / "bad_rows.csv", dtype=str)
    row = bad[(bad["entity"] == "customer_record") & (bad["defect"] == "missing_name")].iloc[0]
    table, column, key = NAME_COLUMN[row["source_system"]]
    con = sqlite3.connect(world["erp"] / f"{row['source_system']}.db")
    con.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE "{key}" = ?', ("Fixed Name Trading Ltd", row["source_id"]))
    con.commit()
    con.close()
    held_before = hub_store().held_quarantine(stage="staging")

    result = CliRunner().invoke(main, ["quarantine", "replay"])
    assert result.exit_code == 0, result.output
    assert "1 released" in result.output and f"{len(held_before) - 1} held in all" in result.output
    held = hub_store().held_quarantine(stage="staging")
    assert len(held) == len(held_before) - 1
    assert row["source_id"] not in set(held.loc[held["source_system"] == row["source_system"], "record_id"])
    last = hub_store().last_runs(1)[0]
    assert last["dag_id"] == "erp2crm quarantine replay" and last["status"] == "success"
    released = hub_store().read_table("quarantine").query("resolution == 'passed'")
    assert list(released["record_id"]) == [row["source_id"]]

    dag_run, summary = _run(world)  # the next scheduled sync
    assert str(dag_run.state) == "success"
    named = [a for a in world["crm"].records("Account") if a.get("Name") == "Fixed Name Trading Ltd"]
    assert len(named) == 1
    assert f"{row['source_system']}:{row['source_id']}" in json.loads(named[0]["ERP2CRM_Source_Ids__c"])


def test_run_report_and_data_docs_are_written_for_every_run(world, first_run):
    from pathlib import Path

    report = Path(first_run[1]["report"])
    page = report.read_text(encoding="utf-8")
    assert "Customers by segment" in page and "Held back and why" in page
    for gate in ("staging", "unified_customer", "profile"):
        assert (report.parent / "data_docs" / gate / "index.html").exists()
        assert f"data_docs/{gate}/index.html" in page
    # Every link resolves to a file next to the report (the pages work offline, from any copy of the folder).
    links = [unquote(h) for h in re.findall(r"href='([^']+)'", page)]
    assert len([h for h in links if "/validations/" in h]) == len(ENTITIES) + 2  # staging entities, customers, profiles
    assert all((report.parent / h).is_file() for h in links)
    assert TOKEN not in page


def test_a_reviewers_decision_is_applied_by_the_next_runs(world, first_run):
    """A person rejects a merge the matcher made: the next run splits the customer (a split event, a new
    CRM account) and so does every run after; accepting it again merges them back under the old id."""
    hub = hub_store()
    crosswalk = hub.read_table("crosswalk")
    crosswalk["key"] = crosswalk["source_system"] + ":" + crosswalk["source_id"]
    pairs = [sorted(keys) for keys in crosswalk.groupby("customer_id")["key"].agg(list) if len(keys) == 2]
    left, right = pairs[0]
    old_id = crosswalk.set_index("key").at[left, "customer_id"]

    def customer_ids() -> dict:
        now = hub.read_table("crosswalk")
        return dict(zip(now["source_system"] + ":" + now["source_id"], now["customer_id"]))

    hub.decide_review(left, right, "rejected", "e2e-reviewer", note="two people at one address")
    for _ in range(2):  # the decision holds in the run that applies it and in the next one
        dag_run, summary = _run(world)
        assert str(dag_run.state) == "success"
        ids = customer_ids()
        assert ids[left] != ids[right] and old_id in (ids[left], ids[right])
    new_id = ids[right] if ids[left] == old_id else ids[left]
    events = hub.read_table("customer_events")
    assert ((events["event"] == "split") & (events["customer_id"] == new_id)).sum() == 1
    assert new_id in {a["ERP2CRM_Customer_Id__c"] for a in world["crm"].records("Account")}
    decided = hub.reviews(("rejected",))
    assert list(zip(decided["left"], decided["right"], decided["decided_by"])) == [(left, right, "e2e-reviewer")]

    hub.decide_review(right, left, "accepted", "e2e-reviewer")  # either order names the pair
    dag_run, _ = _run(world)
    ids = customer_ids()
    assert ids[left] == ids[right] == old_id
    events = hub.read_table("customer_events")
    merged = events[(events["event"] == "merged") & (events["customer_id"] == old_id)]
    assert [json.loads(p) for p in merged["previous_ids"]] == [[new_id]]


def test_each_gate_updates_its_asset_so_other_dags_can_follow(world, first_run):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    dag_run, _ = first_run
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == dag_run.run_id).all()
        updated = {(e.asset.name, e.source_task_id) for e in events}
    assert updated == {("customer_records", "validate_staged"), ("unified_customers", "validate_customers"),
                       ("customer_profiles", "validate_profiles")}


def test_lineage_follows_an_erp_row_to_its_crm_record(world, first_run):
    from click.testing import CliRunner

    from erp2crm.cli import main

    customers = hub_store().read_table("customers")
    orders = hub_store().read_entity("order")
    with_orders = set(orders["source_system"] + ":" + orders["customer_source_id"])
    merged, key = next((c, k) for _, c in customers[customers["source_count"] >= 2].iterrows()
                       for k in json.loads(c["source_ids"]) if k in with_orders)  # a merged customer with orders
    system, source_id = key.split(":", 1)
    hub_url = str(hub_store().engine.url)
    runner = CliRunner()
    done = runner.invoke(main, ["lineage", system, source_id, "--hub", hub_url, "--json"])
    assert done.exit_code == 0, done.output
    trace = json.loads(done.output)
    assert trace["link"]["customer_id"] == merged["customer_id"] and trace["link"]["explanation"]
    account = next(a for a in world["crm"].records("Account")
                   if a["ERP2CRM_Customer_Id__c"] == merged["customer_id"])
    assert [(t["target"], t["crm_id"]) for t in trace["crm"]] == [("salesforce", account["Id"])]
    text = runner.invoke(main, ["lineage", system, source_id, "--hub", hub_url]).output
    assert f"→ unified customer {merged['customer_id']}" in text and f"→ salesforce record {account['Id']}" in text
    # A document is followed through its customer; a quarantined row shows why it was held.
    order = orders[(orders["source_system"] == system) & (orders["customer_source_id"] == source_id)].iloc[0]
    doc = json.loads(runner.invoke(main, ["lineage", system, order["source_id"], "--entity", "order",
                                          "--hub", hub_url, "--json"]).output)
    assert doc["link"]["customer_id"] == merged["customer_id"] and doc["record"]["source_id"] == order["source_id"]
    held_rows = hub_store().held_quarantine(stage="staging")
    bad = held_rows[held_rows["entity"] == "customer_record"].iloc[0]  # still held (other tests release some)
    held = runner.invoke(main, ["lineage", bad["source_system"], bad["record_id"], "--hub", hub_url])
    assert held.exit_code == 0 and f"{bad['reason_code']}, held" in held.output
    unknown = runner.invoke(main, ["lineage", "odoo", "no-such-row", "--hub", hub_url])
    assert unknown.exit_code == 1 and "not linked" in unknown.output
