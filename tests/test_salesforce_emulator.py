"""The local Salesforce emulator, over real HTTP: upsert semantics, per-record and whole-request errors, auth,
the daily quota, persistence and the `python -m` entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

from emulators.salesforce import SalesforceEmulator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPSERT = "/services/data/v60.0/composite/sobjects/{}/Ext_Id__c"


@pytest.fixture
def emu(tmp_path):
    with SalesforceEmulator(state_file=tmp_path / "sf.json", token=TOKEN) as e:
        yield e


def account(ext, **fields):
    return {"attributes": {"type": "Account"}, "Ext_Id__c": ext, **fields}


def upsert(emu, records, sobject="Account", all_or_none=False, headers=AUTH):
    body = {"allOrNone": all_or_none, "records": records}
    return requests.patch(emu.url + UPSERT.format(sobject), json=body, headers=headers, timeout=10)


def codes(result):
    return [e["statusCode"] for e in result["errors"]]


def test_create_then_update_merges_fields(emu):
    r = upsert(emu, [account("A-1", Name="Acme", Phone="+49 30 1234")])
    assert r.status_code == 200
    [first] = r.json()
    assert first["success"] is True and first["created"] is True and first["errors"] == []
    assert len(first["id"]) == 18 and first["id"].startswith("001")

    [second] = upsert(emu, [account("A-1", Website="https://acme.example", Phone="+49 30 9999")]).json()
    assert second == {"id": first["id"], "success": True, "errors": [], "created": False}

    [rec] = emu.records("Account")
    assert rec["Id"] == first["id"] and rec["Name"] == "Acme" and rec["Phone"] == "+49 30 9999"
    assert rec["Website"] == "https://acme.example" and rec["Ext_Id__c"] == "A-1"
    assert datetime.fromisoformat(rec["LastModifiedDate"]) >= datetime.fromisoformat(rec["CreatedDate"])
    assert emu.stats["records_created"] == 1 and emu.stats["records_updated"] == 1

    got = requests.get(emu.url + "/services/data/v60.0/sobjects/Account/Ext_Id__c/A-1", headers=AUTH, timeout=10)
    assert got.status_code == 200
    assert got.json()["attributes"]["type"] == "Account" and got.json()["Id"] == first["id"]
    missing = requests.get(emu.url + "/services/data/v60.0/sobjects/Account/Ext_Id__c/nope", headers=AUTH, timeout=10)
    assert missing.status_code == 404
    assert missing.json() == [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def test_contact_ids_and_required_last_name(emu):
    contact = {"attributes": {"type": "Contact"}, "Ext_Id__c": "C-1", "LastName": "Müller", "Email": "m@example.com"}
    nameless = {"attributes": {"type": "Contact"}, "Ext_Id__c": "C-2", "FirstName": "Ann"}
    ok, bad = upsert(emu, [contact, nameless], sobject="Contact").json()
    assert ok["id"].startswith("003") and ok["created"] is True
    assert codes(bad) == ["REQUIRED_FIELD_MISSING"] and bad["errors"][0]["fields"] == ["LastName"]


def test_per_record_failure_inside_a_200(emu):
    r = upsert(emu, [account("A-1", Name="Acme"), account("A-2", Phone="123")])
    assert r.status_code == 200
    ok, bad = r.json()
    assert ok["success"] is True and ok["created"] is True
    assert bad["success"] is False
    assert bad["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]",
                              "fields": ["Name"]}]
    assert [a["Ext_Id__c"] for a in emu.records("Account")] == ["A-1"]
    assert emu.stats["records_rejected"] == 1


def test_other_per_record_errors(emu):
    records = [account("A-1", Name="x" * 256), {"attributes": {"type": "Contact"}, "Ext_Id__c": "A-2", "Name": "n"},
               account("", Name="No ext id"), account("A-4", Name="Long text is fine", Description="d" * 1000)]
    too_long, wrong_type, no_ext, ok = upsert(emu, records).json()
    assert codes(too_long) == ["STRING_TOO_LONG"] and too_long["errors"][0]["fields"] == ["Name"]
    assert codes(wrong_type) == ["INVALID_TYPE"]
    assert codes(no_ext) == ["MISSING_ARGUMENT"]
    assert ok["success"] is True


def test_all_or_none_rolls_back(emu):
    r = upsert(emu, [account("A-1", Name="Acme"), account("A-2")], all_or_none=True)
    assert r.status_code == 200
    rolled, bad = r.json()
    assert rolled["success"] is False and codes(rolled) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert codes(bad) == ["REQUIRED_FIELD_MISSING"]
    assert emu.records("Account") == []
    assert emu.stats["records_rejected"] == 2


def test_more_than_200_records_rejected(emu):
    r = upsert(emu, [account(f"A-{i}", Name=f"Acme {i}") for i in range(201)])
    assert r.status_code == 400
    assert r.json() == [{"message": "record limit reached. cannot submit more than 200 records into this call",
                         "errorCode": "EXCEEDED_ID_LIMIT"}]
    assert emu.records("Account") == []
    assert all(x["success"] for x in upsert(emu, [account(f"A-{i}", Name="n") for i in range(200)]).json())


def test_unknown_field_is_a_400_for_the_whole_request(emu):
    r = upsert(emu, [account("A-1", Name="Acme", Custom_Score__c=7), account("A-2", Name="B", Shoe_Size=44)])
    assert r.status_code == 400
    [err] = r.json()
    assert err["errorCode"] == "INVALID_FIELD" and "Shoe_Size" in err["message"]
    assert emu.records("Account") == []


def test_malformed_json_and_unknown_sobject(emu):
    r = requests.patch(emu.url + UPSERT.format("Account"), data=b"{not json", headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    r = upsert(emu, [account("L-1", Name="x")], sobject="Lead")
    assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"


def test_missing_or_wrong_token_is_401(emu):
    expected = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = upsert(emu, [account("A-1", Name="Acme")], headers=headers)
        assert r.status_code == 401 and r.json() == expected
        assert r.headers["Sforce-Limit-Info"] == "api-usage=0/15000"
    assert emu.records("Account") == []


def test_limit_header_counts_and_quota_exhaustion_is_403(tmp_path):
    with SalesforceEmulator(state_file=tmp_path / "sf.json", token=TOKEN, daily_limit=2) as emu:
        seen = [upsert(emu, [account("A-1", Name="Acme")]) for _ in range(3)]
        assert [r.status_code for r in seen] == [200, 200, 403]
        assert [r.headers["Sforce-Limit-Info"] for r in seen] == ["api-usage=1/2", "api-usage=2/2", "api-usage=2/2"]
        assert seen[2].json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    with SalesforceEmulator(state_file=tmp_path / "sf.json", token=TOKEN, daily_limit=2) as emu:  # same day, same file
        assert upsert(emu, [account("A-2", Name="B")]).status_code == 403


def test_duplicate_external_id_in_one_request(emu):
    results = upsert(emu, [account("A-1", Name="One"), account("A-2", Name="Two"), account("A-1", Name="Again")]).json()
    assert [r["success"] for r in results] == [False, True, False]
    for r in (results[0], results[2]):
        assert codes(r) == ["DUPLICATE_VALUE"] and r["errors"][0]["fields"] == ["Ext_Id__c"]
    assert [a["Ext_Id__c"] for a in emu.records("Account")] == ["A-2"]


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "state" / "sf.json"
    with SalesforceEmulator(state_file=state, token=TOKEN) as emu:
        [created] = upsert(emu, [account("A-1", Name="Acme")]).json()
    saved = json.loads(state.read_text())
    assert set(saved) >= {"records", "id_counter", "requests_today"} and saved["id_counter"] == 1
    with SalesforceEmulator(state_file=state, token=TOKEN) as emu:
        assert [a["Id"] for a in emu.records("Account")] == [created["id"]]
        again, new = upsert(emu, [account("A-1", Phone="1"), account("A-2", Name="Beta")]).json()
        assert again["id"] == created["id"] and again["created"] is False
        assert new["created"] is True and new["id"] != created["id"]
        stats = requests.get(emu.url + "/__emulator__/stats", timeout=10).json()
        assert stats == {"requests": 1, "records_created": 1, "records_updated": 1, "records_rejected": 0}
        assert len(requests.get(emu.url + "/__emulator__/records/Account", timeout=10).json()) == 2
    assert [p.name for p in state.parent.iterdir()] == ["sf.json"]  # no temp files left behind


def test_python_m_entry_point(tmp_path):
    env = {**os.environ, "SALESFORCE_EMULATOR_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "emulators.salesforce", "--port", "0", "--state-file", str(tmp_path / "sf.json")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("salesforce emulator listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert requests.get(url + "/__emulator__/health", timeout=10).json() == {"status": "ok"}
        assert requests.get(url + "/services/data/", headers=AUTH, timeout=10).status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert TOKEN not in line + out + err and err == ""
    assert (tmp_path / "sf.json").exists()
