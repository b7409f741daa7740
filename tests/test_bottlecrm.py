"""The BottleCRM sink against a real BottleCRM (django-crm 1.35.0, tests/servers/bottlecrm.py): creates, then
updates without duplicates (by stored CRM id, by search, by scan, after a lost answer), rejects one record with
BottleCRM's own error while the rest of the batch goes through, refuses a bad token, and reads back what it
wrote. The last test counts the API calls per profile pushed."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import requests

from connectors.bottlecrm import BottlecrmHook, BottlecrmSink, classify
from connectors.http import HttpClient
from connectors.outbound import build_payload, load_outbound
from erp2crm.errors import ConfigError
from erp2crm.paths import MAPPINGS

MAPPING = load_outbound(MAPPINGS / "bottlecrm.yaml")
EXT = MAPPING.external_id_field


def _sink(server, token: str | None = None, **kwargs) -> BottlecrmSink:
    client = HttpClient(server.url, headers={"Authorization": f"Bearer {token or server.token}"}, classify=classify,
                        max_retries=2, backoff_s=0, sleep=lambda s: None)
    return BottlecrmSink(client, MAPPING.sobject, EXT, **kwargs)


def _profile(n: int, tag: str, **changes) -> dict:
    person = n % 2 == 1
    return {"name": f"{'Jane Doe' if person else 'Acme Trading'} {tag}-{n}", "email": f"c{n}.{tag}@example.com",
            "phone": f"+49 30 {1000000 + n}", "street": f"{n} Example Road", "city": "Berlin", "postcode": "10115",
            "country": "DE", "is_company": not person, "tax_id": None if person else f"DE{100000000 + n}",
            "source_ids": json.dumps([f"erp_a:{n}"]), "reporting_currency": "EUR", "segment": "standard",
            "lifetime_revenue": 1234.5 + n, "revenue_12m": 100.25, "net_value": 99.0, "clv": 2500.0,
            "order_count": n, "last_order_at": "2026-06-01 10:00:00+00:00", "open_receivables": 0.0,
            "overdue_amount": 0.0, "credit_class": "A", "churn_risk": 0.25, "churn_flag": False, "tickets_open": 0,
            **changes}


def _payloads(count: int, tag: str, **changes) -> list[dict]:
    return [build_payload(MAPPING, f"{tag}-{n}", _profile(n, tag, **changes)) for n in range(count)]


def _as_payload(account: dict) -> dict:
    """An account as BottleCRM answers it, keyed like a payload."""
    return {k: (account["custom_fields"].get(k[len("custom_fields."):]) if k.startswith("custom_fields.")
                else account[k]) for k in [EXT, *MAPPING.fields, MAPPING.status_field, MAPPING.merged_into_field]}


def _read_back(server, crm_id: str) -> dict:
    answer = server.api("GET", f"accounts/{crm_id}/")
    assert answer.status_code == 200, answer.text
    return _as_payload(answer.json()["account_obj"])


def _accounts_with(server, customer_id: str) -> list[str]:
    page = server.api("GET", "accounts/", params={f"cf_{EXT.split('.', 1)[1]}": customer_id}).json()
    rows = page["active_accounts"]["open_accounts"] + page["closed_accounts"]["close_accounts"]
    return [a["id"] for a in rows]


def test_check_proves_url_token_and_customer_id_field(bottlecrm):
    sink = _sink(bottlecrm)
    # 7 built-in fields; plus the id, status and merged-into fields
    assert sink.check()["custom_fields"] == len(MAPPING.fields) - 7 + 3
    assert sink.client.requests_sent == 1


def test_create_then_update_without_duplicates(bottlecrm):
    tag = uuid.uuid4().hex[:6]
    first = _payloads(3, tag)
    results = _sink(bottlecrm, scan_threshold=1000).upsert(first)
    assert [(r.external_id, r.ok, r.created) for r in results] == [(p[EXT], True, True) for p in first]
    ids = {r.external_id: r.crm_id for r in results}
    for payload in first:
        assert _read_back(bottlecrm, ids[payload[EXT]]) == payload

    # Changed profiles, each way of finding the record: stored CRM id, search (no stored id), scan.
    for round_, (known, threshold) in enumerate([(ids, 1000), ({}, 1000), ({}, 1)]):
        changed = _payloads(3, tag, segment=f"round-{round_}", phone=None, churn_flag=True, order_count=7)
        results = _sink(bottlecrm, scan_threshold=threshold).upsert(changed, known_ids=known)
        assert [(r.ok, r.created, r.crm_id) for r in results] == [(True, False, ids[p[EXT]]) for p in changed]
        for payload in changed:
            assert _read_back(bottlecrm, ids[payload[EXT]]) == payload
    for payload in first:
        assert _accounts_with(bottlecrm, payload[EXT]) == [ids[payload[EXT]]]


def test_a_rejected_record_does_not_stop_the_others(bottlecrm):
    tag = uuid.uuid4().hex[:6]
    good, bad_email, same_name, bad_number, last = _payloads(5, tag)
    bad_email["email"] = "not-an-email"
    same_name["name"] = good["name"].upper()  # Account names are unique per org, case-insensitive
    bad_number["custom_fields.erp2crm_lifetime_revenue"] = "lots"
    results = _sink(bottlecrm).upsert([good, bad_email, same_name, bad_number, last])
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert results[1].error == "HTTP 400: email: Enter a valid email address."
    assert results[2].error == "HTTP 400: name: Account already exists with this name"
    assert results[3].error == "HTTP 400: custom_fields.erp2crm_lifetime_revenue: must be a number"
    assert _accounts_with(bottlecrm, bad_email[EXT]) == []
    assert _read_back(bottlecrm, results[4].crm_id) == last


def test_a_lost_answer_or_a_failed_post_never_duplicates(bottlecrm):
    tag = uuid.uuid4().hex[:6]
    sink = _sink(bottlecrm)
    real, posts = sink.client.session.request, []

    def flaky(method, url, **kwargs):
        if method == "POST":
            posts.append(url)
            if len(posts) == 1:  # reaches BottleCRM, which creates the account; the answer is lost
                real(method, url, **kwargs)
                raise requests.ReadTimeout("answer lost")
            if len(posts) == 2:  # never reaches it
                raise requests.ConnectionError("refused")
        return real(method, url, **kwargs)

    sink.client.session.request = flaky
    lost, refused = _payloads(2, tag)
    results = sink.upsert([lost, refused])
    assert [(r.ok, r.created) for r in results] == [(True, True), (True, True)]
    assert len(posts) == 3  # the lost one was found by the search, the refused one posted again
    for payload, result in zip([lost, refused], results):
        assert _accounts_with(bottlecrm, payload[EXT]) == [result.crm_id]
        assert _read_back(bottlecrm, result.crm_id) == payload


def test_a_stale_crm_id_falls_back_to_the_search(bottlecrm):
    tag = uuid.uuid4().hex[:6]
    payload = _payloads(1, tag)[0]
    (created,) = _sink(bottlecrm).upsert([payload])
    stale = {payload[EXT]: str(uuid.uuid4())}  # e.g. the account was merged into another in BottleCRM
    (again,) = _sink(bottlecrm).upsert([payload], known_ids=stale)
    assert (again.ok, again.created, again.crm_id) == (True, False, created.crm_id)
    assert bottlecrm.api("DELETE", f"accounts/{created.crm_id}/").status_code == 200
    (recreated,) = _sink(bottlecrm).upsert([payload], known_ids={payload[EXT]: created.crm_id})
    assert recreated.ok and recreated.created and recreated.crm_id != created.crm_id


def test_a_bad_token_or_an_undefined_custom_field_is_a_config_error(bottlecrm, monkeypatch):
    bad = _sink(bottlecrm, token="bcrm_pat_" + "x" * 43)
    with pytest.raises(ConfigError, match="BottleCRM refused the token"):
        bad.check()
    with pytest.raises(ConfigError, match="BottleCRM refused the token"):
        bad.upsert(_payloads(1, "bad"))
    payload = {**_payloads(1, uuid.uuid4().hex[:6])[0], "custom_fields.erp2crm_not_defined": "x"}
    with pytest.raises(ConfigError, match="erp2crm_not_defined"):
        _sink(bottlecrm).upsert([payload])

    def connection(**fields):
        monkeypatch.setenv("AIRFLOW_CONN_BOTTLECRM_TEST", json.dumps({"conn_type": "http", **fields}))
        return BottlecrmHook("bottlecrm_test").get_client()

    with pytest.raises(ConfigError, match="personal access token"):
        connection(host=bottlecrm.url, password="not-a-pat")
    host, port = bottlecrm.url.rsplit(":", 1)
    client = connection(host=host, port=int(port), password=bottlecrm.token)
    assert BottlecrmSink(client).check()["custom_fields"] > 0


# 200 profiles in the suite (BottleCRM writes one record per request, ~20 per second here); the figure per 1,000
# in bench/README.md was measured with ERP2CRM_BOTTLECRM_PROFILES=1000.
PROFILES = int(os.environ.get("ERP2CRM_BOTTLECRM_PROFILES", "200"))


def test_api_calls_per_profile(bottlecrm, record_property):
    tag = uuid.uuid4().hex[:6]
    first = _payloads(PROFILES, tag)
    page = bottlecrm.api("GET", "accounts/", params={"limit": 1}).json()
    accounts_before = max(page["active_accounts"]["open_accounts_count"], page["closed_accounts"]["close_accounts_count"])
    sink, started = _sink(bottlecrm), time.monotonic()
    results = sink.upsert(first)
    first_calls, first_s = sink.client.requests_sent, time.monotonic() - started
    assert all(r.ok and r.created for r in results)
    known = {r.external_id: r.crm_id for r in results}

    changed = _payloads(PROFILES, tag, segment="vip", churn_risk=0.5)
    sink, started = _sink(bottlecrm), time.monotonic()
    results = sink.upsert(changed, known_ids=known)
    second_calls, second_s = sink.client.requests_sent, time.monotonic() - started
    assert [(r.ok, r.created, r.crm_id) for r in results] == [(True, False, known[p[EXT]]) for p in changed]

    # Read everything back through the API: every customer once, as sent.
    stored, offset = {}, 0
    while True:
        page = bottlecrm.api("GET", "accounts/", params={"limit": 500, "offset": offset}).json()
        for account in page["active_accounts"]["open_accounts"]:
            stored.setdefault(account["custom_fields"].get(EXT.split(".", 1)[1]), []).append(_as_payload(account))
        offset += 500
        if offset >= page["active_accounts"]["open_accounts_count"]:
            break
    assert all(stored[p[EXT]] == [p] for p in changed)

    record_property("api_calls_first_push", first_calls)
    record_property("api_calls_second_push", second_calls)
    print(f"\nBottleCRM, {PROFILES:,} profiles: first push {first_calls} calls in {first_s:.1f} s, "
          f"second push (changed, known ids) {second_calls} calls in {second_s:.1f} s")
    # The custom field check, one scan of the accounts already there (pages of 200), then a POST each.
    assert first_calls == 1 + max(1, -(-accounts_before // 200)) + PROFILES
    assert second_calls == 1 + PROFILES  # the custom field check, then a PATCH each


def test_the_push_flow_updates_by_the_stored_crm_id(bottlecrm, tmp_path, monkeypatch):
    """erp2crm.push with a bottlecrm target: the first push creates, an unchanged profile is not sent, and a
    changed one is patched through the CRM id kept from the first push (no search)."""
    from erp2crm.config import TargetConfig
    from erp2crm.push import push
    from hub import HubStore

    monkeypatch.setenv("AIRFLOW_CONN_BOTTLECRM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": bottlecrm.url, "password": bottlecrm.token}))
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    tag = uuid.uuid4().hex[:6]
    profiles = {f"{tag}-{n}": _profile(n, tag) for n in range(3)}

    def put(profiles):
        hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, **p}),
                                       "push_ready": True} for c, p in profiles.items()])

    target = TargetConfig(name="bottlecrm", kind="bottlecrm")
    put(profiles)
    first = push(hub, "r1", target)
    assert (first["created"], first["rejected"]) == (3, 0)
    crm_ids = hub.read_table("push_state").set_index("customer_id")["crm_id"].to_dict()
    changed = f"{tag}-1"
    profiles[changed] = _profile(1, tag, segment="vip")
    put(profiles)
    second = push(hub, "r2", target)
    assert (second["sent"], second["updated"], second["unchanged"]) == (1, 1, 2)
    assert second["api_calls"] == 2  # the custom field check, then one PATCH by the stored id
    assert _read_back(bottlecrm, crm_ids[changed])["custom_fields.erp2crm_segment"] == "vip"


def test_a_merged_customer_is_flagged_and_fill_if_empty_keeps_a_crm_users_value(bottlecrm, tmp_path, monkeypatch):
    """Against the real server: a record whose customer was merged into another is flagged with its survivor,
    and a fill-if-empty field read back from BottleCRM is not overwritten once a user has set it."""
    import yaml

    from erp2crm.config import TargetConfig
    from erp2crm.push import push
    from hub import HubStore

    monkeypatch.setenv("AIRFLOW_CONN_BOTTLECRM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": bottlecrm.url, "password": bottlecrm.token}))
    mapping = yaml.safe_load((MAPPINGS / "bottlecrm.yaml").read_text())
    mapping["fields"]["phone"] = {"from": "phone", "owner": "fill_if_empty"}
    (tmp_path / "bottlecrm.yaml").write_text(yaml.safe_dump(mapping))
    target = TargetConfig(name="bottlecrm", kind="bottlecrm", mapping=str(tmp_path / "bottlecrm.yaml"))
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    tag = uuid.uuid4().hex[:6]
    survivor, merged = f"{tag}-0", f"{tag}-1"

    def put(profiles, merges=None):
        hub.replace_rows("customers", [{"customer_id": c, "is_active": True, "held": False} for c in profiles])
        hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, **p}),
                                       "push_ready": True} for c, p in profiles.items()])
        for new, olds in (merges or {}).items():
            hub.insert_rows("customer_events", [{"run_id": "r", "event": "merged", "customer_id": new,
                                                 "previous_ids": json.dumps(olds)}])

    put({survivor: _profile(0, tag), merged: _profile(1, tag)})
    assert push(hub, "r1", target)["created"] == 2
    crm_ids = hub.read_table("push_state").set_index("customer_id")["crm_id"].to_dict()
    user_phone = "+49 30 5550000"
    assert bottlecrm.api("PATCH", f"accounts/{crm_ids[survivor]}/", json={"phone": user_phone}).status_code == 200

    put({survivor: _profile(0, tag, phone="+49 30 1111111", segment="vip")}, merges={survivor: [merged]})
    result = push(hub, "r2", target)
    assert (result["updated"], result["retired"], result["rejected"]) == (1, 1, 0)
    kept = _read_back(bottlecrm, crm_ids[survivor])
    assert (kept["phone"], kept["custom_fields.erp2crm_segment"]) == (user_phone, "vip")
    flagged = bottlecrm.api("GET", f"accounts/{crm_ids[merged]}/").json()["account_obj"]["custom_fields"]
    assert (flagged["erp2crm_status"], flagged["erp2crm_merged_into"]) == ("merged", survivor)
    assert _accounts_with(bottlecrm, merged) == [crm_ids[merged]]  # flagged in place, not duplicated


def test_contacts_are_linked_to_their_account_and_follow_a_merge(bottlecrm, tmp_path, monkeypatch):
    """Contact persons after their accounts, against the real server: each a BottleCRM Contact whose `account` is its
    customer's account, found again by its contact key when the confirmation was lost (no duplicate), not sent when
    unchanged, and moved to the survivor's account when its customer is merged into another."""
    import pandas as pd

    from erp2crm.config import TargetConfig
    from erp2crm.push import push
    from hub import HubStore

    monkeypatch.setenv("AIRFLOW_CONN_BOTTLECRM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": bottlecrm.url, "password": bottlecrm.token}))
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    tag = uuid.uuid4().hex[:6]
    first_customer, second_customer = f"{tag}-0", f"{tag}-1"
    target = TargetConfig(name="bottlecrm", kind="bottlecrm")

    def put(records: dict, profiles: list[str], merges=None):
        hub.replace_rows("customers", [{"customer_id": c, "is_active": True, "held": False} for c in profiles])
        hub.replace_rows("profiles", [{"customer_id": c, "profile": json.dumps({"customer_id": c, **_profile(n, tag)}),
                                       "push_ready": True} for n, c in enumerate(profiles)])
        hub.replace_rows("crosswalk", [{"source_system": "odoo", "source_id": r, "customer_id": c}
                                       for r, c in records.items()])
        for new, olds in (merges or {}).items():
            hub.insert_rows("customer_events", [{"run_id": "r", "event": "merged", "customer_id": new,
                                                 "previous_ids": json.dumps(olds)}])

    people = [("101", "1", "王伟", f"wei.wang.{tag}@example.cn"), ("102", "2", "Anna Schmidt", f"anna.{tag}@example.de")]
    hub.upsert_entity("contact", pd.DataFrame([
        {"source_system": "odoo", "source_id": i, "customer_source_id": p, "name": n, "email": e, "job_title": "Buyer",
         "is_active": True, "updated_at": pd.Timestamp("2026-01-01", tz="UTC")} for i, p, n, e in people]), "r")
    put({"1": first_customer, "2": second_customer}, [first_customer, second_customer])
    first = push(hub, "r1", target)
    assert (first["created"], first["contacts"]["created"], first["contacts"]["rejected"]) == (2, 2, 0)
    accounts = hub.read_table("push_state").set_index("customer_id")["crm_id"].to_dict()

    def contact(key: str) -> dict:
        page = bottlecrm.api("GET", "contacts/", params={"cf_erp2crm_contact_id": key}).json()
        assert page["count"] == 1, page["count"]  # never a duplicate
        return page["results"][0]

    wang = contact("odoo:101")
    assert (wang["account"], wang["first_name"], wang["last_name"], wang["email"], wang["title"]) == \
        (accounts[first_customer], "伟", "王", f"wei.wang.{tag}@example.cn", "Buyer")
    assert contact("odoo:102")["account"] == accounts[second_customer]
    assert push(hub, "r2", target)["contacts"]["sent"] == 0

    hub.replace_rows("contact_push_state", [])  # lost confirmations: found by their key and updated
    assert push(hub, "r3", target)["contacts"]["updated"] == 2
    put({"1": first_customer, "2": first_customer}, [first_customer], merges={first_customer: [second_customer]})
    moved = push(hub, "r4", target)
    assert (moved["retired"], moved["contacts"]["updated"], moved["contacts"]["unchanged"]) == (1, 1, 1)
    assert contact("odoo:102")["account"] == accounts[first_customer]


def test_archive_closes_accounts_and_contacts_and_reopens_them_when_they_come_back(bottlecrm, tmp_path, monkeypatch):
    """Against the real server, mirror mode with retire: archive. BottleCRM's archive is its closed state
    (is_active false: closed accounts, inactive contacts), which a user can undo; nothing is deleted. A customer
    and contact that come back in the ERP are reopened and updated, never created a second time."""
    import pandas as pd

    from erp2crm.config import TargetConfig
    from erp2crm.push import push
    from hub import HubStore

    monkeypatch.setenv("AIRFLOW_CONN_BOTTLECRM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": bottlecrm.url, "password": bottlecrm.token}))
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    tag = uuid.uuid4().hex[:6]
    kept, leaving = f"{tag}-0", f"{tag}-1"
    target = TargetConfig(name="bottlecrm", kind="bottlecrm", mode="mirror", retire="archive")
    # Contact keys are odoo:<id>: tagged, as the server is shared by the tests of this module.
    people = {f"{tag}01": ("1", "Li Na", f"li.na.{tag}@example.cn"),
              f"{tag}02": ("2", "Anna Schmidt", f"anna.{tag}@example.de")}

    def put(customers: dict[str, str], **changes):
        """customers: ERP record id → customer id; the contacts of those records only."""
        hub.replace_rows("customers", [{"customer_id": c, "is_active": True, "held": False} for c in customers.values()])
        hub.replace_rows("profiles", [{"customer_id": c, "push_ready": True, "profile": json.dumps(
            {"customer_id": c, **_profile(int(c[-1]), tag, **changes)})} for c in customers.values()])
        hub.replace_rows("crosswalk", [{"source_system": "odoo", "source_id": r, "customer_id": c}
                                       for r, c in customers.items()])
        hub.replace_rows("contacts", [])
        hub.upsert_entity("contact", pd.DataFrame([
            {"source_system": "odoo", "source_id": i, "customer_source_id": p, "name": n, "email": e,
             "is_active": True, "updated_at": pd.Timestamp("2026-01-01", tz="UTC")}
            for i, (p, n, e) in people.items() if p in customers]), "r")

    def account(crm_id: str) -> dict:
        return bottlecrm.api("GET", f"accounts/{crm_id}/").json()["account_obj"]

    def contact(key: str) -> dict:
        page = bottlecrm.api("GET", "contacts/", params={"cf_erp2crm_contact_id": key}).json()
        assert page["count"] == 1, page["count"]
        return page["results"][0]

    put({"1": kept, "2": leaving})
    first = push(hub, "r1", target)
    assert (first["created"], first["contacts"]["created"]) == (2, 2)
    crm_ids = hub.read_table("push_state").set_index("customer_id")["crm_id"].to_dict()

    put({"1": kept})  # the customer, and its contact, deleted in the ERP
    gone = push(hub, "r2", target)
    assert (gone["retired"], gone["rejected"], gone["contacts"]["retired"], gone["contacts"]["rejected"]) == (1, 0, 1, 0)
    assert (account(crm_ids[leaving])["is_active"], account(crm_ids[kept])["is_active"]) == (False, True)
    assert (contact(f"odoo:{tag}02")["is_active"], contact(f"odoo:{tag}01")["is_active"]) == (False, True)

    put({"1": kept, "2": leaving}, segment="vip")  # back, and changed
    back = push(hub, "r3", target)
    assert (back["updated"], back["created"], back["rejected"]) == (2, 0, 0)
    assert (back["contacts"]["updated"], back["contacts"]["created"], back["contacts"]["rejected"]) == (1, 0, 0)
    returned = account(crm_ids[leaving])
    assert (returned["is_active"], returned["custom_fields"]["erp2crm_segment"]) == (True, "vip")
    assert _accounts_with(bottlecrm, leaving) == [crm_ids[leaving]]
    assert contact(f"odoo:{tag}02")["is_active"] is True
