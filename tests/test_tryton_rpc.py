"""The Tryton connectors against a real Tryton 8.2 server (tests/servers/tryton.py): the JSON-RPC source
reads what the SQL source reads from the same database, follows changes, explains wrong mappings, renews
an expired session, and runs the whole sync through Airflow into the CRM emulator; the REST source reads
what the JSON-RPC source reads."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, text

from connectors.http import HttpClient
from connectors.mapping import load_mapping
from connectors.sql import SqlSource
from connectors.tryton_rest import TrytonRest, TrytonRestClient
from connectors.tryton_rpc import TrytonRpc, TrytonRpcClient
from connectors.window import Window
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.errors import ConfigError
from erp2crm.paths import MAPPINGS

TOKEN = "tryton-e2e-token-51c2"


def _rpc(tryton, mapping=None) -> TrytonRpc:
    client = TrytonRpcClient(HttpClient(tryton.url, max_retries=1, backoff_s=0.1), tryton.database, tryton.login,
                             tryton.password)
    return TrytonRpc("tryton", mapping or load_mapping(MAPPINGS / "tryton_rpc.yaml"), client)


def _sql(tryton) -> SqlSource:
    return SqlSource("tryton", load_mapping(MAPPINGS / "tryton.yaml"), create_engine(tryton.sql_url))


def _utc_naive(stamp: str) -> datetime:
    return pd.Timestamp(stamp).tz_convert("UTC").tz_localize(None).to_pydatetime()


def _all(source, entity, window=None) -> pd.DataFrame:
    chunks = list(source.extract(entity, window))
    if not chunks:
        return pd.DataFrame(columns=["source_id"])
    frame = pd.concat(chunks, ignore_index=True)
    return frame.sort_values("source_id", key=lambda s: s.astype(int)).reset_index(drop=True)


def test_json_rpc_and_sql_read_the_same_rows_from_one_tryton(tryton):
    rpc, sql = _rpc(tryton), _sql(tryton)
    for entity in sql.mapping.streams:
        by_api, by_sql = _all(rpc, entity), _all(sql, entity)
        if entity == "payment":  # keyed by the move line through the API, by the relation row in SQL
            key = ["invoice_source_id", "paid_date", "amount"]
            by_api, by_sql = (f.drop(columns="source_id").sort_values(key).reset_index(drop=True) for f in (by_api, by_sql))
        pd.testing.assert_frame_equal(by_api, by_sql, check_dtype=False, obj=entity)
    customers = _all(rpc, "customer_record").set_index("name")
    assert customers.loc["张伟", "phone"] == "+86 138 0013 8000"
    assert customers.loc["Müller GmbH", "tax_id"] == "DE123456789" and customers.loc["Müller GmbH", "country"] == "DE"
    assert not customers.loc["Old Customer Co", "is_active"]  # inactive parties are read too
    invoices = _all(rpc, "invoice")
    assert set(invoices["status"]) == {"open", "paid"} and (invoices["currency"] == "USD").all()
    assert invoices["total_amount"].gt(0).all()  # Decimal values arrive as numbers
    lines = _all(rpc, "order_line")
    assert set(lines["product_code"]) == {"CONS-1", "SUPP-1"} and set(lines["category"]) == {"Services"}


def test_a_change_in_tryton_is_the_only_row_in_the_next_window(tryton):
    start = datetime.now(timezone.utc) - timedelta(seconds=5)
    party_id = tryton.rpc("model.party.party.search", [[["name", "=", "Dupont SARL"]], 0, 1, None, {}])[0]
    tryton.rpc("model.party.party.write", [[party_id], {"name": "Dupont & Fils SARL"}, {}])
    window = Window(start, datetime.now(timezone.utc) + timedelta(seconds=5))
    for source in (_rpc(tryton), _sql(tryton)):
        changed = _all(source, "customer_record", window)
        assert list(changed["source_id"]) == [str(party_id)], type(source).__name__
        assert changed.loc[0, "name"] == "Dupont & Fils SARL"
        assert _all(source, "order", window).empty


@pytest.mark.parametrize("table, field, expected", [
    ("no.such.model", "name", "no.such.model"),
    ("party.party", "no_such_field", "no_such_field"),
    ("party.party-party.category", "party", "not readable through Tryton's API (HTTP 403)"),
])
def test_a_wrong_model_or_field_is_a_config_error_naming_the_mapping(tryton, tmp_path, table, field, expected):
    mapping = {"source": "tryton_rpc", "connector": "tryton_rpc", "streams": {"customer_record": {
        "table": table, "primary_key": "id", "updated_at": "write_date", "fields": {"name": field}}}}
    path = tmp_path / "tryton_rpc.yaml"
    path.write_text(yaml.safe_dump(mapping))
    source = _rpc(tryton, load_mapping(path))
    with pytest.raises(ConfigError, match=r"mappings/tryton_rpc\.yaml: model") as raised:
        list(source.extract("customer_record", None))
    assert expected in str(raised.value)


def test_an_expired_session_is_renewed_once(tryton):
    source = _rpc(tryton)
    calls = source.client.calls
    assert source.check()["customer_record"] == 26
    usual = source.client.calls - calls - 1  # without the first login
    source.client.http.session.headers["Authorization"] = "Session ZXhwaXJlZA=="  # as if the server forgot it
    calls = source.client.calls
    assert source.check()["customer_record"] == 26
    assert source.client.calls - calls == usual + 2  # the refused call and a login, then on as usual


@pytest.fixture(scope="module")
def tryton_sync(tryton, airflow_db, tmp_path_factory):
    var = tmp_path_factory.mktemp("tryton-sync")
    config = yaml.safe_load((Path(local.ROOT) / "config" / "erp2crm.yaml").read_text())
    config["sources"] = [{"name": "tryton_rpc", "lookback_hours": 0.1}]
    (var / "erp2crm.yaml").write_text(yaml.safe_dump(config))
    crm = SalesforceEmulator(state_file=var / "crm.json", token=TOKEN).start()
    host, port = tryton.url.removeprefix("http://").split(":")
    local.configure(var, {
        "tryton_rpc_default": {"conn_type": "http", "host": host, "port": int(port), "schema": tryton.database,
                               "login": tryton.login, "password": tryton.password},
        "erp2crm_hub": {"conn_type": "sqlite", "host": str(var / "hub.db")},
        "salesforce_default": {"conn_type": "http", "host": crm.url, "password": TOKEN, "extra": {"api_version": "v60.0"}},
    })
    import os
    previous = os.environ.get("ERP2CRM_CONFIG")
    os.environ["ERP2CRM_CONFIG"] = str(var / "erp2crm.yaml")
    yield crm
    crm.stop()
    if previous is None:
        os.environ.pop("ERP2CRM_CONFIG")
    else:
        os.environ["ERP2CRM_CONFIG"] = previous


def test_the_sync_dag_pushes_tryton_customers_to_the_crm(tryton, tryton_sync):
    from erp2crm.pipeline import hub_store

    crm = tryton_sync
    dag_run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True})
    summary = hub_store().run(dag_run.run_id)["summary"]
    assert str(dag_run.state) == "success", summary
    assert summary["rows_read"]["tryton_rpc"] == _rpc(tryton).check()
    accounts = crm.records("Account")
    assert len(accounts) == summary["rows_passed"]["customer_record"] > 20
    by_source = {json.loads(a["ERP2CRM_Source_Ids__c"])[0]: a for a in accounts}
    party_id = tryton.rpc("model.party.party.search", [[["name", "=", "Customer 07"]], 0, 1, None, {}])[0]
    assert by_source[f"tryton_rpc:{party_id}"]["Name"] == "Customer 07"

    # A change in Tryton: the next (incremental) run reads the parties changed in its window (this one, and
    # any other test's change of the last minutes) and sends the one profile that changed since the last run.
    tryton.rpc("model.party.party.write", [[party_id], {"name": "Customer Seven Ltd"}, {}])
    dag_run = local.run_dag("erp_crm_customer_sync", {})
    summary = hub_store().run(dag_run.run_id)["summary"]
    assert str(dag_run.state) == "success", summary
    counts = hub_store().stages(dag_run.run_id).set_index("stage")["counts"]["extract:tryton_rpc"]
    with create_engine(tryton.sql_url).connect() as conn:
        in_window = set(conn.execute(text(
            "SELECT id FROM party_party WHERE coalesce(write_date, create_date) >= :start "
            "AND coalesce(write_date, create_date) < :end"),
            {"start": _utc_naive(counts["window_start"]), "end": _utc_naive(counts["window_end"])}).scalars())
    assert party_id in in_window and len(in_window) < 5
    assert summary["rows_read"]["tryton_rpc"]["customer_record"] == len(in_window)
    assert summary["crm_writes"] == 1
    names = {a["Name"] for a in crm.records("Account")}
    assert "Customer Seven Ltd" in names and "Customer 07" not in names


def _rest(tryton, key=None) -> TrytonRest:
    client = TrytonRestClient(HttpClient(tryton.url, max_retries=1, backoff_s=0.1), tryton.database,
                              key or tryton.rest_key)
    rest = TrytonRest("tryton", load_mapping(MAPPINGS / "tryton_rest.yaml"), client)
    rest.page_size = 7  # several pages per stream
    return rest


def test_rest_reads_what_json_rpc_reads_page_by_http_range(tryton):
    rest, rpc = _rest(tryton), _rpc(tryton)
    assert rest.check() == rpc.check()
    for entity in rpc.mapping.streams:
        pd.testing.assert_frame_equal(_all(rest, entity), _all(rpc, entity), check_dtype=False, obj=entity)


def test_rest_explains_a_refused_key_a_missing_field_and_an_unknown_model(tryton, tmp_path):
    with pytest.raises(ConfigError, match="refused the REST key"):
        _rest(tryton, key="not-a-key").check()
    for table, field, expected in [("party.party", "no_such_field", "or one of its fields id, write_date, no_such_field"),
                                   ("no.such.model", "name", "unknown model 'no.such.model'")]:
        mapping = {"source": "tryton_rest", "connector": "tryton_rest", "streams": {"customer_record": {
            "table": table, "primary_key": "id", "updated_at": "write_date", "fields": {"name": field}}}}
        path = tmp_path / "tryton_rest.yaml"
        path.write_text(yaml.safe_dump(mapping))
        source = _rest(tryton)
        source.mapping = load_mapping(path)
        with pytest.raises(ConfigError, match=r"mappings/tryton_rest\.yaml: model") as raised:
            source.check()
        assert expected in str(raised.value)
