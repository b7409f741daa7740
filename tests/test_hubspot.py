"""The HubSpot sink against the local HubSpot emulator, over real HTTP: upsert by a unique property without
duplicates, results matched by id whatever their order, 207 rejections with HubSpot's message, batches of 100,
rate limits (429 with and without Retry-After, the daily quota, pacing), classified errors; and the emulator's
own contract, state file and entry point.

Time is faked: the emulator's rolling window reads the same clock that the client's sleep moves forward."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from connectors.hubspot import DEFAULT_BASE_URL, HubspotHook, HubspotSink, as_property_value, hubspot_client
from emulators.hubspot import HubspotEmulator
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError, QuotaExhausted

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hubspot-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 1_000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def crm(clock):
    with HubspotEmulator(token=TOKEN, clock=clock) as emulator:
        yield emulator


def sink_for(emulator, clock, object_type="companies", id_property="erp2crm_customer_id", token=TOKEN, **kw):
    return HubspotSink(hubspot_client(emulator.url, token, sleep=clock.sleep), object_type, id_property, **kw)


def company(cid: str, **props) -> dict:
    return {"erp2crm_customer_id": cid, "name": f"Customer {cid}", **props}


def by_customer(emulator, object_type="companies") -> dict[str, dict]:
    return {r["properties"]["erp2crm_customer_id"]: r for r in emulator.records(object_type)}


def upsert_raw(emulator, inputs, object_type="companies", headers=AUTH):
    return requests.post(f"{emulator.url}/crm/v3/objects/{object_type}/batch/upsert", json={"inputs": inputs},
                         headers=headers, timeout=10)


# -- the sink ----------------------------------------------------------------------------------------------------
def test_upsert_creates_then_updates_without_duplicates(crm, clock):
    sink = sink_for(crm, clock)
    first = sink.upsert([company("C1", phone="+49 30 1"), company("C2")])
    assert [(r.external_id, r.ok, r.created) for r in first] == [("C1", True, True), ("C2", True, True)]

    again = sink.upsert([company("C1", name="Acme AG"), company("C2")])
    assert [(r.ok, r.created) for r in again] == [(True, False), (True, False)]
    assert [r.crm_id for r in again] == [r.crm_id for r in first]
    stored = by_customer(crm)
    assert len(crm.records("companies")) == 2 and stored["C1"]["properties"]["name"] == "Acme AG"
    assert stored["C1"]["properties"]["phone"] == "+49 30 1"  # a property not sent is left as it is

    # A response lost after HubSpot wrote the record: the client's retry finds it by the unique property.
    crm.fail_next(1, 504, processed=True)
    [retried] = sink.upsert([company("C3")])
    assert retried.ok and clock.sleeps == [0.5]
    assert retried.crm_id == by_customer(crm)["C3"]["id"] and len(crm.records("companies")) == 3


def test_results_are_matched_by_id_not_by_position(clock):
    with HubspotEmulator(token=TOKEN, clock=clock, shuffle_results=True) as crm:
        payloads = [company(f"C{i:02d}") for i in range(20)]
        results = sink_for(crm, clock).upsert(payloads)
        stored = by_customer(crm)
        assert [r.external_id for r in results] == [p["erp2crm_customer_id"] for p in payloads]
        assert all(r.ok and r.crm_id == stored[r.external_id]["id"] for r in results)
        # the emulator did answer out of order
        answer = upsert_raw(crm, [{"id": p["erp2crm_customer_id"], "idProperty": "erp2crm_customer_id",
                                   "properties": {}} for p in payloads]).json()
        order = [r["properties"]["erp2crm_customer_id"] for r in answer["results"]]
        assert sorted(order) == sorted(stored) and order != sorted(order)  # inputs were sorted


def test_207_rejects_only_the_invalid_records_with_hubspots_message(crm, clock):
    contacts = sink_for(crm, clock, object_type="contacts")
    results = contacts.upsert([
        {"erp2crm_customer_id": "C1", "email": "ann@example.com", "lastname": "Ann"},
        {"erp2crm_customer_id": "C2", "email": "not-an-email", "lastname": "Bob"},
        {"erp2crm_customer_id": "C3", "email": "cy@example.com"},
        {"erp2crm_customer_id": "C4", "shoe_size": 44},
    ])
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].error.startswith("VALIDATION_ERROR: Property values were not valid")
    assert "INVALID_EMAIL" in results[1].error and "not-an-email" in results[1].error
    assert "PROPERTY_DOESNT_EXIST" in results[3].error and "shoe_size" in results[3].error
    assert sorted(by_customer(crm, "contacts")) == ["C1", "C3"]

    crm.reject_property_values({"country": "Atlantis"})
    ok, bad = sink_for(crm, clock).upsert([company("C1", country="DE"), company("C2", country="Atlantis")])
    assert ok.ok and not bad.ok and "Atlantis was not a valid value for country" in bad.error


def test_a_400_for_the_batch_rejects_each_of_its_records(crm, clock):
    results = sink_for(crm, clock).upsert([company("C1"), company("C1", name="twice"), company("C2")])
    assert [r.ok for r in results] == [False] * 3
    assert all("HTTP 400 VALIDATION_ERROR: Duplicate IDs found in batch input" in r.error for r in results)
    assert crm.records("companies") == []


def test_values_are_sent_as_strings_and_none_clears_a_property(crm, clock):
    sink = sink_for(crm, clock)
    sink.upsert([company("C1", phone="+49 30 1", erp2crm_clv=1e-05, erp2crm_net_value=1.5e20, erp2crm_order_count=3,
                         erp2crm_churn_flag=True, erp2crm_top_categories=["Tea", "Books"])])
    props = by_customer(crm)["C1"]["properties"]
    assert (props["erp2crm_clv"], props["erp2crm_net_value"]) == ("0.00001", "150000000000000000000")
    assert (props["erp2crm_order_count"], props["erp2crm_churn_flag"]) == ("3", "true")
    assert props["erp2crm_top_categories"] == "Tea;Books"
    [result] = sink.upsert([company("C1", phone=None, erp2crm_clv=float("nan"))])
    assert result.ok and by_customer(crm)["C1"]["properties"]["phone"] == ""
    assert [as_property_value(v) for v in (7.5, 10.0, 0, False, "x")] == ["7.5", "10.0", "0", "false", "x"]


def test_101_payloads_go_as_two_calls_and_1000_as_ten(crm, clock):
    sink = sink_for(crm, clock)
    assert all(r.ok for r in sink.upsert([company(f"A{i:03d}") for i in range(101)]))
    assert sink.client.requests_sent == 2 == crm.requests_served

    sink = sink_for(crm, clock, batch_size=200)  # a larger configured batch is capped at HubSpot's 100
    results = sink.upsert([company(f"B{i:04d}") for i in range(1000)])
    assert all(r.ok and r.created for r in results) and len(crm.records("companies")) == 1101
    assert sink.client.requests_sent == 10  # API calls per 1,000 profiles
    assert clock.sleeps == []  # 12 calls in the window: nothing to wait for


def test_429_with_retry_after_is_retried_after_that_wait(crm, clock):
    crm.fail_next(1, 429, retry_after=3)
    sink = sink_for(crm, clock)
    assert sink.upsert([company("C1")])[0].ok
    assert clock.sleeps == [3.0] and sink.client.requests_sent == 2


def test_429_without_retry_after_waits_for_the_window(crm, clock):
    crm.fail_next(1, 429)
    sink = sink_for(crm, clock)
    assert sink.upsert([company("C1")])[0].ok
    assert clock.sleeps == [10.0] and sink.client.requests_sent == 2


def test_window_used_up_by_another_app_is_waited_out(clock):
    with HubspotEmulator(token=TOKEN, clock=clock, max_per_second_window=3) as crm:
        for _ in range(3):  # the limit is per account: another app's calls count too
            assert requests.get(f"{crm.url}/crm/v3/objects/companies", headers=AUTH, timeout=10).status_code == 200
        sink = sink_for(crm, clock)
        assert sink.upsert([company("C1")])[0].ok
        assert clock.sleeps == [10.0] and sink.client.requests_sent == 2


def test_pacing_sleeps_when_the_window_is_used_up(clock):
    with HubspotEmulator(token=TOKEN, clock=clock, max_per_second_window=2) as crm:
        sink = sink_for(crm, clock, batch_size=1)
        assert all(r.ok for r in sink.upsert([company(f"C{i}") for i in range(3)]))
        assert clock.sleeps == [10.0]  # after the 2nd call Remaining was 0
        assert sink.client.requests_sent == 3 == crm.requests_served  # and no 429 was earned


def test_daily_limit_raises_quota_exhausted_without_retrying(clock):
    with HubspotEmulator(token=TOKEN, clock=clock, daily_limit=1) as crm:
        sink = sink_for(crm, clock)
        assert sink.upsert([company("C1")])[0].ok
        with pytest.raises(QuotaExhausted, match="daily request limit"):
            sink.upsert([company("C2")])
        assert crm.requests_served == 2 and clock.sleeps == []


def test_credentials_scopes_and_id_property_are_config_errors(crm, clock):
    with pytest.raises(ConfigError, match="401 INVALID_AUTHENTICATION"):
        sink_for(crm, clock, token="wrong").upsert([company("C1")])
    crm.fail_next(1, 403)
    with pytest.raises(ConfigError, match="403 MISSING_SCOPES"):
        sink_for(crm, clock).upsert([company("C1")])
    with pytest.raises(ConfigError, match="non-unique 0-2 property: name"):
        sink_for(crm, clock, id_property="name").upsert([company("C1")])
    assert crm.records("companies") == [] and clock.sleeps == []


def test_check_writes_nothing_and_reports_limits(crm, clock):
    sink = sink_for(crm, clock)
    assert sink.check() == {"daily_limit": 250_000, "daily_remaining": 249_999, "window_max": 100,
                            "window_remaining": 99}
    assert crm.requests_served == 1 and crm.records("companies") == []


def test_hook_reads_the_airflow_connection(crm, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(
        {"conn_type": "http", "host": crm.url, "password": TOKEN}))
    assert HubspotSink(HubspotHook().get_client(), "companies", "erp2crm_customer_id").check()["window_max"] == 100
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({"conn_type": "http", "password": TOKEN}))
    assert HubspotHook().get_client().base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({"conn_type": "http", "host": crm.url}))
    with pytest.raises(ConfigError, match="private app"):
        HubspotHook().get_client()


# -- the emulator's own contract -----------------------------------------------------------------------------------
def test_emulator_answers_as_hubspot_documents(crm):
    inputs = [{"id": "C1", "idProperty": "erp2crm_customer_id", "properties": {"name": "Acme"}}]
    r = upsert_raw(crm, inputs)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETE"
    [result] = r.json()["results"]
    assert result["new"] is True and result["archived"] is False and result["id"].isdigit()
    assert {"createdAt", "updatedAt"} <= set(result) and result["properties"]["erp2crm_customer_id"] == "C1"
    for header in ("Max", "Remaining", "Interval-Milliseconds", "Daily", "Daily-Remaining"):
        assert r.headers[f"X-HubSpot-RateLimit-{header}"].isdigit()

    got = requests.get(f"{crm.url}/crm/v3/objects/companies/C1", params={"idProperty": "erp2crm_customer_id"},
                       headers=AUTH, timeout=10)
    assert got.status_code == 200 and got.json()["id"] == result["id"]
    assert requests.get(f"{crm.url}/crm/v3/objects/companies/{result['id']}", headers=AUTH,
                        timeout=10).json()["properties"]["name"] == "Acme"
    missing = requests.get(f"{crm.url}/crm/v3/objects/companies/404", headers=AUTH, timeout=10)
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"

    too_many = upsert_raw(crm, [{**inputs[0], "id": f"X{i}"} for i in range(101)])
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    unauthorised = upsert_raw(crm, inputs, headers={"Authorization": "Bearer nope"})
    assert unauthorised.status_code == 401 and unauthorised.json()["category"] == "INVALID_AUTHENTICATION"
    assert upsert_raw(crm, inputs, object_type="deals").status_code == 400

    # contacts: email is unique too, so it cannot move to a second contact
    ann = {"id": "C1", "idProperty": "erp2crm_customer_id", "properties": {"email": "ann@example.com"}}
    assert upsert_raw(crm, [ann], "contacts").status_code == 200
    taken = upsert_raw(crm, [{**ann, "id": "C2"}], "contacts").json()
    assert taken["numErrors"] == 1 and taken["errors"][0]["context"] == {"ids": ["C2"]}
    by_email = upsert_raw(crm, [{"id": "ann@example.com", "idProperty": "email", "properties": {"lastname": "A"}}],
                          "contacts").json()
    assert by_email["results"][0]["new"] is False and len(crm.records("contacts")) == 1


def test_emulator_window_and_429_body(clock):
    with HubspotEmulator(token=TOKEN, clock=clock, max_per_second_window=1) as crm:
        url = f"{crm.url}/crm/v3/objects/companies"
        assert requests.get(url, headers=AUTH, timeout=10).headers["X-HubSpot-RateLimit-Remaining"] == "0"
        limited = requests.get(url, headers=AUTH, timeout=10)
        assert limited.status_code == 429 and "Retry-After" not in limited.headers
        assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        clock.now += 10
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200


def test_emulator_state_survives_a_restart(tmp_path, clock):
    state = tmp_path / "state" / "hubspot.json"
    with HubspotEmulator(token=TOKEN, state_file=state, daily_limit=2, clock=clock) as crm:
        [created] = sink_for(crm, clock).upsert([company("C1")])
    with HubspotEmulator(token=TOKEN, state_file=state, daily_limit=2, clock=clock) as crm:
        [again] = sink_for(crm, clock).upsert([company("C1", name="Renamed")])
        assert again.crm_id == created.crm_id and not again.created
        with pytest.raises(QuotaExhausted):  # the day's count was kept in the file
            sink_for(crm, clock).upsert([company("C2")])
    assert [p.name for p in state.parent.iterdir()] == ["hubspot.json"]  # no temp files left behind


def test_python_m_entry_point():
    env = {**os.environ, "HUBSPOT_EMULATOR_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "emulators.hubspot", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("hubspot emulator listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert requests.get(url + "/__emulator__/health", timeout=10).json() == {"status": "ok"}
        assert requests.get(url + "/crm/v3/objects/contacts", headers=AUTH, timeout=10).status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == "" and TOKEN not in line + out


# -- the project's push flow -----------------------------------------------------------------------------------
def test_push_flow_to_hubspot(tmp_path, monkeypatch):
    from erp2crm.push import push
    from hub import HubStore

    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()

    def put_profiles(profiles: dict[str, dict]) -> None:
        hub.replace_rows("profiles", [{"customer_id": cid, "profile": json.dumps({"customer_id": cid, **p}),
                                       "push_ready": True} for cid, p in profiles.items()])

    with HubspotEmulator(token=TOKEN) as crm:
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(
            {"conn_type": "http", "host": crm.url, "password": TOKEN}))
        profiles = {f"C{i:03d}": {"name": f"Customer {i}", "clv": 10.0, "email": f"c{i}@example.com"}
                    for i in range(150)}
        put_profiles(profiles)
        first = push(hub, "r1", TargetConfig(name="hubspot", kind="hubspot"))
        assert (first["sent"], first["created"], first["rejected"], first["api_calls"]) == (150, 150, 0, 2)
        assert push(hub, "r2", TargetConfig(name="hubspot", kind="hubspot"))["unchanged"] == 150

        profiles["C007"]["clv"] = 12.5
        put_profiles(profiles)
        third = push(hub, "r3", TargetConfig(name="hubspot", kind="hubspot"))
        assert (third["sent"], third["updated"], third["unchanged"]) == (1, 1, 149)
        stored = by_customer(crm)
        assert len(stored) == 150 and stored["C007"]["properties"]["erp2crm_clv"] == "12.5"
        assert stored["C007"]["properties"]["erp2crm_email"] == "c7@example.com"
