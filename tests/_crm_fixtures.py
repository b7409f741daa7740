"""Fixtures of the push tests that run against the CRM emulators: an empty migrated hub, and a Salesforce or
HubSpot emulator with its Airflow connection (the target's default conn_id) pointing at it."""
from __future__ import annotations

import json

import pytest

from emulators.hubspot import HubspotEmulator
from emulators.salesforce import SalesforceEmulator
from hub import HubStore

TOKEN = "push-tests-token"


@pytest.fixture
def hub(tmp_path):
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    return store


def _emulated(monkeypatch, emulator, conn_var: str):
    with emulator as crm:
        monkeypatch.setenv(conn_var, json.dumps({"conn_type": "http", "host": crm.url, "password": TOKEN}))
        yield crm


@pytest.fixture
def salesforce(monkeypatch):
    yield from _emulated(monkeypatch, SalesforceEmulator(token=TOKEN), "AIRFLOW_CONN_SALESFORCE_DEFAULT")


@pytest.fixture
def hubspot(monkeypatch):
    yield from _emulated(monkeypatch, HubspotEmulator(token=TOKEN), "AIRFLOW_CONN_HUBSPOT_DEFAULT")
