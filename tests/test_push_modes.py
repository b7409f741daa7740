"""Push modes, retiring records and field ownership, against the Salesforce and HubSpot emulators over HTTP:
update_only never creates, create_only never updates, merges retire the merged-away record (flagged with the
customer it went into, or archived), mirror also retires customers inactive or gone from the ERP, a
fill-if-empty field never overwrites a CRM user's value and a CRM-owned field is never written."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from _crm_fixtures import hub, hubspot, salesforce  # noqa: F401 (fixtures)
from emulators.salesforce import SalesforceEmulator
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError
from erp2crm.push import dry_run, push
from hub import HubStore

EXT = "ERP2CRM_Customer_Id__c"


def world(hub: HubStore, profiles: dict[str, dict], inactive=(), merged: dict[str, list[str]] | None = None):
    """The hub as reconcile and enrich leave it: customers (with is_active), their profiles, merge events."""
    hub.replace_rows("customers", [{"customer_id": c, "is_active": c not in inactive, "held": False}
                                   for c in profiles])
    hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, **p}),
                                   "push_ready": True} for c, p in profiles.items()])
    for survivor, gone in (merged or {}).items():
        hub.insert_rows("customer_events", [{"run_id": "r", "event": "merged", "customer_id": survivor,
                                             "previous_ids": json.dumps(gone)}])


def sf_target(**kw) -> TargetConfig:
    return TargetConfig(name="salesforce", kind="salesforce", **kw)


def accounts(crm: SalesforceEmulator) -> dict[str, dict]:
    return {r[EXT]: r for r in crm.records("Account")}


# --- modes --------------------------------------------------------------------------------------------------
def test_update_only_never_creates(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}})
    push(hub, "r1", sf_target())
    world(hub, {"C1": {"name": "Acme Ltd"}, "C2": {"name": "Beta"}})
    result = push(hub, "r2", sf_target(mode="update_only"))
    assert (result["updated"], result["created"], result["skipped"]) == (1, 0, 1)
    assert set(accounts(salesforce)) == {"C1"} and accounts(salesforce)["C1"]["Name"] == "Acme Ltd"
    receipt = hub.read_table("push_receipts").query("run_id == 'r2' and customer_id == 'C2'").iloc[0]
    assert receipt["result"] == "skipped" and "update_only" in receipt["note"]


def test_create_only_never_updates(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}})
    push(hub, "r1", sf_target())
    world(hub, {"C1": {"name": "Acme renamed"}, "C2": {"name": "Beta"}})
    result = push(hub, "r2", sf_target(mode="create_only"))
    assert (result["created"], result["updated"], result["unchanged"]) == (1, 0, 1)
    assert {c: r["Name"] for c, r in accounts(salesforce).items()} == {"C1": "Acme", "C2": "Beta"}


# --- merges and mirror ----------------------------------------------------------------------------------
def test_a_merge_flags_the_merged_away_record_with_its_survivor(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "ACME Ltd"}})
    push(hub, "r1", sf_target())
    world(hub, {"C1": {"name": "Acme"}}, merged={"C1": ["C2"]})  # reconcile merged C2 into C1
    result = push(hub, "r2", sf_target())
    assert (result["retired"], result["to_retire"], result["rejected"]) == (1, 1, 0)
    records = accounts(salesforce)
    assert len(records) == 2  # flagged, not deleted
    assert (records["C2"]["ERP2CRM_Status__c"], records["C2"]["ERP2CRM_Merged_Into__c"]) == ("merged", "C1")
    assert records["C1"]["ERP2CRM_Status__c"] == "active"
    receipt = hub.read_table("push_receipts").query("run_id == 'r2' and customer_id == 'C2'").iloc[0]
    assert (receipt["result"], receipt["note"]) == ("retired", "merged into C1")
    again = push(hub, "r3", sf_target())
    assert (again["retired"], again["sent"], again["api_calls"]) == (0, 0, 0)


def test_a_split_customer_coming_back_is_active_again(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}})
    push(hub, "r1", sf_target())
    world(hub, {"C1": {"name": "Acme"}}, merged={"C1": ["C2"]})
    push(hub, "r2", sf_target())
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}})  # a reviewer split them again
    result = push(hub, "r3", sf_target())
    assert result["updated"] == 1
    assert (accounts(salesforce)["C2"]["ERP2CRM_Status__c"], accounts(salesforce)["C2"]["ERP2CRM_Merged_Into__c"]) \
        == ("active", None)


def test_mirror_retires_inactive_and_gone_customers_upsert_leaves_them(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}, "C3": {"name": "Gamma"}})
    push(hub, "r1", sf_target())
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}}, inactive={"C2"})  # C3 gone from the ERP
    plain = dry_run(hub, sf_target())
    assert plain["retire"] == 0  # upsert mode: neither is retired
    result = push(hub, "r2", sf_target(mode="mirror"))
    assert result["retired"] == 2
    status = {c: r["ERP2CRM_Status__c"] for c, r in accounts(salesforce).items()}
    assert status == {"C1": "active", "C2": "inactive", "C3": "gone"}


def test_archive_deletes_the_merged_away_record(hub, salesforce):
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "ACME Ltd"}})
    push(hub, "r1", sf_target(retire="archive"))
    world(hub, {"C1": {"name": "Acme"}}, merged={"C1": ["C2"]})
    preview = dry_run(hub, sf_target(retire="archive"))
    assert [(c["customer_id"], c["action"], c["merged_into"]) for c in preview["changes"]] == \
        [("C2", "retire (archive)", "C1")]
    result = push(hub, "r2", sf_target(retire="archive"))
    assert result["retired"] == 1 and result["api_calls"] == 1
    assert set(accounts(salesforce)) == {"C1"}
    state = hub.read_table("push_state").set_index("customer_id")
    assert pd.notna(state.at["C2", "retired_at"]) and pd.isna(state.at["C1", "retired_at"])


def test_hubspot_archives_and_flags(hub, hubspot):
    target = TargetConfig(name="hubspot", kind="hubspot", retire="archive")
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}, "C3": {"name": "Gamma"}})
    push(hub, "r1", target)
    world(hub, {"C1": {"name": "Acme"}, "C3": {"name": "Gamma"}}, merged={"C1": ["C2"]})
    result = push(hub, "r2", target)
    assert result["retired"] == 1
    assert {r["properties"]["erp2crm_customer_id"] for r in hubspot.records("companies")} == {"C1", "C3"}
    world(hub, {"C1": {"name": "Acme"}}, merged={"C1": ["C2", "C3"]})
    flagged = push(hub, "r3", TargetConfig(name="hubspot", kind="hubspot"))
    assert flagged["retired"] == 1
    props = {r["properties"]["erp2crm_customer_id"]: r["properties"] for r in hubspot.records("companies")}
    assert (props["C3"]["erp2crm_status"], props["C3"]["erp2crm_merged_into"]) == ("merged", "C1")


def test_flagging_needs_a_status_field(hub, salesforce, tmp_path):
    mapping = yaml.safe_load(open(sf_target().mapping_path))
    del mapping["status_field"], mapping["merged_into_field"]
    (tmp_path / "sf.yaml").write_text(yaml.safe_dump(mapping))
    target = sf_target(mapping=str(tmp_path / "sf.yaml"))
    world(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}})
    push(hub, "r1", target)
    world(hub, {"C1": {"name": "Acme"}}, merged={"C1": ["C2"]})
    result = push(hub, "r2", target)
    assert result["rejected"] == 1
    error = hub.read_table("push_receipts").query("run_id == 'r2' and customer_id == 'C2'").iloc[0]["error"]
    assert "no status_field" in error and "retire: archive" in error


# --- ownership ------------------------------------------------------------------------------------------
def owned_mapping(tmp_path, base: TargetConfig, rules: dict) -> TargetConfig:
    mapping = yaml.safe_load(open(base.mapping_path))
    mapping["fields"].update(rules)
    path = tmp_path / f"{base.name}_owned.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return base.model_copy(update={"mapping": str(path)})


def test_fill_if_empty_and_crm_owned_fields_in_salesforce(hub, salesforce, tmp_path):
    target = owned_mapping(tmp_path, sf_target(), {"Phone": {"from": "phone", "owner": "fill_if_empty"},
                                                   "Description": {"owner": "crm"}})
    world(hub, {"C1": {"name": "Acme", "phone": "+861011"}, "C2": {"name": "Beta", "phone": None}})
    push(hub, "r1", target)
    assert {c: r.get("Phone") for c, r in accounts(salesforce).items()} == {"C1": "+861011", "C2": None}
    # Sales people edit the CRM: a better phone for C1, a note on C2's Description.
    with salesforce._lock:
        for record in salesforce._records["Account"].values():
            if record[EXT] == "C1":
                record["Phone"] = "+86 10 9999"
            record["Description"] = "key account, call Mon"
    world(hub, {"C1": {"name": "Acme Ltd", "phone": "+861022"}, "C2": {"name": "Beta", "phone": "+862033"}})
    result = push(hub, "r2", target)
    assert result["updated"] == 2
    records = accounts(salesforce)
    assert (records["C1"]["Name"], records["C1"]["Phone"]) == ("Acme Ltd", "+86 10 9999")  # the CRM's value stays
    assert records["C2"]["Phone"] == "+862033"  # empty in the CRM: filled
    assert {r["Description"] for r in records.values()} == {"key account, call Mon"}  # never written


def test_fill_if_empty_in_hubspot(hub, hubspot, tmp_path):
    target = owned_mapping(tmp_path, TargetConfig(name="hubspot", kind="hubspot"),
                           {"phone": {"from": "phone", "owner": "fill_if_empty"}})
    world(hub, {"C1": {"name": "Acme", "phone": "+861011"}})
    push(hub, "r1", target)
    with hubspot._lock:
        next(iter(hubspot._records["companies"].values()))["properties"]["phone"] = "+86 10 9999"
    world(hub, {"C1": {"name": "Acme Ltd", "phone": "+861022"}})
    push(hub, "r2", target)
    props = hubspot.records("companies")[0]["properties"]
    assert (props["name"], props["phone"]) == ("Acme Ltd", "+86 10 9999")


INVALID_OWNERSHIP = [
    ({"Phone": {"owner": "fill_if_empty"}}, "fields.Phone: 'from' (the profile field) is required unless owner is crm"),
    ({"Phone": {"from": "phone", "owner": "sales"}}, "fields.Phone.owner: Input should be 'erp', 'fill_if_empty' or 'crm'"),
]


@pytest.mark.parametrize("rules,expected", INVALID_OWNERSHIP, ids=[e for _, e in INVALID_OWNERSHIP])
def test_invalid_ownership_rules_are_named(tmp_path, rules, expected):
    from connectors.outbound import load_outbound

    target = owned_mapping(tmp_path, sf_target(), rules)
    with pytest.raises(ConfigError) as err:
        load_outbound(target.mapping_path)
    assert expected in str(err.value)
