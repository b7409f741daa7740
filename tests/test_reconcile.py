"""Reconciliation: normalisation, each deterministic rule, the never-merge constraint, stable ids, survivorship."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from erp2crm.canonical import CUSTOMER_RECORD
from reconcile import Previous, ReconcileSettings, resolve
from reconcile.settings import MatchingSettings, SurvivorshipSettings
from reconcile.normalize import (_UNSURE, _parsed_phone, _quick_phone, name_key, norm_city, norm_email, norm_name,
                                 norm_phone, norm_postcode, norm_street, norm_tax_id)


def records(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for field in CUSTOMER_RECORD.fields:
        if field not in frame:
            frame[field] = None
    frame["updated_at"] = pd.to_datetime(frame["updated_at"].fillna("2026-01-01"), utc=True)
    return frame


def clusters(result) -> set[frozenset]:
    keys = result.crosswalk["source_system"] + ":" + result.crosswalk["source_id"]
    return {frozenset(group) for _, group in keys.groupby(result.crosswalk["customer_id"])}


@pytest.mark.parametrize("raw,expected", [
    ("上海華信貿易股份有限公司", "上海华信贸易"),  # traditional → simplified, legal form removed whole
    ("ＡＣＭＥ　Trading Co., Ltd.", "acme trading"),  # full-width, suffix in two parts
    ("Müller GmbH", "müller"),
    ("  Zhang   Wei ", "zhang wei"),
])
def test_norm_name(raw, expected):
    assert norm_name(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("+86 138 0013 8000", "+8613800138000"), ("13800138000", "+8613800138000"),
    ("0086-138-0013-8000", "+8613800138000"), ("(+86) 138-0013-8000", "+8613800138000"),
    ("12", None), (None, None),
])
def test_norm_phone(raw, expected):
    assert norm_phone(raw, "CN") == expected


def test_phone_dialled_from_the_erp_region_falls_back_after_the_customer_country():
    result = resolve(records(
        dict(source_system="odoo", source_id="1", name="Silverline Inc.", phone="+1 (206) 252-2220", country="US"),
        dict(source_system="tryton", source_id="9", name="SILVERLINE INC", phone="001 206 252 2220", country="US"),
        dict(source_system="erpnext", source_id="D", name="Müller GmbH", phone="030 12345678", country="DE"),
    ), settings=ReconcileSettings(matching=MatchingSettings(default_phone_region="CN")))
    assert clusters(result) == {frozenset({"odoo:1", "tryton:9"}), frozenset({"erpnext:D"})}
    assert set(result.customers["phone"]) == {"+12062522220", "+493012345678"}


@pytest.mark.parametrize("raw,expected", [
    ("Li.Na+crm@GMAIL.com", "lina@gmail.com"),  # Gmail ignores plus-tags and dots
    ("li.na@googlemail.com", "lina@gmail.com"),
    ("wei+shop@outlook.com", "wei@outlook.com"),  # Outlook ignores plus-tags, not dots
    ("w.ei+shop@outlook.com", "w.ei@outlook.com"),
    ("sales+eu@acme.de", "sales+eu@acme.de"),  # a company domain: "sales+eu" may be its own mailbox
])
def test_plus_tags_are_dropped_only_where_the_provider_ignores_them(raw, expected):
    assert norm_email(raw) == expected


@pytest.mark.parametrize("normaliser,raw,expected", [
    (name_key, "张伟", "wei zhang"), (name_key, "zhang wei", "wei zhang"), (name_key, "wei zhang", "wei zhang"),
    (name_key, "朱玉兰", "yulan zhu"), (name_key, "欧阳娜娜", "nana ouyang"),  # compound family name
    # A Chinese company: region and trade name in pinyin, industry in English, as its registered English name.
    (name_key, "深圳凯辰纺织有限公司", "kaichen shenzhen textile"),
    (name_key, "Shenzhen Kaichen Textile Co., Ltd.", "kaichen shenzhen textile"),
    (name_key, "蘇州美隆家居", "furnishing home meilong suzhou"), (name_key, "Suzhou Meilong Home Furnishing", "furnishing home meilong suzhou"),
    (name_key, "华为技术有限公司", "huawei technology"),  # four characters ending in an industry: a company, no region
    (name_key, "Huawei Technologies Co., Ltd.", "huawei technology"),  # industry words take one English form
    (name_key, "华信国际贸易", "huaxin international trading"), (name_key, "黑龙江华信贸易", "heilongjiang huaxin trading"),
    (name_key, "上海华信宏图", "shanghaihuaxinhongtu"),  # no known industry: one word
    (name_key, "吕燕", "lyu yan"), (name_key, "LV Yan", "lyu yan"), (name_key, "Lü Yan", "lyu yan"),  # ü: passport "Lyu"
    (name_key, "Dubois Industrie S.A.R.L.", "dubois industrie"), (name_key, "Dubois Industrie SAS", "dubois industrie"),
    (name_key, "Kaichen Joint Stock Co., Ltd.", "kaichen"),
    (norm_street, "88 Nanjing Road", "88 nanjing rd"), (norm_street, "88 Nanjing Rd.", "88 nanjing rd"),
    (norm_street, "Hauptstraße 5", "haupt st 5"), (norm_street, "Haupt Str. 5", "haupt st 5"),
    (norm_street, "南京東路88號", "南京东路88号"),
    (norm_city, "上海市", "shanghai"), (norm_city, "Shanghai", "shanghai"), (norm_city, "München", "münchen"),
    (norm_postcode, "sw1a 1aa", "SW1A1AA"), (norm_postcode, "20038-1234", "200381234"), (norm_postcode, None, None),
])
def test_names_and_addresses_normalise_to_one_form(normaliser, raw, expected):
    value = norm_name(raw) if normaliser is name_key else raw
    assert normaliser(value) == expected


def test_the_fast_phone_road_agrees_with_libphonenumber():
    cases = [("+86 138 0013 8000", "CN"), ("0086-138-0013-8000", "CN"), ("021-6123-4567", "CN"), ("13800138000", "CN"),
             ("030 12345678", "DE"), ("(415) 555-0132", "US"), ("011 44 20 7946 0958", "US"), ("001 206 252 2220", "CN"),
             ("+44 (0)20 7946 0958", "GB"), ("020 7946 0958", "GB"), ("06 12 34 56 78", "FR"), ("12", "CN"),
             ("+1 206 252 2220 ext. 5", "US"), ("0086 10 6993 7629", "CN"), ("+49 30 1234567", "CN")]
    for raw, region in cases:
        quick = _quick_phone(raw, region)
        assert quick is _UNSURE or quick == _parsed_phone(raw, region), (raw, region, quick)
    assert sum(_quick_phone(raw, region) is not _UNSURE for raw, region in cases) >= 10  # the road is used


def test_norm_email_and_tax_id():
    assert norm_email("  Li.Na@Example.COM ") == "li.na@example.com"
    assert norm_email("li.na@@example") is None
    assert norm_tax_id("9131 0000-ma1fl8xq3a") == "91310000MA1FL8XQ3A"


def test_each_rule_links_and_explains():
    result = resolve(records(
        dict(source_system="odoo", source_id="1", name="华信贸易有限公司", tax_id="91310000MA1FL8XQ3A"),
        dict(source_system="tryton", source_id="5", name="Huaxin Trading Co., Ltd.", tax_id="91310000 ma1fl8xq3a"),
        dict(source_system="odoo", source_id="2", name="Li Na", email=" LI.NA@example.com"),
        dict(source_system="erpnext", source_id="C-2", name="Na Li", email="li.na@example.com"),
        dict(source_system="odoo", source_id="3", name="張偉", phone="+86 139 1234 5678"),
        dict(source_system="erpnext", source_id="C-3", name="张伟", phone="13912345678"),
    ))
    assert clusters(result) == {frozenset({"odoo:1", "tryton:5"}), frozenset({"odoo:2", "erpnext:C-2"}),
                                frozenset({"odoo:3", "erpnext:C-3"})}
    rules = dict(zip(result.crosswalk["source_system"] + ":" + result.crosswalk["source_id"], result.crosswalk["match_rule"]))
    assert rules["tryton:5"] == "same_tax_id" and rules["erpnext:C-2"] == "same_email"
    assert rules["erpnext:C-3"] == "same_phone_similar_name"
    why = json.loads(result.crosswalk.set_index("source_id").at["C-3", "explanation"])
    assert why["matched_with"] == "odoo:3" and why["name_similarity"] == 100.0


def test_pinyin_lets_a_chinese_name_meet_its_romanised_spelling():
    result = resolve(records(
        dict(source_system="odoo", source_id="1", name="张伟", phone="+86 139 1234 5678"),
        dict(source_system="erpnext", source_id="A", name="Wei Zhang", phone="13912345678"),  # given name first
        dict(source_system="odoo", source_id="2", name="欧阳娜娜", phone="+86 139 8765 4321"),
        dict(source_system="tryton", source_id="7", name="Ouyang Nana", phone="139 8765 4321"),
        dict(source_system="odoo", source_id="3", name="李娜", phone="+86 138 0000 1111"),
        dict(source_system="tryton", source_id="8", name="Wang Fang", phone="138 0000 1111"),  # same phone, another person
    ))
    assert clusters(result) == {frozenset({"odoo:1", "erpnext:A"}), frozenset({"odoo:2", "tryton:7"}),
                                frozenset({"odoo:3"}), frozenset({"tryton:8"})}
    why = json.loads(result.crosswalk.set_index("source_id").at["A", "explanation"])
    assert why["names_compared"] == "pinyin" and why["name_similarity"] == 100.0


def test_shared_phone_with_different_names_does_not_merge():
    result = resolve(records(
        dict(source_system="odoo", source_id="1", name="Alpha Trading Ltd", phone="+86 21 6123 4567"),
        dict(source_system="odoo", source_id="2", name="Omega Logistics Ltd", phone="021-6123-4567"),
    ))
    assert len(clusters(result)) == 2


def test_never_merge_two_tax_ids_even_when_email_matches():
    result = resolve(records(
        dict(source_system="odoo", source_id="1", name="A", tax_id="91310000MA1FL8XQ3A", email="info@group.cn"),
        dict(source_system="odoo", source_id="2", name="B", tax_id="91310000MA1FL8XQ3B", email="info@group.cn"),
        dict(source_system="erpnext", source_id="X", name="A", email="info@group.cn"),
    ))
    groups = clusters(result)
    assert len(groups) == 2 and result.refused_links == 1
    assert not any({"odoo:1", "odoo:2"} <= g for g in groups)


def test_ids_are_stable_across_runs_and_new_records():
    first = resolve(records(
        dict(source_system="odoo", source_id="1", name="Li Na", email="li.na@example.com"),
        dict(source_system="odoo", source_id="2", name="Wang Fang", email="wang@example.com"),
    ))
    ids = dict(zip(first.crosswalk["source_id"], first.crosswalk["customer_id"]))
    # A new record that joins customer 1 sorts first now; the customer must keep its id.
    second = resolve(records(
        dict(source_system="erpnext", source_id="A", name="Li Na", email="LI.NA@example.com"),
        dict(source_system="odoo", source_id="1", name="Li Na", email="li.na@example.com"),
        dict(source_system="odoo", source_id="2", name="Wang Fang", email="wang@example.com"),
    ), previous=Previous(first.crosswalk))
    again = dict(zip(second.crosswalk["source_id"], second.crosswalk["customer_id"]))
    assert again["1"] == ids["1"] and again["A"] == ids["1"] and again["2"] == ids["2"]
    assert second.events == []


def test_merge_keeps_the_oldest_id_and_records_the_event():
    first = resolve(records(
        dict(source_system="odoo", source_id="1", name="Li Na", email="li.na@example.com"),
        dict(source_system="erpnext", source_id="A", name="Li Na", phone="13800138000"),
    ))
    old = dict(zip(first.crosswalk["source_id"], first.crosswalk["customer_id"]))
    created = {old["1"]: "2026-01-01", old["A"]: "2026-02-01"}
    # The ERPNext record gains the same email: the two customers are one.
    second = resolve(records(
        dict(source_system="odoo", source_id="1", name="Li Na", email="li.na@example.com"),
        dict(source_system="erpnext", source_id="A", name="Li Na", phone="13800138000", email="li.na@example.com"),
    ), previous=Previous(first.crosswalk, created_at=created))
    assert set(second.crosswalk["customer_id"]) == {old["1"]}
    assert second.events == [{"event": "merged", "customer_id": old["1"], "previous_ids": [old["A"]]}]


def test_split_gives_the_smaller_part_a_new_id():
    first = resolve(records(
        dict(source_system="odoo", source_id="1", name="Li Na", email="shared@example.com"),
        dict(source_system="odoo", source_id="2", name="Li Na", email="shared@example.com"),
        dict(source_system="erpnext", source_id="A", name="Li Na", email="shared@example.com"),
    ))
    (old,) = set(first.crosswalk["customer_id"])
    second = resolve(records(
        dict(source_system="odoo", source_id="1", name="Li Na", email="shared@example.com"),
        dict(source_system="odoo", source_id="2", name="Wang Fang", email="wang@example.com"),
        dict(source_system="erpnext", source_id="A", name="Li Na", email="shared@example.com"),
    ), previous=Previous(first.crosswalk))
    ids = dict(zip(second.crosswalk["source_id"], second.crosswalk["customer_id"]))
    assert ids["1"] == ids["A"] == old and ids["2"] != old
    assert second.events == [{"event": "split", "customer_id": ids["2"], "previous_ids": [old]}]


def test_survivorship_prefers_source_priority_then_recency_and_normalises_contacts():
    result = resolve(records(
        dict(source_system="erpnext", source_id="A", name="Li Na (ERPNext)", email="LI.NA@example.com",
             city="上海", updated_at="2026-05-01"),
        dict(source_system="odoo", source_id="1", name="Li Na", email="li.na@example.com", city=None,
             phone="13800138000", updated_at="2026-01-01"),
        dict(source_system="odoo", source_id="2", name="Li Na newer", email="li.na@example.com", updated_at="2026-03-01"),
    ), settings=ReconcileSettings(survivorship=SurvivorshipSettings(source_priority=["odoo", "erpnext"])))
    golden = result.customers.iloc[0]
    assert golden["name"] == "Li Na newer"  # odoo outranks erpnext; newest odoo record first
    assert golden["city"] == "上海"  # the first non-empty value, even from a lower-priority source
    assert golden["email"] == "li.na@example.com" and golden["phone"] == "+8613800138000"
    assert golden["source_count"] == 3
    assert json.loads(golden["source_ids"]) == ["erpnext:A", "odoo:1", "odoo:2"]


def test_each_survivorship_rule_picks_its_value_and_a_group_comes_from_one_record():
    rules = SurvivorshipSettings.model_validate({
        "source_priority": ["odoo", "erpnext", "tryton"], "default": "source_priority",
        "fields": {"email": "most_recent", "phone": "most_frequent", "given_name": "most_complete"},
        "groups": {"address": {"fields": ["street", "city", "postcode"], "rule": "most_recent"}}})
    result = resolve(records(
        # odoo: first by priority; oldest; the fullest record (given name, phone, street, city, postcode...)
        dict(source_system="odoo", source_id="1", name="Li Na", given_name="Na", tax_id="91310000MA1FL8XQ3A",
             email="old@example.com", phone="13800138000", street="1 Old Road", city="Beijing", postcode="100001",
             updated_at="2026-01-01"),
        # erpnext: the most recent record, with a partial address (no postcode): the group takes it whole
        dict(source_system="erpnext", source_id="A", name="LI Na", given_name="Nana", tax_id="91310000MA1FL8XQ3A",
             email="new@example.com", phone="13900139000", street="9 New Street", city="Shanghai",
             updated_at="2026-06-01"),
        dict(source_system="tryton", source_id="7", name="Na Li", tax_id="91310000MA1FL8XQ3A",
             phone="13900139000", updated_at="2026-03-01"),
    ), settings=ReconcileSettings(survivorship=rules))
    golden = result.customers.iloc[0]
    assert golden["name"] == "Li Na"  # source_priority: odoo first
    assert golden["email"] == "new@example.com"  # most_recent: erpnext, June
    assert golden["phone"] == "+8613900139000"  # most_frequent: two records of three agree
    assert golden["given_name"] == "Na"  # most_complete: the odoo record has the most fields filled
    assert (golden["street"], golden["city"]) == ("9 New Street", "Shanghai")
    assert golden["postcode"] is None or pd.isna(golden["postcode"])  # not mixed in from the older address


def _normalise_in_daemon(queue, frame):
    import reconcile.normalize as normalize

    normalize.PARALLEL_FROM = 2
    queue.put(normalize.normalise_records(frame)["n_name_key"].tolist())


def test_parallel_normalisation_gives_the_serial_result_and_stays_serial_in_a_daemon(monkeypatch):
    import multiprocessing

    import reconcile.normalize as normalize

    frame = records(*[dict(source_system="odoo", source_id=str(i), name=name, phone=f"+86 138 0013 80{i:02d}",
                           email=f"U{i}@Example.com", city="上海市", postcode="200 001")
                      for i, name in enumerate(["张伟", "Wei Zhang", "欧阳娜娜", "Müller GmbH"] * 5)])
    serial = normalize.normalise_records(frame)
    monkeypatch.setattr(normalize, "PARALLEL_FROM", 2)  # force the worker processes on this small set
    parallel = normalize.normalise_records(frame)
    columns = [c for c in serial if c.startswith("n_")]
    pd.testing.assert_frame_equal(parallel[columns], serial[columns])
    # A daemonic process (a Celery prefork child) may not start workers: it normalises in place instead.
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_normalise_in_daemon, args=(queue, frame), daemon=True)
    child.start()
    assert queue.get(timeout=60) == serial["n_name_key"].tolist()
    child.join(timeout=60)
    assert child.exitcode == 0
