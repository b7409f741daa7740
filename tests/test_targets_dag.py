"""All three CRM targets from the sync DAG, through real Airflow: the Salesforce and HubSpot emulators and a
real BottleCRM server each end with exactly one record per pushed profile, carrying the profile's values, and
every contact person of a company customer once, linked to its customer's account; a second run writes nothing."""
from __future__ import annotations

import json
import os

import pytest
import yaml

from demodata import generate
from emulators.hubspot import HubspotEmulator
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, DEMO_SOURCES, connections
from erp2crm.pipeline import hub_store

TOKEN = "three-targets-secret-41c9"


@pytest.fixture(scope="module")
def world(airflow_db, bottlecrm, tmp_path_factory):
    var = tmp_path_factory.mktemp("targets")
    generate(var / "erp", n_customers=40, seed=17)
    config = {"sources": [{"name": s} for s in DEMO_SOURCES],
              "targets": [{"name": "salesforce", "kind": "salesforce"}, {"name": "hubspot", "kind": "hubspot"},
                          # BottleCRM refuses a second account of the same name: such customers are rejected
                          # with its message (checked below), so its threshold is not what this test is about.
                          {"name": "bottlecrm", "kind": "bottlecrm", "max_rejected_share": 1.0}]}
    (var / "erp2crm.yaml").write_text(yaml.safe_dump(config))
    with SalesforceEmulator(token=TOKEN) as salesforce, HubspotEmulator(token=TOKEN) as hubspot:
        conns = connections(var, var / "erp", salesforce.url, TOKEN)
        conns["hubspot_default"] = {"conn_type": "http", "host": hubspot.url, "password": TOKEN}
        conns["bottlecrm_default"] = {"conn_type": "http", "host": bottlecrm.url, "password": bottlecrm.token}
        local.configure(var, conns)
        previous = os.environ.get("ERP2CRM_CONFIG")
        os.environ["ERP2CRM_CONFIG"] = str(var / "erp2crm.yaml")
        try:
            yield {"var": var, "salesforce": salesforce, "hubspot": hubspot, "bottlecrm": bottlecrm}
        finally:
            if previous is None:
                os.environ.pop("ERP2CRM_CONFIG")
            else:
                os.environ["ERP2CRM_CONFIG"] = previous


def _run(**conf):
    dag_run = local.run_dag("erp_crm_customer_sync", {"as_of": DEMO_AS_OF, **conf})
    return dag_run, hub_store().run(dag_run.run_id)["summary"]


def _bottlecrm_accounts(server) -> dict[str, list[dict]]:
    by_customer, offset = {}, 0
    while True:
        page = server.api("GET", "accounts/", params={"limit": 100, "offset": offset}).json()
        rows = page["active_accounts"]["open_accounts"] + page["closed_accounts"]["close_accounts"]
        for account in rows:
            customer = (account.get("custom_fields") or {}).get("erp2crm_customer_id")
            if customer:
                by_customer.setdefault(customer, []).append(account)
        offset += 100
        if offset >= max(page["active_accounts"]["open_accounts_count"],
                         page["closed_accounts"]["close_accounts_count"]):
            return by_customer


def test_the_dag_pushes_to_all_three_targets_exactly_once(world):
    dag_run, summary = _run(full_refresh=True)
    assert str(dag_run.state) == "success", summary
    assert set(summary["targets"]) == {"salesforce", "hubspot", "bottlecrm"}
    profiles = hub_store().read_table("profiles")
    ready = dict(zip(profiles["customer_id"], profiles["profile"].map(json.loads)))
    receipts = hub_store().read_table("push_receipts")
    receipts = receipts[receipts["run_id"] == dag_run.run_id]

    salesforce = {}
    for record in world["salesforce"].records("Account"):
        salesforce.setdefault(record["ERP2CRM_Customer_Id__c"], []).append(record)
    assert set(salesforce) == set(ready) and all(len(v) == 1 for v in salesforce.values())
    assert all(salesforce[c][0]["Name"] == p["name"] for c, p in ready.items())

    hubspot = {}
    for record in world["hubspot"].records("companies"):
        hubspot.setdefault(record["properties"]["erp2crm_customer_id"], []).append(record)
    assert set(hubspot) == set(ready) and all(len(v) == 1 for v in hubspot.values())
    assert all(hubspot[c][0]["properties"]["name"] == p["name"] for c, p in ready.items())

    bottle = _bottlecrm_accounts(world["bottlecrm"])
    rejected = receipts[(receipts["target"] == "bottlecrm") & (receipts["result"] == "rejected")]
    assert all(len(v) == 1 for v in bottle.values())  # never a duplicate
    assert set(bottle) | set(rejected["customer_id"]) == set(ready) and not set(bottle) & set(rejected["customer_id"])
    for customer, error in zip(rejected["customer_id"], rejected["error"]):  # only the same-name refusals
        assert "name" in error.lower(), error
        assert sum(p["name"].casefold() == ready[customer]["name"].casefold() for p in ready.values()) >= 2
    assert len(rejected) <= len(ready) // 4
    assert all(bottle[c][0]["name"] == ready[c]["name"] for c in bottle)


def _bottlecrm_contacts(server) -> dict[str, list[dict]]:
    by_key, offset = {}, 0
    while True:
        page = server.api("GET", "contacts/", params={"limit": 100, "offset": offset}).json()
        for contact in page["results"]:
            key = (contact.get("custom_fields") or {}).get("erp2crm_contact_id")
            if key:
                by_key.setdefault(key, []).append(contact)
        offset += 100
        if offset >= page["count"]:
            return by_key


def test_contacts_arrive_linked_to_their_accounts(world):
    """The contact persons of the first run's ERPs: one CRM contact per expected key on each target, linked to the
    account of the customer its ERP record belongs to (through the crosswalk)."""
    from erp2crm.contacts import crm_contacts

    hub = hub_store()
    summary = hub.run(hub.last_runs(1)[0]["run_id"])["summary"]
    assert summary["rows_quarantined"]["contact"] == 2  # the demo's two orphans, one in Odoo, one in ERPNext
    expected = crm_contacts(hub, set())
    expected = dict(zip(expected["key"], expected["customer_id"]))
    assert len(expected) > 20 and None not in expected.values()
    receipts = hub.read_table("contact_receipts")

    accounts = {r["Id"]: r["ERP2CRM_Customer_Id__c"] for r in world["salesforce"].records("Account")}
    salesforce = {}
    for record in world["salesforce"].records("Contact"):
        salesforce.setdefault(record["ERP2CRM_Contact_Id__c"], []).append(accounts[record["AccountId"]])
    assert salesforce == {k: [c] for k, c in expected.items()}

    companies = {r["id"]: r["properties"]["erp2crm_customer_id"] for r in world["hubspot"].records("companies")}
    linked = {}
    for contact_id, company_id in world["hubspot"].associations("contacts", "companies"):
        linked.setdefault(contact_id, []).append(companies[company_id])
    hubspot = {r["properties"]["erp2crm_contact_id"]: linked.get(r["id"]) for r in world["hubspot"].records("contacts")}
    assert hubspot == {k: [c] for k, c in expected.items()}

    # BottleCRM: a contact of a customer whose account it refused (same name) waits for that account.
    accounts = hub.read_table("push_state").query("target == 'bottlecrm'")
    account_of = dict(zip(accounts["customer_id"], accounts["crm_id"]))
    bottle = _bottlecrm_contacts(world["bottlecrm"])
    waiting = receipts[(receipts["target"] == "bottlecrm") & (receipts["result"] == "deferred")]
    assert set(bottle) | set(waiting["contact_key"]) >= set(expected)
    assert all(len(v) == 1 and v[0]["account"] == account_of[expected[k]] for k, v in bottle.items())
    assert not set(waiting["customer_id"]) & set(account_of)


def test_a_second_run_writes_nothing_to_any_target(world):
    dag_run, summary = _run()
    assert str(dag_run.state) == "success", summary
    pushes = summary["targets"]
    assert pushes["salesforce"]["sent"] == pushes["hubspot"]["sent"] == 0
    assert pushes["bottlecrm"]["created"] == pushes["bottlecrm"]["updated"] == 0  # only the rejected are retried
    assert pushes["salesforce"]["api_calls"] == pushes["hubspot"]["api_calls"] == 0
    assert pushes["salesforce"]["contacts"]["sent"] == pushes["hubspot"]["contacts"]["sent"] == 0
    assert pushes["salesforce"]["contacts"]["api_calls"] == pushes["hubspot"]["contacts"]["api_calls"] == 0
    assert pushes["bottlecrm"]["contacts"]["created"] == pushes["bottlecrm"]["contacts"]["updated"] == 0
