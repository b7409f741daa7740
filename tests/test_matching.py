"""Probabilistic matching, its three bands, review decisions, incremental linking and the settings files.

Mechanics are tested with a hand-set model (every agreeing field adds log2(900) ≈ 9.8 to the match weight,
every disagreeing one subtracts about 4.3, the prior is log2(1e-4) ≈ -13.3), so that each pair's band
follows from its fields by arithmetic; the CJK cases use the shipped, trained model.
"""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from erp2crm.errors import ConfigError
from reconcile import Previous, load_settings, resolve
from reconcile.normalize import NORMAL_FORM_COLUMNS
from reconcile.probabilistic import _creator
from reconcile.settings import ReconcileSettings
from tests.test_reconcile import clusters, records

SHIPPED = load_settings()
SETTINGS = ReconcileSettings(matching=SHIPPED.matching.model_copy(update={"rules": []}),
                             survivorship=SHIPPED.survivorship)


def hand_model(settings: ReconcileSettings = SETTINGS) -> dict:
    model = _creator(settings.matching.probabilistic).create_settings_dict("duckdb")
    model["probability_two_random_records_match"] = 1e-4
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        for i, level in enumerate(levels):
            top, last = i == 0, i == len(levels) - 1
            level["m_probability"] = 0.9 if top else 0.05 if last else 0.05 / (len(levels) - 2)
            level["u_probability"] = 0.001 if top else 0.989 if last else 0.01 / (len(levels) - 2)
    return model


MODEL = hand_model()


def person(system: str, sid: str, **fields) -> dict:
    return dict(source_system=system, source_id=sid, **fields)


def band_of(result, key: str) -> str:
    row = result.crosswalk[result.crosswalk["source_system"] + ":" + result.crosswalk["source_id"] == key].iloc[0]
    return row["match_band"]


def test_agreeing_fields_merge_automatically_and_the_link_is_explained():
    result = resolve(records(
        person("odoo", "1", name="Zhang Wei", city="Shanghai", postcode="200001", street="88 Nanjing Road",
               birth_date="1985-03-02"),
        person("tryton", "7", name="张伟", city="上海市", postcode="200001", street="88 Nanjing Rd.",
               birth_date="1985-03-02"),
    ), settings=SETTINGS, model=MODEL)
    assert clusters(result) == {frozenset({"odoo:1", "tryton:7"})}
    why = json.loads(result.crosswalk.set_index("source_id").at["7", "explanation"])
    assert why["rule"] == "probabilistic" and why["band"] == "auto" and why["score"] >= 0.999
    assert why["matched_with"] == "odoo:1"
    # Every compared field that both records have is named with its level and weight; missing ones are not.
    assert set(why["fields"]) == {"name_key", "city", "postcode", "street", "birth_date"}
    assert why["fields"]["name_key"] == ["Exact match on name_key", round(math.log2(900), 2)]


def test_a_pair_between_the_thresholds_waits_for_review_and_the_decision_is_respected():
    rows = records(
        person("odoo", "1", name="Li Na", city="Beijing"),
        person("erpnext", "A", name="Li Na", city="Beijing"),  # 2 × 9.8 − 13.3 = 6.3 → p ≈ 0.988
        person("tryton", "3", name="Li Na", city="Beijing", birth_date="1990-01-01", postcode="100001",
               street="1 Chang'an Ave"),
    )
    first = resolve(rows, settings=SETTINGS, model=MODEL)
    assert len(clusters(first)) == 3  # nothing merged
    assert {band_of(first, k) for k in ("odoo:1", "erpnext:A", "tryton:3")} == {"review"}
    pending = set(zip(first.reviews["left"], first.reviews["right"]))
    assert ("erpnext:A", "odoo:1") in pending
    assert all(0.9 <= p < 0.999 for p in first.reviews["match_probability"])

    decisions = pd.DataFrame([{"left": "odoo:1", "right": "erpnext:A", "decision": "accepted", "decided_by": "ana",
                               "match_probability": 0.988, "fields": {}},
                              {"left": "tryton:3", "right": "odoo:1", "decision": "rejected", "decided_by": "ana",
                               "match_probability": 0.988, "fields": {}}])
    second = resolve(rows, Previous(first.crosswalk, decisions=decisions), settings=SETTINGS, model=MODEL)
    assert clusters(second) == {frozenset({"odoo:1", "erpnext:A"}), frozenset({"tryton:3"})}
    why = json.loads(second.crosswalk.set_index("source_id").at["A", "explanation"])
    assert why["rule"] == "review_accepted" and why["band"] == "reviewed" and why["decided_by"] == "ana"
    # erpnext:A–tryton:3 is still undecided, but merging it would join odoo:1 with tryton:3: it stays queued.
    assert set(zip(second.reviews["left"], second.reviews["right"])) == {("erpnext:A", "tryton:3")}


def test_a_rejected_pair_stays_apart_even_when_a_rule_would_merge_it():
    rows = records(person("odoo", "1", name="Wang Fang", email="wf@example.com"),
                   person("odoo", "2", name="Wang Fang", email="wf@example.com"))
    decisions = pd.DataFrame([{"left": "odoo:2", "right": "odoo:1", "decision": "rejected", "decided_by": "ana"}])
    result = resolve(rows, Previous(decisions=decisions), settings=SHIPPED, model=MODEL)
    assert len(clusters(result)) == 2 and result.refused_links >= 1


def test_a_probabilistic_link_never_joins_two_tax_ids():
    rows = records(
        person("odoo", "1", name="Huaxin Trading", city="Shanghai", postcode="200001", street="1 Main St",
               tax_id="91310000MA1FL8XQ3A"),
        person("odoo", "2", name="Huaxin Trading", city="Shanghai", postcode="200001", street="1 Main St",
               tax_id="91310000MA1FL8XQ3B"))
    no_tax = SETTINGS.model_copy(deep=True)
    no_tax.matching.probabilistic.comparisons = [c for c in no_tax.matching.probabilistic.comparisons
                                                 if c.column != "tax_id"]
    result = resolve(rows, settings=no_tax, model=hand_model(no_tax))
    assert len(result.pairs) == 1 and result.pairs["match_probability"].iat[0] >= 0.999  # scored as a match...
    assert len(clusters(result)) == 2 and result.refused_links == 1  # ...and refused


def test_incremental_run_scores_only_new_and_changed_records_and_agrees_with_a_full_run():
    base = [person("odoo", str(i), name=f"Customer {i}", city="Shenzhen", postcode=f"51800{i % 10}",
                   street=f"{i} Shennan Road") for i in range(40)]
    twins = [person("tryton", str(i), name=f"Customer {i}", city="Shenzhen", postcode=f"51800{i % 10}",
                    street=f"{i} Shennan Rd") for i in range(0, 40, 4)]
    first = resolve(records(*base, *twins), settings=SETTINGS, model=MODEL)
    assert first.scored_records == 50 and len(clusters(first)) == 40

    changed = [dict(r) for r in twins]
    changed[0].update(name="Someone Else", street="9 Other Street", postcode="518099")  # tryton:0 moves apart
    new = person("erpnext", "N", name="Customer 7", city="Shenzhen", postcode="518007", street="7 Shennan Road")
    rows = records(*base, *changed, new)
    previous = Previous(first.crosswalk, first.pairs, first.model_fingerprint)
    again = resolve(rows, previous, settings=SETTINGS, model=MODEL)
    assert again.scored_records == 2  # tryton:0 and erpnext:N
    full = resolve(rows, settings=SETTINGS, model=MODEL)
    assert clusters(again) == clusters(full)
    assert frozenset({"odoo:7", "erpnext:N"}) in clusters(again)
    assert frozenset({"tryton:0"}) in clusters(again)
    # Customer ids stay put for every customer that did not change.
    ids = dict(zip(first.crosswalk["source_system"] + ":" + first.crosswalk["source_id"], first.crosswalk["customer_id"]))
    now = dict(zip(again.crosswalk["source_system"] + ":" + again.crosswalk["source_id"], again.crosswalk["customer_id"]))
    assert all(now[k] == ids[k] for k in ids if k not in ("tryton:0",))


def test_a_changed_model_rescores_everything():
    rows = records(person("odoo", "1", name="Li Na", city="Beijing"), person("odoo", "2", name="Li Na", city="Beijing"))
    first = resolve(rows, settings=SETTINGS, model=MODEL)
    other = hand_model()
    other["probability_two_random_records_match"] = 1e-2
    again = resolve(rows, Previous(first.crosswalk, first.pairs, first.model_fingerprint), settings=SETTINGS, model=other)
    assert again.scored_records == 2 and again.model_fingerprint != first.model_fingerprint


@pytest.mark.parametrize("left,right", [
    (dict(name="張偉"), dict(name="Zhang Wei")),  # traditional script against pinyin
    (dict(name="张伟"), dict(name="WEI Zhang")),  # family name last, upper case
    (dict(name="上海华信贸易有限公司"), dict(name="上海華信貿易股份有限公司")),  # legal forms, script
])
def test_chinese_names_meet_across_scripts_with_the_shipped_model(left, right):
    common = dict(city="上海", postcode="200001", street="南京东路88号", birth_date="1980-05-05")
    result = resolve(records(person("odoo", "1", **left, **common), person("erpnext", "A", **right, **common)),
                     settings=SETTINGS)
    assert clusters(result) == {frozenset({"odoo:1", "erpnext:A"})}
    assert json.loads(result.crosswalk.set_index("source_id").at["A", "explanation"])["rule"] == "probabilistic"


def test_same_common_name_in_different_places_is_not_merged_by_the_shipped_model():
    result = resolve(records(
        person("odoo", "1", name="王芳", city="北京", postcode="100001", street="长安街1号", birth_date="1980-01-01"),
        person("erpnext", "A", name="Wang Fang", city="广州", postcode="510000", street="天河路5号", birth_date="1992-07-07"),
    ), settings=SETTINGS)
    assert len(clusters(result)) == 2


# --- settings files: (yaml, expected error) ------------------------------------------------------------
GOOD_PROB = {"blocking": [["email"]], "comparisons": [{"column": "email"}]}


@pytest.mark.parametrize("matching,expected", [
    ({"rules": ["same_tax_id", "same_fax"]}, "rules.1: Input should be 'same_tax_id', 'same_email'"),
    ({"rules": ["same_email", "same_email"]}, "rules: a rule may be listed once"),
    ({"name_similarity": 120}, "name_similarity: Input should be less than or equal to 100"),
    ({"default_phone_region": "china"}, "default_phone_region: String should match pattern"),
    ({"probabilistic": {**GOOD_PROB, "review_at": 0.99, "auto_merge_at": 0.9}},
     "review_at (0.99) must not be above auto_merge_at (0.9)"),
    ({"probabilistic": {**GOOD_PROB, "blocking": [["fax"]]}}, "probabilistic.blocking.0.0: Input should be 'name_key'"),
    ({"probabilistic": {**GOOD_PROB, "blocking": []}}, "probabilistic.blocking: List should have at least 1 item"),
    ({"probabilistic": {**GOOD_PROB, "memory_limit": "lots"}}, "probabilistic.memory_limit: String should match pattern"),
    ({"probabilistic": {**GOOD_PROB, "comparisons": [{"column": "email", "thresholds": [0.9]}]}},
     "comparison 'email': thresholds apply to jaro_winkler only"),
    ({"probabilistic": {**GOOD_PROB, "comparisons": [{"column": "street", "method": "jaro_winkler",
                                                      "thresholds": [0.8, 0.9]}]}},
     "comparison 'street': thresholds must lie between 0 and 1, highest first"),
    ({"probabilistic": {**GOOD_PROB, "comparisons": [{"column": "email"}, {"column": "email"}]}},
     "each column may be compared once"),
    ({"probabilistic": {**GOOD_PROB, "auto_merge_at": 1.5}}, "probabilistic.auto_merge_at: Input should be less than 1"),
    ({"threshold": 0.9}, "threshold: Extra inputs are not permitted"),
])
def test_invalid_matching_settings_are_refused_with_the_field_named(tmp_path, matching, expected):
    import yaml

    (tmp_path / "matching.yaml").write_text(yaml.safe_dump(matching))
    (tmp_path / "survivorship.yaml").write_text("default: most_recent\n")
    with pytest.raises(ConfigError) as err:
        load_settings(folder=tmp_path)
    assert str(tmp_path / "matching.yaml") in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("survivorship,expected", [
    ({"default": "newest"}, "default: Input should be 'source_priority', 'most_recent'"),
    ({"fields": {"fax": "most_recent"}}, "fields.fax.[key]: Input should be 'name'"),
    ({"fields": {"email": "most_recent"}, "groups": {"contact": {"fields": ["email", "phone"], "rule": "most_recent"}}},
     "field 'email' is given a rule twice (in fields and group 'contact')"),
    ({"groups": {"address": {"fields": ["street"], "rule": "most_frequent"}}},
     "groups.address.rule: Input should be 'source_priority', 'most_recent' or 'most_complete'"),
    ({"groups": {"address": {"fields": [], "rule": "most_recent"}}}, "groups.address.fields: List should have at least 1 item"),
])
def test_invalid_survivorship_settings_are_refused_with_the_field_named(tmp_path, survivorship, expected):
    import yaml

    (tmp_path / "matching.yaml").write_text("rules: [same_email]\n")
    (tmp_path / "survivorship.yaml").write_text(yaml.safe_dump(survivorship))
    with pytest.raises(ConfigError) as err:
        load_settings(folder=tmp_path)
    assert str(tmp_path / "survivorship.yaml") in str(err.value) and expected in str(err.value)


def test_a_model_trained_for_other_comparisons_is_refused_with_what_to_do():
    stale = hand_model()
    stale["comparisons"] = [c for c in stale["comparisons"] if c["output_column_name"] != "street"]
    with pytest.raises(ConfigError, match="no trained parameters for 'street'.*erp2crm reconcile train"):
        resolve(records(person("odoo", "1", name="A", city="X"), person("odoo", "2", name="A", city="X")),
                settings=SETTINGS, model=stale)


def test_a_shared_common_name_weighs_less_than_a_shared_rare_one():
    tf = SETTINGS.model_copy(deep=True)
    tf.matching.probabilistic.term_frequency_min_records = 0  # count frequencies even in this small set
    tf.matching.probabilistic.review_at = 1e-9  # keep every scored pair
    common = [person("odoo", str(i), name="Wang Fang", city="Beijing") for i in range(8)]
    rare = [person("erpnext", "A", name="Ouyang Nana", city="Beijing"), person("tryton", "B", name="Ouyang Nana", city="Beijing")]
    others = [person("erpnext", f"X{i}", name=f"Someone {i}", city="Beijing") for i in range(90)]
    result = resolve(records(*common, *rare, *others), settings=tf, model=MODEL)
    name_weight = {tuple(sorted((p.left, p.right))): json.loads(p.fields)["name_key"][1] for p in result.pairs.itertuples()}
    assert name_weight[("erpnext:A", "tryton:B")] > max(w for k, w in name_weight.items() if k[0].startswith("odoo"))


def bench_generator():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "reconcile_data.py"
    spec = importlib.util.spec_from_file_location("reconcile_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_records(n: int, seed: int, truth: bool = False) -> pd.DataFrame:
    records = bench_generator().generate(n, seed).assign(is_company=None, is_active=None, updated_at=pd.NaT)
    return records if truth else records.drop(columns="true_id")


def test_an_empty_previous_state_is_a_first_run():
    data = _bench_records(300, seed=3)
    first = resolve(data, settings=SHIPPED)
    again = resolve(data, Previous(first.crosswalk.iloc[:0], customers=first.customers.iloc[:0]), settings=SHIPPED)
    assert again.crosswalk["customer_id"].tolist() == first.crosswalk["customer_id"].tolist()
    assert again.renormalised.all() and again.rebuilt_records == len(data)


def test_linking_changes_into_the_previous_state_gives_what_a_full_run_gives():
    data = _bench_records(3000, seed=5)
    later = data.sample(n=300, random_state=1).index
    first = resolve(data.drop(index=later), settings=SHIPPED)
    changed = data.drop(index=later[:20])  # 280 new records arrive, 20 of the first run's records are gone...
    edited = changed.drop(index=later, errors="ignore").sample(n=40, random_state=2).index
    changed.loc[edited, "email"] = [f"moved{i}@example.org" for i in range(40)]  # ...and 40 change their email
    state = Previous(first.crosswalk, first.pairs, first.model_fingerprint, customers=first.customers,
                     normalised=first.normalised)
    incremental = resolve(changed, state, settings=SHIPPED)
    full = resolve(changed, Previous(first.crosswalk), settings=SHIPPED)  # every record normalised, scored, clustered
    assert incremental.scored_records == 320 and full.scored_records == len(changed)
    assert incremental.rebuilt_records < len(changed) / 3 and full.rebuilt_records == len(changed)
    by_key = ["source_system", "source_id"]
    columns = [*by_key, "customer_id", "match_rule", "match_band", "match_score", "fingerprint"]
    pd.testing.assert_frame_equal(incremental.crosswalk.sort_values(by_key)[columns].reset_index(drop=True),
                                  full.crosswalk.sort_values(by_key)[columns].reset_index(drop=True))
    pd.testing.assert_frame_equal(incremental.customers.sort_values("customer_id").reset_index(drop=True),
                                  full.customers.sort_values("customer_id").reset_index(drop=True), check_dtype=False)
    assert sorted(map(str, incremental.events)) == sorted(map(str, full.events))
    assert set(zip(incremental.reviews["left"], incremental.reviews["right"])) == \
        set(zip(full.reviews["left"], full.reviews["right"]))
    # From the hub, the previous run leaves only each record's normal forms: the same result, and only the
    # new and changed records are normalised.
    forms = first.normalised[["unique_id", "fingerprint", *NORMAL_FORM_COLUMNS]]
    from_hub = resolve(changed, Previous(first.crosswalk, first.pairs, first.model_fingerprint,
                                         customers=first.customers, normalised=forms), settings=SHIPPED)
    assert from_hub.renormalised.sum() == 320 and full.renormalised.all()
    pd.testing.assert_frame_equal(from_hub.crosswalk.sort_values(by_key)[columns].reset_index(drop=True),
                                  full.crosswalk.sort_values(by_key)[columns].reset_index(drop=True))
    pd.testing.assert_frame_equal(from_hub.customers.sort_values("customer_id").reset_index(drop=True),
                                  full.customers.sort_values("customer_id").reset_index(drop=True), check_dtype=False)
