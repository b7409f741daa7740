"""Pushing through flaky CRMs: with a share of requests failing at random (503 from Salesforce, 502 or a 429
without Retry-After from HubSpot), the retries of the one HTTP client get every record through, and the CRM
ends with exactly the expected records: none lost, none duplicated, none stale."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from connectors.http import HttpClient
from connectors.hubspot import HubspotSink, hubspot_client
from connectors.salesforce import SalesforceSink
from emulators.hubspot import HubspotEmulator
from emulators.salesforce import SalesforceEmulator
from erp2crm.cli import main

TOKEN = "flaky-token-0c4e"


class FakeClock:
    """Sleeps without waiting, and moves the emulator's rate-limit window as if they had."""
    def __init__(self):
        self.now, self.sleeps = 1_000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _accounts(n: int, version: int) -> list[dict]:
    return [{"ERP2CRM_Customer_Id__c": f"C{i:04d}", "Name": f"Customer {i} v{version}"} for i in range(n)]


@pytest.mark.parametrize("fault_rate", [0.2, 0.5])
def test_salesforce_retries_make_every_record_land_once(fault_rate):
    clock = FakeClock()
    with SalesforceEmulator(token=TOKEN, fault_rate=fault_rate, seed=7) as crm:
        client = HttpClient(crm.url, headers={"Authorization": f"Bearer {TOKEN}"}, max_retries=12, sleep=clock.sleep)
        sink = SalesforceSink(client, "v60.0", "Account", "ERP2CRM_Customer_Id__c")
        for version in (1, 2):  # a first push, then every record changed
            results = sink.upsert(_accounts(450, version))
            assert all(r.ok for r in results)
        stored = {a["ERP2CRM_Customer_Id__c"]: a["Name"] for a in crm.records("Account")}
        assert stored == {f"C{i:04d}": f"Customer {i} v2" for i in range(450)}
        assert len(crm.records("Account")) == 450
        assert crm.stats["faults"] > 0 and len(clock.sleeps) == crm.stats["faults"]


@pytest.mark.parametrize("fault_rate", [0.2, 0.5])
def test_hubspot_retries_make_every_record_land_once(fault_rate):
    clock = FakeClock()
    with HubspotEmulator(token=TOKEN, clock=clock, fault_rate=fault_rate, seed=7) as crm:
        sink = HubspotSink(hubspot_client(crm.url, TOKEN, sleep=clock.sleep, max_retries=12), "companies",
                           "erp2crm_customer_id")
        for version in (1, 2):
            payloads = [{"erp2crm_customer_id": f"C{i:04d}", "name": f"Customer {i} v{version}"} for i in range(450)]
            assert all(r.ok for r in sink.upsert(payloads))
        stored = {r["properties"]["erp2crm_customer_id"]: r["properties"]["name"] for r in crm.records("companies")}
        assert stored == {f"C{i:04d}": f"Customer {i} v2" for i in range(450)}
        assert len(crm.records("companies")) == 450
        assert 10 in clock.sleeps  # a 429 without Retry-After waited for HubSpot's 10-second window


@pytest.mark.parametrize("kind", ["salesforce", "hubspot"])
def test_the_emulator_command_starts_each_emulator_with_a_fault_rate(kind):
    runner = CliRunner()
    done = runner.invoke(main, ["emulator", kind, "--help"])
    assert done.exit_code == 0 and "--fault-rate" in done.output and "--port" in done.output
