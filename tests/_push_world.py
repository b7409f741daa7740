"""A push world for reliability tests: a CRM emulator, a SQLite hub with profiles, erp2crm.push.push with HTTP
clients made quick for tests, and the exact comparison of what the CRM holds with what it should hold.

Used by tests/test_push_reliability.py and by the push it runs in a child process (tests/_push_child.py).
Targets: "salesforce" (sObject Collections), "salesforce_bulk" (Bulk API 2.0 for every push) and "hubspot".
"""
from __future__ import annotations

import json
from collections import defaultdict

from connectors.hubspot import as_property_value
from connectors.outbound import build_payload, load_outbound
from connectors.salesforce_bulk import NULL, cell
from erp2crm.config import TargetConfig
from erp2crm.errors import QuotaExhausted, TransientError
from hub import HubStore

TOKEN = "reliability-token-5e1f"
KINDS = ("salesforce", "salesforce_bulk", "hubspot")
CLIENT_TIMEOUT_S = 0.3  # the tests' HTTP timeout: a timeout fault holds its answer longer (HOLD_S)
HOLD_S = 0.8


def target(kind: str, batch_size: int | None = None) -> TargetConfig:
    if kind == "hubspot":
        return TargetConfig(name="hubspot", kind="hubspot", batch_size=batch_size)
    if kind == "salesforce_bulk":  # every push one Bulk API 2.0 job (or more)
        return TargetConfig(name="salesforce_bulk", kind="salesforce", mapping="salesforce.yaml",
                            conn_id="salesforce_default", bulk_threshold=1, batch_size=batch_size)
    return TargetConfig(name="salesforce", kind="salesforce", bulk_threshold=None, batch_size=batch_size)


def emulator(kind: str, **options):
    if kind == "hubspot":
        from emulators.hubspot import HubspotEmulator

        return HubspotEmulator(token=TOKEN, **options)
    from emulators.salesforce import SalesforceEmulator

    return SalesforceEmulator(token=TOKEN, **options)


def connection_env(kind: str, url: str) -> tuple[str, str]:
    """The Airflow connection of the target, as an environment variable (name, value)."""
    name = "AIRFLOW_CONN_HUBSPOT_DEFAULT" if kind == "hubspot" else "AIRFLOW_CONN_SALESFORCE_DEFAULT"
    return name, json.dumps({"conn_type": "http", "host": url, "password": TOKEN})


def make_hub(url: str) -> HubStore:
    store = HubStore(url)
    store.migrate()
    return store


def profile(i: int, version: int) -> dict:
    """A profile with text, numbers, a None and a value that changes with `version`."""
    return {"name": f"Customer {i} v{version}", "phone": f"+49 30 {i:07d}", "street": f"Hauptstr. {i % 200 + 1}",
            "city": ("Berlin", "Hamburg", "München", "Köln")[i % 4], "postcode": f"{10000 + i % 89999:05d}",
            "country": "DE", "email": f"c{i}@example.com", "tax_id": None if i % 7 == 0 else f"DE{i:09d}",
            "segment": ("A", "B", "C")[(i + version) % 3], "clv": round(i * 1.5 + version, 2),
            "order_count": i % 50 + version, "lifetime_revenue": round(i * 12.25, 2)}


def put_profiles(hub: HubStore, profiles: dict[str, dict]) -> None:
    hub.replace_rows("profiles", [{"customer_id": cid, "profile": json.dumps({"customer_id": cid, **p}),
                                   "push_ready": True} for cid, p in profiles.items()])


def tune(sink, timeout: float = CLIENT_TIMEOUT_S, sleeps: list | None = None):
    """Make a sink quick for tests: a short HTTP timeout, and sleeps (retry backoff, Retry-After, HubSpot's pacing,
    Bulk polling) recorded instead of waited."""
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    sink.client.timeout, sink.client.sleep = timeout, record
    if hasattr(sink, "sleep"):  # HubspotSink paces with its own reference to the sleep
        sink.sleep = record
    return sink


def quick_sinks(timeout: float = CLIENT_TIMEOUT_S, sleeps: list | None = None):
    """An open_sink for erp2crm.push (monkeypatch erp2crm.push.open_sink with it) whose sinks are tuned."""
    from connectors.registry import open_sink

    def open_quick(*args, **kwargs):
        return tune(open_sink(*args, **kwargs), timeout, sleeps)

    return open_quick


def push_until_done(hub: HubStore, tgt: TargetConfig, prefix: str, max_runs: int = 10) -> list:
    """Push again until a run has nothing left to send: each run's result, or the TransientError that ended it
    (its retries used up). Any other error fails the test, QuotaExhausted too: the tests' emulators have quota
    enough, and Airflow does not retry a task that ran out of it."""
    from erp2crm.push import push

    runs = []
    for n in range(1, max_runs + 1):
        try:
            result = push(hub, f"{prefix}-{n}", tgt)
        except QuotaExhausted:
            raise
        except TransientError as e:
            runs.append(e)
            continue
        runs.append(result)
        if result["sent"] == 0 and result["to_retire"] == 0:
            return runs
    raise AssertionError(f"still records to send after {max_runs} runs: {runs}")


def _normal(value, hubspot: bool):
    """A field value as compared: HubSpot's property string, or the Bulk CSV cell (what sObject Collections and
    Bulk jobs both store the value as, once written as text); None for an empty value."""
    if hubspot:
        text = as_property_value(value)
        return text or None
    if value is None or value == "":
        return None
    text = cell(value)
    return None if text == NULL else text


def crm_records(crm, kind: str) -> dict[str, list[dict]]:
    """External id → the CRM's records carrying it (more than one: a duplicate), fields as the CRM holds them."""
    out = defaultdict(list)
    if kind == "hubspot":
        for record in crm.records("companies"):
            out[record["properties"].get("erp2crm_customer_id")].append(record["properties"])
    else:
        for record in crm.records("Account"):
            out[record.get("ERP2CRM_Customer_Id__c")].append(record)
    return dict(out)


def expected_records(tgt: TargetConfig, profiles: dict[str, dict]) -> dict[str, dict]:
    mapping = load_outbound(tgt.mapping_path)
    return {cid: build_payload(mapping, cid, {"customer_id": cid, **p}) for cid, p in profiles.items()}


def differences(crm, kind: str, tgt: TargetConfig, profiles: dict[str, dict]) -> dict:
    """What stands between the CRM and the expected records: missing, duplicated, unexpected and stale ones
    (field by field). Empty when the CRM holds exactly the expected records."""
    hubspot = kind == "hubspot"
    stored, expected = crm_records(crm, kind), expected_records(tgt, profiles)
    stale = {}
    for cid, payload in expected.items():
        for record in stored.get(cid, []):
            fields = {f: [_normal(record.get(f), hubspot), _normal(v, hubspot)] for f, v in payload.items()
                      if _normal(record.get(f), hubspot) != _normal(v, hubspot)}
            if fields:
                stale[cid] = fields
    out = {"missing": sorted(set(expected) - set(stored)), "unexpected": sorted(set(stored) - set(expected)),
           "duplicated": {cid: len(records) for cid, records in stored.items() if len(records) > 1},
           "stale": dict(list(stale.items())[:5]), "stale_count": len(stale)}
    return {k: v for k, v in out.items() if v}
