"""Contact persons pushed after their accounts, against the Salesforce and HubSpot emulators over HTTP: each
contact linked to its account (Salesforce by a relationship on the account's external id, HubSpot by a v4
association), one CRM contact per person and customer (same e-mail), no duplicate when a confirmation is lost,
nothing sent when nothing changed, a contact whose account is not in the CRM left for a later run, modes, and a
contact moving to the survivor when its customer is merged into another."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from _crm_fixtures import TOKEN, hub, hubspot, salesforce  # noqa: F401 (fixtures)
from emulators.hubspot import HubspotEmulator
from emulators.salesforce import SalesforceEmulator
from erp2crm.config import TargetConfig
from erp2crm.contacts import split_name
from erp2crm.cli import main
from erp2crm.push import dry_run, push
from hub import HubStore

EXT, CONTACT_EXT = "ERP2CRM_Customer_Id__c", "ERP2CRM_Contact_Id__c"
SF, HS = TargetConfig(name="salesforce", kind="salesforce"), TargetConfig(name="hubspot", kind="hubspot")
# Customer records: two of one real customer (C1, in Odoo and ERPNext), one of another (C2).
RECORDS = {("odoo", "1"): "C1", ("erpnext", "CUST-00001"): "C1", ("odoo", "2"): "C2"}
CONTACTS = [  # (system, id, company record, name, email, updated)
    ("odoo", "101", "1", "王伟", "wei.wang@huaxin.example.cn", "2026-01-05"),
    ("erpnext", "Wei Wang-CUST-00001", "CUST-00001", "Wei Wang", " Wei.Wang@Huaxin.example.cn ", "2026-03-01"),
    ("odoo", "102", "1", "Anna Schmidt", None, "2026-01-01"),
    ("odoo", "103", "2", "Li Na", "li.na@beta.example.cn", "2026-02-01"),
]


def world(hub: HubStore, names: dict[str, str | None], records=RECORDS, contacts=CONTACTS,
          merged: dict[str, list[str]] | None = None, inactive: frozenset = frozenset()) -> None:
    """The hub as reconcile and enrich leave it: customers and profiles, the crosswalk, the contacts."""
    hub.replace_rows("customers", [{"customer_id": c, "is_active": True, "held": False} for c in names])
    hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, "name": n}),
                                   "push_ready": True} for c, n in names.items()])
    hub.replace_rows("crosswalk", [{"source_system": s, "source_id": i, "customer_id": c}
                                   for (s, i), c in records.items()])
    for survivor, gone in (merged or {}).items():
        hub.insert_rows("customer_events", [{"run_id": "r", "event": "merged", "customer_id": survivor,
                                             "previous_ids": json.dumps(gone)}])
    frame = pd.DataFrame([{"source_system": s, "source_id": i, "customer_source_id": p, "name": n, "email": e,
                           "is_active": i not in inactive, "updated_at": pd.Timestamp(u, tz="UTC")}
                          for s, i, p, n, e, u in contacts])
    hub.replace_rows("contacts", [])
    hub.upsert_entity("contact", frame, "r")


def sf_contacts(crm: SalesforceEmulator) -> dict[str, dict]:
    accounts = {r["Id"]: r[EXT] for r in crm.records("Account")}
    return {r[CONTACT_EXT]: {**r, "customer": accounts.get(r.get("AccountId"))} for r in crm.records("Contact")}


def receipts(hub: HubStore, run_id: str) -> dict[str, tuple]:
    frame = hub.read_table("contact_receipts").query("run_id == @run_id")
    return {k: (r, n) for k, r, n in zip(frame["contact_key"], frame["result"], frame["note"])}


def test_split_name_for_crms_with_two_name_fields():
    assert split_name("王伟") == ("伟", "王")
    assert split_name("欧阳娜娜") == ("娜娜", "欧阳")
    assert split_name("Anna  Maria Schmidt") == ("Anna Maria", "Schmidt")
    assert split_name("Madonna") == (None, "Madonna")
    assert split_name(None) == (None, None)


def test_salesforce_contacts_linked_to_their_accounts_once_per_person(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    preview = dry_run(hub, SF)["contacts"]  # the accounts are not in the CRM yet: the push creates them first
    assert (preview["create"], preview["deferred"]) == (0, 3)
    shown = CliRunner().invoke(main, ["push", "--dry-run", "--hub", str(hub.engine.url), "--target", "salesforce"])
    assert "contacts: 0 to create, 0 to update, 0 to retire, 0 unchanged, 0 skipped, 3 deferred" in shown.output, shown.output
    first = push(hub, "r1", SF)["contacts"]
    assert (first["sent"], first["created"], first["rejected"], first["deferred"]) == (3, 3, 0, 0)
    contacts = sf_contacts(salesforce)
    # Wang Wei is in Odoo and ERPNext under the same customer with the same e-mail: one Contact, with the values of
    # the record updated last, keyed by the smaller key.
    assert set(contacts) == {"erpnext:Wei Wang-CUST-00001", "odoo:102", "odoo:103"}
    wang = contacts["erpnext:Wei Wang-CUST-00001"]
    assert (wang["customer"], wang["FirstName"], wang["LastName"], wang["Email"]) == \
        ("C1", "Wei", "Wang", "wei.wang@huaxin.example.cn")
    assert json.loads(wang["ERP2CRM_Source_Ids__c"]) == ["erpnext:Wei Wang-CUST-00001", "odoo:101"]
    assert (contacts["odoo:102"]["customer"], contacts["odoo:102"]["LastName"]) == ("C1", "Schmidt")
    assert contacts["odoo:103"]["customer"] == "C2"
    assert dry_run(hub, SF)["contacts"] == {"create": 0, "update": 0, "retire": 0, "unchanged": 3, "deferred": 0,
                                           "skipped": 0}
    again = push(hub, "r2", SF)
    assert (again["contacts"]["sent"], again["contacts"]["unchanged"], again["api_calls"],
            again["contacts"]["api_calls"]) == (0, 3, 0, 0)
    assert set(receipts(hub, "r2").values()) == {("unchanged", None)}


def test_a_lost_confirmation_never_duplicates_a_contact(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    push(hub, "r1", SF)
    hub.replace_rows("contact_push_state", [])  # the answers were lost: erp2crm does not know they were written
    retry = push(hub, "r2", SF)["contacts"]
    assert (retry["sent"], retry["created"], retry["updated"]) == (3, 0, 3)
    assert len(salesforce.records("Contact")) == 3


def test_a_contact_whose_account_is_not_in_the_crm_waits_for_it(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": None})  # Salesforce refuses an Account without a Name
    result = push(hub, "r1", SF)
    assert (result["rejected"], result["contacts"]["deferred"], result["contacts"]["rejected"]) == (1, 1, 0)
    assert receipts(hub, "r1")["odoo:103"] == ("deferred", "its account is not in the CRM yet")
    assert set(sf_contacts(salesforce)) == {"erpnext:Wei Wang-CUST-00001", "odoo:102"}
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})  # fixed in the ERP
    later = push(hub, "r2", SF)
    assert (later["created"], later["contacts"]["created"], later["contacts"]["unchanged"]) == (1, 1, 2)
    assert sf_contacts(salesforce)["odoo:103"]["customer"] == "C2"


def test_a_contact_moves_to_the_survivor_of_a_merge(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    push(hub, "r1", SF)
    # A reviewer merged C2 into C1: C2's record now belongs to C1, and C2's account is retired.
    world(hub, {"C1": "Huaxin Trading"}, records={**RECORDS, ("odoo", "2"): "C1"}, merged={"C1": ["C2"]})
    result = push(hub, "r2", SF)
    assert (result["retired"], result["contacts"]["updated"], result["contacts"]["unchanged"]) == (1, 1, 2)
    assert sf_contacts(salesforce)["odoo:103"]["customer"] == "C1"
    assert len(salesforce.records("Contact")) == 3


def test_a_contact_merged_into_another_of_the_same_person_is_retired(hub, salesforce):
    """Wang Wei is a contact of C1 and of C2 with one e-mail: two CRM contacts while C1 and C2 are two customers, one
    once C2 is merged into C1. The other is flagged "merged" (any mode but create_only), or deleted with archive."""
    shared = CONTACTS[:1] + [("odoo", "104", "2", "Wang Wei", "wei.wang@huaxin.example.cn", "2026-02-02")]
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=shared)
    assert push(hub, "r1", SF)["contacts"]["created"] == 2
    world(hub, {"C1": "Huaxin Trading"}, records={**RECORDS, ("odoo", "2"): "C1"}, contacts=shared,
          merged={"C1": ["C2"]})
    assert dry_run(hub, SF)["contacts"]["retire"] == 1
    result = push(hub, "r2", SF)["contacts"]
    assert (result["to_retire"], result["retired"], result["rejected"]) == (1, 1, 0)
    contacts = sf_contacts(salesforce)
    assert (contacts["odoo:101"]["ERP2CRM_Status__c"], contacts["odoo:104"]["ERP2CRM_Status__c"]) == \
        ("active", "merged")
    assert json.loads(contacts["odoo:101"]["ERP2CRM_Source_Ids__c"]) == ["odoo:101", "odoo:104"]
    assert receipts(hub, "r2")["odoo:104"] == ("retired", "merged")
    assert push(hub, "r3", SF)["contacts"]["api_calls"] == 0  # retired once, not again


def test_mirror_retires_contacts_gone_or_inactive_and_writes_them_again_when_they_come_back(hub, hubspot):
    mirror = HS.model_copy(update={"mode": "mirror", "retire": "archive"})
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    assert push(hub, "r1", mirror)["contacts"]["created"] == 3
    # Anna Schmidt (odoo:102) is deleted in Odoo, Li Na (odoo:103) set inactive.
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=CONTACTS[:2] + CONTACTS[3:],
          inactive=frozenset({"103"}))
    result = push(hub, "r2", mirror)["contacts"]
    assert (result["retired"], result["unchanged"]) == (2, 1)
    assert set(hs_contacts(hubspot)) == {"erpnext:Wei Wang-CUST-00001"}  # archived in HubSpot
    assert receipts(hub, "r2")["odoo:102"] == ("retired", "gone")
    assert receipts(hub, "r2")["odoo:103"] == ("retired", "inactive")
    assert push(hub, "r3", mirror)["contacts"]["api_calls"] == 0
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})  # both back in the ERP, active
    back = push(hub, "r4", mirror)["contacts"]
    assert (back["sent"], back["rejected"]) == (2, 0)
    contacts = hs_contacts(hubspot)
    assert (contacts["odoo:103"]["companies"], contacts["odoo:103"]["erp2crm_status"]) == (["C2"], "active")
    assert len(contacts) == 3


def test_upsert_mode_leaves_contacts_gone_from_the_erp(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    push(hub, "r1", SF)
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=CONTACTS[:2] + CONTACTS[3:])
    assert push(hub, "r2", SF)["contacts"]["to_retire"] == 0
    assert sf_contacts(salesforce)["odoo:102"]["ERP2CRM_Status__c"] == "active"


def test_a_contact_not_flagged_without_a_status_field_says_why(hub, salesforce, tmp_path):
    import yaml

    mapping = yaml.safe_load(open(SF.mapping_path))
    del mapping["contacts"]["status_field"]
    (tmp_path / "salesforce.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True))
    mirror = SF.model_copy(update={"mode": "mirror", "mapping": str(tmp_path / "salesforce.yaml")})
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    push(hub, "r1", mirror)
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=CONTACTS[:2] + CONTACTS[3:])
    result = push(hub, "r2", mirror)["contacts"]
    assert (result["retired"], result["skipped"], result["rejected"]) == (0, 1, 0)
    result, note = receipts(hub, "r2")["odoo:102"]
    assert result == "skipped" and note.startswith("gone: not flagged") and "status_field" in note


def test_modes_apply_to_contacts(hub, salesforce):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=CONTACTS[:1])
    push(hub, "r1", SF)
    renamed = [("odoo", "101", "1", "王伟伟", "wei.wang@huaxin.example.cn", "2026-04-01")]
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=renamed + CONTACTS[3:])
    created_only = push(hub, "r2", SF.model_copy(update={"mode": "create_only"}))["contacts"]
    assert (created_only["created"], created_only["updated"], created_only["unchanged"]) == (1, 0, 1)
    assert sf_contacts(salesforce)["odoo:101"]["FirstName"] == "伟"  # not updated
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=renamed + CONTACTS[2:3])
    updated_only = push(hub, "r3", SF.model_copy(update={"mode": "update_only"}))["contacts"]
    assert (updated_only["updated"], updated_only["created"], updated_only["skipped"]) == (1, 0, 1)
    assert sf_contacts(salesforce)["odoo:101"]["FirstName"] == "伟伟"
    assert "odoo:102" not in sf_contacts(salesforce)


def test_salesforce_refuses_a_reference_to_a_missing_account(salesforce):
    import requests

    body = {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, CONTACT_EXT: "x:1", "LastName": "Li",
                                             "Account": {EXT: "C404"}}]}
    answer = requests.patch(f"{salesforce.url}/services/data/v60.0/composite/sobjects/Contact/{CONTACT_EXT}",
                            json=body, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert answer == [{"success": False, "errors": [{
        "statusCode": "INVALID_FIELD", "fields": [],
        "message": f"Foreign key external ID: C404 not found for field {EXT} in entity Account"}]}]
    assert salesforce.records("Contact") == []


def hs_contacts(crm: HubspotEmulator) -> dict[str, dict]:
    companies = {r["id"]: r["properties"]["erp2crm_customer_id"] for r in crm.records("companies")}
    linked: dict[str, list] = {}
    for contact_id, company_id in crm.associations("contacts", "companies"):
        linked.setdefault(contact_id, []).append(companies[company_id])
    return {r["properties"]["erp2crm_contact_id"]: {**r["properties"], "companies": sorted(linked.get(r["id"], []))}
            for r in crm.records("contacts")}


def test_hubspot_contacts_upserted_and_associated_with_their_company(hub, hubspot):
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"})
    first = push(hub, "r1", HS)
    assert (first["contacts"]["created"], first["contacts"]["rejected"]) == (3, 0)
    assert first["contacts"]["api_calls"] == 2  # one batch upsert, one batch association
    contacts = hs_contacts(hubspot)
    assert {k: v["companies"] for k, v in contacts.items()} == {
        "erpnext:Wei Wang-CUST-00001": ["C1"], "odoo:102": ["C1"], "odoo:103": ["C2"]}
    assert (contacts["odoo:102"]["firstname"], contacts["odoo:102"]["lastname"], contacts["odoo:102"]["email"]) == \
        ("Anna", "Schmidt", "")
    assert push(hub, "r2", HS)["contacts"]["api_calls"] == 0
    hub.replace_rows("contact_push_state", [])  # lost confirmations: upserted and associated again, not duplicated
    assert push(hub, "r3", HS)["contacts"]["updated"] == 3
    assert len(hubspot.records("contacts")) == 3 and len(hubspot.associations("contacts", "companies")) == 3
    # C2 merged into C1: the contact is associated with C1's company instead of C2's.
    world(hub, {"C1": "Huaxin Trading"}, records={**RECORDS, ("odoo", "2"): "C1"}, merged={"C1": ["C2"]})
    moved = push(hub, "r4", HS)
    assert (moved["retired"], moved["contacts"]["updated"]) == (1, 1)
    assert hs_contacts(hubspot)["odoo:103"]["companies"] == ["C1"]


def test_hubspot_refuses_a_second_contact_with_the_same_email(hub, hubspot):
    """A person listed under two different customers with the same e-mail stays two contacts in erp2crm; HubSpot
    keeps contact e-mails unique, so the second is refused with its message and the first is written."""
    shared = CONTACTS[:1] + [("odoo", "104", "2", "Wang Wei", "wei.wang@huaxin.example.cn", "2026-02-02")]
    world(hub, {"C1": "Huaxin Trading", "C2": "Beta Foods"}, contacts=shared)
    result = push(hub, "r1", HS.model_copy(update={"max_rejected_share": 1.0}))["contacts"]
    assert (result["created"], result["rejected"]) == (1, 1)
    error = hub.read_table("contact_receipts").query("result == 'rejected'")["error"].iloc[0]
    assert "email" in error


INVALID_CONTACTS = [
    ({"FirstName": "nickname"}, None, "contacts: unknown contact field(s) nickname"),
    (None, {"relationship": "Account", "field": "AccountId"},
     "contacts.account: give exactly one of relationship, field or association (got relationship, field)"),
    (None, {}, "give exactly one of relationship, field or association (got none)"),
]


@pytest.mark.parametrize("fields,account,expected", INVALID_CONTACTS, ids=[e for *_, e in INVALID_CONTACTS])
def test_an_invalid_contacts_section_is_named(tmp_path, fields, account, expected):
    import yaml

    from connectors.outbound import load_outbound
    from erp2crm.errors import ConfigError

    mapping = yaml.safe_load(open(SF.mapping_path))
    mapping["contacts"]["fields"].update(fields or {})
    if account is not None:
        mapping["contacts"]["account"] = account
    (tmp_path / "sf.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True))
    with pytest.raises(ConfigError) as err:
        load_outbound(tmp_path / "sf.yaml")
    assert expected in str(err.value) and "sf.yaml" in str(err.value)
