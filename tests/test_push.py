"""Push to the Salesforce emulator over HTTP: only changed profiles are sent, a failure inside a 200 is a
rejected record with the CRM's error, rejected records are retried next run, and quotas and credentials
give classified errors."""
from __future__ import annotations

import hashlib
import json

import pytest

from emulators.salesforce import SalesforceEmulator
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError, QuotaExhausted
from erp2crm.push import push
from hub import HubStore

TOKEN = "push-test-token"


@pytest.fixture
def crm(monkeypatch):
    with SalesforceEmulator(token=TOKEN) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(
            {"conn_type": "http", "host": emulator.url, "password": TOKEN}))
        yield emulator


@pytest.fixture
def hub(tmp_path):
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    return store


def put_profiles(hub: HubStore, profiles: dict[str, dict], hashed: bool = True) -> None:
    """Profiles as enrich stores them: with the hash of their JSON (`hashed=False`: as before profiles had one)."""
    rows = []
    for cid, p in profiles.items():
        ready, text = p.pop("_ready", True), json.dumps({"customer_id": cid, **p})
        rows.append({"customer_id": cid, "profile": text, "push_ready": ready,
                     "profile_hash": hashlib.sha256(text.encode()).hexdigest() if hashed else None})
    hub.replace_rows("profiles", rows)


TARGET = TargetConfig(name="salesforce", kind="salesforce")


def test_only_changed_profiles_are_sent(hub, crm):
    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta", "clv": 5.0}})
    first = push(hub, "r1", TARGET)
    assert (first["sent"], first["created"], first["updated"], first["unchanged"]) == (2, 2, 0, 0)
    assert first["api_calls"] == 1

    again = push(hub, "r2", TARGET)
    assert (again["sent"], again["unchanged"], again["api_calls"]) == (0, 2, 0)

    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta", "clv": 7.5}})
    third = push(hub, "r3", TARGET)
    assert (third["sent"], third["updated"], third["unchanged"]) == (1, 1, 1)
    records = {r["ERP2CRM_Customer_Id__c"]: r for r in crm.records("Account")}
    assert records["C2"]["ERP2CRM_CLV__c"] == 7.5 and len(records) == 2


def test_unchanged_profiles_are_not_read_again(hub, crm, monkeypatch):
    """A profile whose hash, mapping and payload format are those of its last confirmed write is unchanged
    without its JSON being read or its payload rebuilt; changing any of the three rebuilds it."""
    import connectors.outbound
    import erp2crm.push as push_module
    from erp2crm.push import plan

    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta", "clv": 5.0}})
    push(hub, "r1", TARGET)
    read = []
    real_read = HubStore.read_keyed
    monkeypatch.setattr(HubStore, "read_keyed", lambda self, name, columns, key, ids, **kw: (
        (name == "profiles" and read.append(sorted(ids))) or real_read(self, name, columns, key, ids, **kw)))
    assert (push(hub, "r2", TARGET)["unchanged"], read) == (2, [[]])

    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta", "clv": 7.5}})
    assert push(hub, "r3", TARGET)["updated"] == 1 and read[-1] == ["C2"]

    # Another payload format: every payload is rebuilt once; equal ones are unchanged, and skipped after that
    monkeypatch.setattr(push_module, "PAYLOAD_FORMAT", connectors.outbound.PAYLOAD_FORMAT + 1)
    result = push(hub, "r4", TARGET)
    assert (result["sent"], result["unchanged"], read[-1]) == (0, 2, ["C1", "C2"])
    assert plan(hub, TARGET).unchanged == ["C1", "C2"] and read[-1] == []


def test_payloads_confirmed_before_profiles_had_hashes_are_compared_once(hub, crm):
    from erp2crm.push import plan

    put_profiles(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta"}}, hashed=False)
    push(hub, "r1", TARGET)
    assert hub.read_table("push_state")["source_hash"].isna().all()  # nothing to skip by
    put_profiles(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta AG"}})  # enrich now stores hashes
    assert len(plan(hub, TARGET).rebuilt_unchanged) == 1
    result = push(hub, "r2", TARGET)
    assert (result["updated"], result["unchanged"]) == (1, 1)
    state = hub.read_table("push_state")
    assert state["source_hash"].notna().all()  # C2 by its write, C1 recorded as found unchanged
    assert plan(hub, TARGET).rebuilt_unchanged == [] and push(hub, "r3", TARGET)["unchanged"] == 2


def test_rejected_record_keeps_its_error_and_is_retried(hub, crm):
    put_profiles(hub, {"C1": {"name": "Acme"}, "C2": {"name": None}, "C3": {"name": "Held", "_ready": False}})
    result = push(hub, "r1", TARGET)
    assert (result["sent"], result["created"], result["rejected"]) == (2, 1, 1)
    receipts = hub.read_table("push_receipts").set_index("customer_id")
    assert receipts.at["C2", "result"] == "rejected"
    assert "REQUIRED_FIELD_MISSING" in receipts.at["C2", "error"]
    assert "C3" not in receipts.index  # held by the profile gate: never sent

    put_profiles(hub, {"C1": {"name": "Acme"}, "C2": {"name": "Beta fixed"}})
    retry = push(hub, "r2", TARGET)
    assert (retry["sent"], retry["created"], retry["unchanged"]) == (1, 1, 1)
    assert sorted(r["Name"] for r in crm.records("Account")) == ["Acme", "Beta fixed"]


def test_batches_of_200(hub, crm):
    put_profiles(hub, {f"C{i:03d}": {"name": f"Customer {i}"} for i in range(450)})
    result = push(hub, "r1", TARGET)
    assert result["created"] == 450 and result["api_calls"] == 3
    assert len(crm.records("Account")) == 450


def test_quota_exhausted_and_bad_token_are_classified(hub, monkeypatch):
    put_profiles(hub, {"C1": {"name": "Acme"}})
    with SalesforceEmulator(token=TOKEN, daily_limit=0) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(
            {"conn_type": "http", "host": emulator.url, "password": TOKEN}))
        with pytest.raises(QuotaExhausted, match="daily request limit"):
            push(hub, "r1", TARGET)
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(
            {"conn_type": "http", "host": emulator.url, "password": "wrong"}))
        with pytest.raises(ConfigError, match="401"):
            push(hub, "r2", TARGET)
    assert hub.read_table("push_state").empty  # nothing confirmed, so everything is sent next time


def test_missing_connection_is_a_config_error(hub, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", raising=False)
    put_profiles(hub, {"C1": {"name": "Acme"}})
    with pytest.raises(ConfigError, match="connection 'salesforce_default' is not defined"):
        push(hub, "r1", TARGET)


def test_http_client_retries_only_transient_errors_and_honours_retry_after():
    from connectors.http import HttpClient
    import http.server
    import threading

    answers = iter([(503, {"Retry-After": "3"}), (429, {}), (200, {}), (400, {})])
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, headers = next(answers)
            seen.append(status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sleeps = []
    client = HttpClient(f"http://127.0.0.1:{server.server_port}", sleep=sleeps.append, backoff_s=0.5)
    try:
        assert client.request("GET", "/x").status_code == 200
        assert sleeps == [3.0, 1.0]  # Retry-After honoured, then exponential backoff (0.5 × 2¹)
        from erp2crm.errors import DataError
        with pytest.raises(DataError, match="HTTP 400"):
            client.request("GET", "/x")  # a 400 is not retried
        assert seen == [503, 429, 200, 400]
    finally:
        server.shutdown()


def test_dry_run_shows_creates_and_field_changes_without_calling_the_crm(hub, crm):
    from erp2crm.push import dry_run

    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta", "clv": 5.0}})
    push(hub, "r1", TARGET)
    requests_before = crm.stats["requests"]
    put_profiles(hub, {"C1": {"name": "Acme", "clv": 10.0}, "C2": {"name": "Beta AG", "clv": 7.5},
                       "C3": {"name": "Gamma", "clv": None}})

    plan = dry_run(hub, TARGET)
    assert (plan["create"], plan["update"], plan["unchanged"]) == (1, 1, 1)
    changes = {c["customer_id"]: c for c in plan["changes"]}
    assert changes["C2"]["action"] == "update"
    assert changes["C2"]["fields"] == {"ERP2CRM_CLV__c": [5.0, 7.5], "Name": ["Beta", "Beta AG"]}
    assert changes["C3"]["action"] == "create" and changes["C3"]["fields"]["Name"] == [None, "Gamma"]
    assert "ERP2CRM_CLV__c" not in changes["C3"]["fields"]  # empty values are not listed as changes
    assert crm.stats["requests"] == requests_before  # nothing reached the CRM
    assert hub.read_table("push_receipts")["run_id"].eq("r1").all()  # and nothing was recorded as pushed

    after = push(hub, "r2", TARGET)  # the real push does exactly what the dry run said
    assert (after["created"], after["updated"], after["unchanged"]) == (1, 1, 1)


def test_push_command_previews_only(hub, crm, tmp_path):
    from click.testing import CliRunner

    from erp2crm.cli import main

    put_profiles(hub, {"C1": {"name": "Acme"}})
    url = str(hub.engine.url)
    result = CliRunner().invoke(main, ["push", "--dry-run", "--hub", url])
    assert result.exit_code == 0, result.output
    assert "salesforce (upsert): 1 to create, 0 to update, 0 to retire, 0 skipped, 0 unchanged" in result.output and "Name='Acme'" in result.output
    assert crm.stats["requests"] == 0
    refused = CliRunner().invoke(main, ["push", "--hub", url])
    assert refused.exit_code == 2 and "--dry-run" in refused.output
