"""Salesforce Bulk API 2.0 ingest upsert and expired-session renewal, against the stateful emulator over HTTP:
the emulator's job lifecycle and token endpoint, the sink's automatic choice between sObject Collections and Bulk,
results mapped back per payload (rejected and unprocessed records included), the call count per job, and the
session renewed in one place without a secret ever reaching a log or an error."""
from __future__ import annotations

import csv
import io
import json
import logging

import pytest
import requests

from connectors.http import HttpClient
from connectors.registry import open_sink
from connectors.salesforce import SalesforceClient, SalesforceHook, SalesforceSink
from connectors.salesforce_bulk import MAX_RECORDS_PER_JOB
from emulators.salesforce import SalesforceEmulator
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError

TOKEN = "bulk-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXT = "ERP2CRM_Customer_Id__c"
JOBS = "/services/data/v60.0/jobs/ingest"
CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN = "3MVG9-test-client", "cs-5f1e9a77c0d4-secret", "rt-90c1d2e3f4a5-refresh"
OAUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}


class Sleeps(list):
    """Records the client's waits instead of waiting."""
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def sink_for(crm: SalesforceEmulator, bulk_threshold: int | None = 1, client: HttpClient | None = None,
             sobject: str = "Account") -> SalesforceSink:
    client = client or HttpClient(crm.url, headers=AUTH, sleep=Sleeps())
    return SalesforceSink(client, "v60.0", sobject, EXT, bulk_threshold=bulk_threshold)


def accounts(n: int, version: int = 1, start: int = 0) -> list[dict]:
    return [{EXT: f"C{i:06d}", "Name": f"Customer {i} v{version}", "Phone": f"+49 30 {i}"}
            for i in range(start, start + n)]


def paths(crm: SalesforceEmulator) -> list[str]:
    return [f"{method} {path.split('/v60.0/')[-1]}" for method, path in crm.request_log]


def connection(monkeypatch, crm: SalesforceEmulator, password: str | None = TOKEN, **extra) -> None:
    conn = {"conn_type": "http", "host": crm.url, "extra": extra}
    if password:
        conn["password"] = password
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))


# -- the emulator's Bulk API 2.0 and token endpoint, over raw HTTP --------------------------------------------

def test_emulator_bulk_job_lifecycle():
    with SalesforceEmulator(token=TOKEN) as crm:
        spec = {"object": "Account", "externalIdFieldName": EXT, "contentType": "CSV", "operation": "upsert",
                "lineEnding": "LF"}
        job = requests.post(crm.url + JOBS, json=spec, headers=AUTH, timeout=10).json()
        assert job["state"] == "Open" and job["id"].startswith("750") and len(job["id"]) == 18
        assert job["contentUrl"] == f"services/data/v60.0/jobs/ingest/{job['id']}/batches"
        url = f"{crm.url}{JOBS}/{job['id']}"
        body = f'{EXT},Name,Phone\nA-1,"Acme, Inc.",+49 1\nA-2,,2\nA-3,Gamma,#N/A\n'.encode()
        put = requests.put(url + "/batches", data=body, headers={**AUTH, "Content-Type": "text/csv"}, timeout=10)
        assert put.status_code == 201 and put.content == b""
        closed = requests.patch(url, json={"state": "UploadComplete"}, headers=AUTH, timeout=10).json()
        assert closed["state"] == "UploadComplete"
        assert requests.put(url + "/batches", data=body, headers=AUTH, timeout=10).status_code == 400  # closed
        assert crm.records("Account") == []  # nothing runs before a poll
        first = requests.get(url, headers=AUTH, timeout=10).json()
        assert first["state"] == "InProgress"
        done = requests.get(url, headers=AUTH, timeout=10).json()
        assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"]) == ("JobComplete", 3, 1)

        ok = list(csv.reader(io.StringIO(requests.get(url + "/successfulResults", headers=AUTH, timeout=10).text)))
        assert ok[0] == ["sf__Id", "sf__Created", EXT, "Name", "Phone"]
        assert [(r[1], r[2], r[3]) for r in ok[1:]] == [("true", "A-1", "Acme, Inc."), ("true", "A-3", "Gamma")]
        failed_text = requests.get(url + "/failedResults", headers=AUTH, timeout=10).text
        failed = list(csv.reader(io.StringIO(failed_text)))
        assert failed[0] == ["sf__Id", "sf__Error", EXT, "Name", "Phone"]
        assert failed[1][1:3] == ["REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --", "A-2"]
        assert requests.get(url + "/unprocessedrecords", headers=AUTH, timeout=10).text == ""
        stored = {r[EXT]: r for r in crm.records("Account")}
        assert stored["A-1"]["Name"] == "Acme, Inc." and stored["A-3"]["Phone"] is None  # #N/A is null
        assert crm.stats["bulk_jobs"] == 1 and crm.stats["requests"] == 9


def test_emulator_failed_job_leaves_every_row_unprocessed():
    with SalesforceEmulator(token=TOKEN, bulk_polls_in_progress=0) as crm:
        spec = {"object": "Account", "externalIdFieldName": EXT, "operation": "upsert"}
        url = f"{crm.url}{JOBS}/{requests.post(crm.url + JOBS, json=spec, headers=AUTH, timeout=10).json()['id']}"
        requests.put(url + "/batches", data=f"{EXT},Name,Shoe_Size\nA-1,Acme,44\n".encode(),
                     headers={**AUTH, "Content-Type": "text/csv"}, timeout=10)
        requests.patch(url, json={"state": "UploadComplete"}, headers=AUTH, timeout=10)
        info = requests.get(url, headers=AUTH, timeout=10).json()
        assert info["state"] == "Failed" and "Shoe_Size" in info["errorMessage"]
        unprocessed = requests.get(url + "/unprocessedrecords", headers=AUTH, timeout=10).text
        assert list(csv.reader(io.StringIO(unprocessed))) == [[EXT, "Name", "Shoe_Size"], ["A-1", "Acme", "44"]]
        assert crm.records("Account") == []


def test_emulator_token_endpoint_and_session_expiry():
    with SalesforceEmulator(token=TOKEN, **OAUTH) as crm:
        def token(**form):
            return requests.post(crm.url + "/services/oauth2/token", data=form, timeout=10)

        assert token(grant_type="password").json()["error"] == "unsupported_grant_type"
        assert token(grant_type="client_credentials", client_id="nope", client_secret=CLIENT_SECRET
                     ).json()["error"] == "invalid_client_id"
        assert token(grant_type="client_credentials", client_id=CLIENT_ID, client_secret="nope"
                     ).json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
        bad = token(grant_type="refresh_token", client_id=CLIENT_ID, refresh_token="old")
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}

        crm.expire_sessions()
        expired = requests.get(crm.url + "/services/data/v60.0/limits", headers=AUTH, timeout=10)
        assert expired.status_code == 401
        assert expired.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        fresh = token(grant_type="refresh_token", client_id=CLIENT_ID, refresh_token=REFRESH_TOKEN).json()
        assert set(fresh) >= {"access_token", "instance_url", "token_type", "issued_at", "signature", "id"}
        assert fresh["instance_url"] == crm.url and fresh["token_type"] == "Bearer"
        new_auth = {"Authorization": f"Bearer {fresh['access_token']}"}
        assert requests.get(crm.url + "/services/data/v60.0/limits", headers=new_auth, timeout=10).status_code == 200
        m2m = token(grant_type="client_credentials", client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        assert m2m.status_code == 200 and m2m.json()["access_token"] != fresh["access_token"]

    with SalesforceEmulator(token=TOKEN, session_ttl_requests=2) as crm:
        codes = [requests.get(crm.url + "/services/data/v60.0/limits", headers=AUTH, timeout=10).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 401]


# -- the sink -----------------------------------------------------------------------------------------------

def test_bulk_upsert_creates_then_updates_without_duplicates():
    with SalesforceEmulator(token=TOKEN) as crm:
        sink = sink_for(crm)
        first = sink.upsert(accounts(500))
        assert [r.external_id for r in first] == [f"C{i:06d}" for i in range(500)]  # payload order
        assert all(r.ok and r.created and r.crm_id for r in first)
        again = sink.upsert(accounts(500))
        assert all(r.ok and not r.created for r in again)
        assert [r.crm_id for r in again] == [r.crm_id for r in first]
        stored = crm.records("Account")
        assert len(stored) == 500 and len({r[EXT] for r in stored}) == 500
        assert crm.stats["bulk_jobs"] == 2 and crm.stats["records_updated"] == 500
        assert not any("composite" in p for p in paths(crm))
        assert sink.client.sleep == [1.0, 2.0, 1.0, 2.0]  # one InProgress poll per job, then a doubled wait


def test_null_is_sent_as_na_and_a_missing_key_leaves_the_field_unchanged():
    with SalesforceEmulator(token=TOKEN) as crm:
        sink = sink_for(crm)
        sink.upsert([{EXT: "A", "Name": "Acme", "Phone": "1", "Website": "a.example"}])
        # B carries Phone, so A's row has a Phone cell: empty, as A's payload lacks the key.
        sink.upsert([{EXT: "A", "Name": "Acme", "Website": None}, {EXT: "B", "Name": "Beta", "Phone": ""}])
        stored = {r[EXT]: r for r in crm.records("Account")}
        assert stored["A"]["Phone"] == "1"  # not in the payload: unchanged
        assert stored["A"]["Website"] is None and stored["B"]["Phone"] is None  # None and "" both clear it


def test_valid_and_invalid_records_rejected_with_salesforces_error():
    payloads = [{EXT: "OK-1", "Name": "Fine"}, {EXT: "BAD-1", "Name": None},
                {EXT: "OK-2", "Name": "Also fine", "Phone": "2"}, {EXT: "BAD-2", "Name": "x" * 256},
                {EXT: "DUP", "Name": "One"}, {EXT: "DUP", "Name": "Two"}, {EXT: None, "Name": "No id"}]
    with SalesforceEmulator(token=TOKEN) as crm:  # the same records through sObject Collections
        expected = sink_for(crm, bulk_threshold=None).upsert(payloads)
    with SalesforceEmulator(token=TOKEN) as crm:
        results = sink_for(crm).upsert(payloads)
        assert [r.external_id for r in results] == [p[EXT] for p in payloads]
        assert [r.ok for r in results] == [r.ok for r in expected] == [True, False, True, False, False, False, False]
        for bulk, collections in zip(results, expected):
            if not bulk.ok:  # Collections word it "CODE: message (fields)", Bulk "CODE:message:fields --"
                code, message = collections.error.split(": ", 1)
                assert bulk.error.startswith(f"{code}:{message.rsplit(' (', 1)[0]}"), (bulk.error, collections.error)
        assert "REQUIRED_FIELD_MISSING" in results[1].error and "STRING_TOO_LONG" in results[3].error
        assert "DUPLICATE_VALUE" in results[4].error and "MISSING_ARGUMENT" in results[6].error
        assert sorted(r[EXT] for r in crm.records("Account")) == ["OK-1", "OK-2"]


def test_a_failed_job_rejects_every_record_to_be_sent_again():
    with SalesforceEmulator(token=TOKEN) as crm:
        results = sink_for(crm).upsert([{EXT: "A", "Name": "Acme", "Shoe_Size": 44}, {EXT: "B", "Name": "Beta"}])
        assert not any(r.ok for r in results)
        assert all("not processed by Bulk API job" in r.error and "Failed" in r.error and "Shoe_Size" in r.error
                   and "sent again next run" in r.error for r in results)
        assert crm.records("Account") == []


def test_a_job_still_running_when_waiting_stops_confirms_nothing():
    with SalesforceEmulator(token=TOKEN, bulk_polls_in_progress=100) as crm:
        sink = sink_for(crm)
        sink.bulk.max_wait_s = 10
        results = sink.upsert(accounts(3))
        assert not any(r.ok for r in results) and "InProgress" in results[0].error
        assert sum(sink.client.sleep) >= 10 and max(sink.client.sleep) <= sink.bulk.max_poll_s
        assert not any("Results" in p for p in paths(crm))  # a running job's results are not read


def test_the_sink_chooses_collections_below_the_threshold_and_bulk_from_it(monkeypatch):
    with SalesforceEmulator(token=TOKEN) as crm:
        connection(monkeypatch, crm)
        sink = open_sink(TargetConfig(name="salesforce", kind="salesforce", bulk_threshold=300), "Account", EXT)
        sink.client.sleep = Sleeps()
        assert all(r.ok for r in sink.upsert(accounts(299)))
        assert paths(crm) == ["PATCH composite/sobjects/Account/" + EXT] * 2
        crm.request_log.clear()
        assert all(r.ok for r in sink.upsert(accounts(300, version=2)))
        assert [p.split("/")[0] for p in paths(crm)] == ["POST jobs", "PUT jobs", "PATCH jobs", "GET jobs",
                                                         "GET jobs", "GET jobs"]
        assert crm.stats["bulk_jobs"] == 1 and len(crm.records("Account")) == 300
        assert sink.client.requests_sent == 2 + 6  # push reports this as its api_calls


def test_bulk_jobs_ride_out_a_flaky_org():
    with SalesforceEmulator(token=TOKEN, fault_rate=0.3, seed=3) as crm:
        sink = sink_for(crm, client=HttpClient(crm.url, headers=AUTH, max_retries=12, sleep=Sleeps()))
        sink.bulk.max_records_per_job = 250
        for version in (1, 2):
            assert all(r.ok for r in sink.upsert(accounts(1000, version)))
        assert crm.stats["faults"] > 0
        stored = {r[EXT]: r["Name"] for r in crm.records("Account")}
        assert stored == {f"C{i:06d}": f"Customer {i} v2" for i in range(1000)}


def test_push_through_bulk_with_the_real_mapping(monkeypatch, tmp_path):
    import erp2crm.push
    from hub import HubStore

    def sink_without_waits(*args):  # the Bulk polls' waits are recorded, not slept
        sink = open_sink(*args)
        sink.client.sleep = Sleeps()
        return sink

    monkeypatch.setattr(erp2crm.push, "open_sink", sink_without_waits)
    push = erp2crm.push.push
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()

    def put_profiles(clv: float) -> None:
        hub.replace_rows("profiles", [{"customer_id": f"C{i:03d}", "push_ready": True, "profile": json.dumps(
            {"customer_id": f"C{i:03d}", "name": f"Customer {i}", "clv": clv, "churn_flag": i % 2 == 0,
             "email": None, "order_count": i})} for i in range(120)])

    target = TargetConfig(name="salesforce", kind="salesforce", bulk_threshold=100)
    with SalesforceEmulator(token=TOKEN) as crm:
        connection(monkeypatch, crm)
        put_profiles(10.5)
        first = push(hub, "r1", target)
        assert (first["sent"], first["created"], first["rejected"], first["api_calls"]) == (120, 120, 0, 6)
        put_profiles(11.0)
        again = push(hub, "r2", target)
        assert (again["updated"], again["api_calls"]) == (120, 6)
        stored = {r[EXT]: r for r in crm.records("Account")}
        assert len(stored) == 120 and stored["C002"]["ERP2CRM_CLV__c"] == "11.0"  # CSV cells are text
        assert stored["C002"]["ERP2CRM_Churn_Flag__c"] == "true" and stored["C002"]["ERP2CRM_Email__c"] is None
        assert crm.stats["bulk_jobs"] == 2


def test_bulk_threshold_config():
    assert TargetConfig(name="sf", kind="salesforce").bulk_threshold == 10_000
    assert TargetConfig(name="sf", kind="salesforce", bulk_threshold=None).bulk_threshold is None
    with pytest.raises(ValueError, match="greater than 0"):
        TargetConfig(name="sf", kind="salesforce", bulk_threshold=0)
    with pytest.raises(ValueError, match="only a salesforce target"):
        TargetConfig(name="hs", kind="hubspot", bulk_threshold=500)
    assert TargetConfig(name="hs", kind="hubspot").batch_size == 100


def test_jobs_are_split_by_record_count_and_by_upload_size():
    with SalesforceEmulator(token=TOKEN) as crm:
        sink = sink_for(crm)
        sink.bulk.max_records_per_job = 400
        results = sink.upsert(accounts(1000))
        assert all(r.ok for r in results) and crm.stats["bulk_jobs"] == 3
        assert sink.client.requests_sent == 3 * 6
        sink.bulk.max_records_per_job, sink.bulk.max_upload_bytes = MAX_RECORDS_PER_JOB, 10_000
        results = sink.upsert(accounts(1000, version=2))
        assert all(r.ok and not r.created for r in results) and crm.stats["bulk_jobs"] > 3 + 3
        assert len(crm.records("Account")) == 1000


def test_api_calls_per_job_do_not_grow_with_the_records(capsys):
    """Bulk: about six calls per job (create, upload, close, two polls, successful results; failed results only
    when a record failed), whatever its size up to the per-job cap. Collections: one call per 200 records."""
    calls = {}
    for n in (10_000, 100_000):
        with SalesforceEmulator(token=TOKEN) as crm:
            sink = sink_for(crm)
            payloads = [{EXT: f"C{i:06d}", "Name": f"Customer {i}"} for i in range(n)]
            assert all(r.ok for r in sink.upsert(payloads))
            calls[n] = sink.client.requests_sent
            assert crm.stats["requests"] == calls[n] and crm.stats["records_created"] == n
    assert calls[10_000] == calls[100_000] == 6
    with SalesforceEmulator(token=TOKEN) as crm:
        sink = sink_for(crm, bulk_threshold=None)
        assert all(r.ok for r in sink.upsert([{EXT: f"C{i:06d}", "Name": f"C {i}"} for i in range(10_000)]))
        collections = sink.client.requests_sent
    assert collections == 50
    with capsys.disabled():
        print(f"\nAPI calls per 1000 profiles: Bulk {1000 * calls[10_000] / 10_000:.2f} at 10,000, "
              f"{1000 * calls[100_000] / 100_000:.3f} at 100,000; Collections {1000 * collections / 10_000:.1f}")


# -- expired sessions -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bulk_threshold", [1, None], ids=["bulk", "collections"])
def test_an_expired_session_is_renewed_transparently(monkeypatch, bulk_threshold):
    # Every access token answers 4 requests: the sessions expire inside each Bulk job and between Collections calls.
    with SalesforceEmulator(token=TOKEN, session_ttl_requests=4, **OAUTH) as crm:
        connection(monkeypatch, crm, api_version="v60.0", client_id=CLIENT_ID, refresh_token=REFRESH_TOKEN)
        client, version = SalesforceHook("salesforce_default").get_client()
        client.sleep = Sleeps()
        sink = SalesforceSink(client, version, "Account", EXT, bulk_threshold=bulk_threshold)
        sink.bulk.max_records_per_job = 400
        assert all(r.ok for r in sink.upsert(accounts(1000)))
        crm.expire_sessions()  # and once more at once, as when an admin revokes sessions
        assert all(r.ok for r in sink.upsert(accounts(1000, version=2)))
        stored = {r[EXT]: r["Name"] for r in crm.records("Account")}
        assert stored == {f"C{i:06d}": f"Customer {i} v2" for i in range(1000)}
        assert crm.stats["sessions_issued"] >= 3
        assert crm.stats["records_created"] == 1000 and crm.stats["records_updated"] == 1000


def test_client_credentials_without_an_access_token(monkeypatch):
    with SalesforceEmulator(token=TOKEN, **OAUTH) as crm:
        connection(monkeypatch, crm, password=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        client, version = SalesforceHook("salesforce_default").get_client()
        assert SalesforceSink(client, version, "Account", EXT).check()["daily_api_requests_max"] == 15000
        assert paths(crm) == ["POST /services/oauth2/token", "GET limits"]  # a token first, no wasted 401


def test_missing_or_broken_refresh_credentials_are_config_errors(monkeypatch):
    with SalesforceEmulator(token=TOKEN, **OAUTH) as crm:
        connection(monkeypatch, crm)
        sink = open_sink(TargetConfig(name="salesforce", kind="salesforce"), "Account", EXT)
        crm.expire_sessions()
        with pytest.raises(ConfigError, match="rejected the session.*no refresh credentials.*client_id"):
            sink.upsert(accounts(2))

        connection(monkeypatch, crm, client_id=CLIENT_ID, refresh_token="revoked-refresh-token")
        sink = open_sink(TargetConfig(name="salesforce", kind="salesforce"), "Account", EXT)
        with pytest.raises(ConfigError, match="renewing the Salesforce session failed.*invalid_grant"):
            sink.upsert(accounts(2))

        connection(monkeypatch, crm, refresh_token=REFRESH_TOKEN)
        with pytest.raises(ConfigError, match="needs client_id"):
            SalesforceHook("salesforce_default").get_client()
        connection(monkeypatch, crm, password=None)
        with pytest.raises(ConfigError, match="password .access token. or refresh credentials"):
            SalesforceHook("salesforce_default").get_client()
        assert crm.records("Account") == []


def test_secrets_never_reach_logs_or_errors(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3's request lines and everything of ours
    secrets = [CLIENT_SECRET, REFRESH_TOKEN, TOKEN]
    errors = []
    with SalesforceEmulator(token=TOKEN, session_ttl_requests=3, **OAUTH) as crm:
        # Built directly, so Airflow's masker (which knows a connection's secrets) cannot hide a leak.
        grant = {"grant_type": "refresh_token", **OAUTH}
        client = SalesforceClient(crm.url, TOKEN, grant, "salesforce_default", sleep=Sleeps())
        assert all(r.ok for r in sink_for(crm, client=client).upsert(accounts(50)))
        secrets += list(crm._sessions)  # the access tokens it was issued
        crm.refresh_token = "rotated"  # the next renewal fails
        crm.expire_sessions()
        with pytest.raises(ConfigError) as failed:
            sink_for(crm, client=client).upsert(accounts(50))
        errors.append(str(failed.value))
        crm.client_secret = None
        with pytest.raises(ConfigError) as refused:
            SalesforceClient(crm.url, None, {"grant_type": "client_credentials", **OAUTH}, "sf").request("GET", "/")
        errors.append(str(refused.value))
    assert "renewing the Salesforce session" in caplog.text  # the log was captured
    assert "invalid_grant" in errors[0] and "invalid_client" in errors[1]
    for secret in secrets:
        assert secret not in caplog.text
        assert not any(secret in e for e in errors)
