"""The ERPNext REST source against the ERPNext emulator (emulators/erpnext.py) over real HTTP, on a generated demo
database: it reads what the SQL source reads from the same database, follows changes in the site's time zone,
explains wrong credentials and mappings, retries what is transient, and pages with few requests."""
from __future__ import annotations

import json
import math
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import requests
import yaml
from sqlalchemy import create_engine

from connectors.api import Query
from connectors.erpnext_api import ErpnextApi, ErpnextApiClient
from connectors.http import HttpClient
from connectors.mapping import load_mapping
from connectors.sql import SqlSource
from connectors.window import Window
from demodata import generate
from emulators.erpnext import ErpnextEmulator
from erp2crm.errors import ConfigError, TransientError
from erp2crm.paths import MAPPINGS

KEY, SECRET = "erpnext-test-key", "erpnext-test-secret-7f3a"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("erpnext-api")
    generate(folder, n_customers=60, seed=5)
    return folder / "erpnext.db"


@pytest.fixture(scope="module")
def emulator(demo_db):
    with ErpnextEmulator(demo_db, KEY, SECRET) as server:
        yield server


@pytest.fixture
def own_db(demo_db, tmp_path):
    """A copy of the demo database for a test that changes it, served by an emulator of its own."""
    path = tmp_path / "erpnext.db"
    shutil.copy(demo_db, path)
    with ErpnextEmulator(path, KEY, SECRET) as server:
        yield path, server


def _api(server, mapping=None, secret=SECRET, mapping_file="mappings/erpnext_api.yaml", **http) -> ErpnextApi:
    client = ErpnextApiClient(HttpClient(server.url, **{"max_retries": 1, "backoff_s": 0.01, **http}), KEY, secret)
    return ErpnextApi("erpnext", mapping or load_mapping(MAPPINGS / "erpnext_api.yaml"), client, mapping_file)


def _sql(db_path, mapping=None) -> SqlSource:
    return SqlSource("erpnext", mapping or load_mapping(MAPPINGS / "erpnext.yaml"), create_engine(f"sqlite:///{db_path}"))


def _all(source, entity, window=None, chunk_size=50_000) -> pd.DataFrame:
    chunks = list(source.extract(entity, window, chunk_size))
    if not chunks:
        return pd.DataFrame(columns=["source_id"])
    return pd.concat(chunks, ignore_index=True).sort_values("source_id").reset_index(drop=True)


@pytest.mark.parametrize("page_size", [500, 7])
def test_api_and_sql_give_the_same_canonical_rows(emulator, demo_db, page_size):
    api, sql = _api(emulator), _sql(demo_db)
    api.page_size = page_size  # 7: many pages per stream and per lookup DocType
    # The REST mapping reads every stream of the SQL one but contacts (Contacts are tied to customers through a
    # child table, which the REST mapping does not read).
    assert set(sql.mapping.streams) - set(api.mapping.streams) == {"contact"}
    assert api.check() == {e: n for e, n in sql.check().items() if e != "contact"}
    for entity in api.mapping.streams:
        by_api, by_sql = _all(api, entity), _all(sql, entity)
        assert len(by_api) > 0, entity
        pd.testing.assert_frame_equal(by_api, by_sql, obj=entity)
    customers = _all(api, "customer_record").set_index("source_id")
    assert customers.loc["CUST-00001", "city"] == "上海" and customers.loc["CUST-00001", "country"] == "CN"
    payments = _all(api, "payment")
    assert payments["customer_source_id"].notna().all() and set(payments["status"]) == {"posted"}


@pytest.mark.parametrize("site_zone", ["UTC", "Asia/Shanghai"])
def test_a_changed_row_is_the_only_row_in_a_window_around_now(own_db, site_zone):
    path, server = own_db
    now = datetime.now(timezone.utc)
    wall_clock = pd.Timestamp(now).tz_convert(site_zone).strftime("%Y-%m-%d %H:%M:%S.%f")  # as Frappe stores it
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tabCustomer SET customer_name = 'Renamed Trading Ltd', modified = ? WHERE name = ?",
                     (wall_clock, "CUST-00002"))
    window = Window(now - timedelta(seconds=5), now + timedelta(seconds=5))
    zoned = {"source_timezone": site_zone}
    api = _api(server, load_mapping(MAPPINGS / "erpnext_api.yaml").model_copy(update=zoned))
    sql = _sql(path, load_mapping(MAPPINGS / "erpnext.yaml").model_copy(update=zoned))
    for source in (api, sql):
        changed = _all(source, "customer_record", window)
        assert list(changed["source_id"]) == ["CUST-00002"], type(source).__name__
        assert changed.loc[0, "name"] == "Renamed Trading Ltd"
        assert abs(changed.loc[0, "updated_at"] - pd.Timestamp(now)) < pd.Timedelta(milliseconds=1)
        assert _all(source, "order", window).empty
    # Bounds sent as UTC wall-clock time would find a Shanghai site's change eight hours later, here:
    shifted = Window(window.start + timedelta(hours=8), window.end + timedelta(hours=8))
    assert _all(api, "customer_record", shifted).empty


def test_bad_credentials_are_a_config_error(emulator):
    with pytest.raises(ConfigError, match=r"refused the API key/secret.*HTTP 401.*AuthenticationError"):
        _api(emulator, secret="wrong").check()


@pytest.mark.parametrize("table, fields, where, expected", [
    ("No Such DocType", {"name": "customer_name"}, {}, r"DocType 'No Such DocType': unknown DocType.*not found"),
    ("Customer", {"name": "no_such_field"}, {}, r"DocType 'Customer': ERPNext has no field 'no_such_field'"),
    ("Customer", {"name": "customer_name"}, {"no_such_flag": 1}, r"DocType 'Customer': ERPNext has no field 'no_such_flag'"),
    ("Customer", {"name": "customer_name", "city": {"column": "customer_primary_address",
                                                    "lookup": {"table": "Adress", "key": "name", "value": "city"}}},
     {}, r"DocType 'Adress': unknown DocType"),
])
def test_a_wrong_doctype_or_field_is_a_config_error_naming_the_mapping(emulator, tmp_path, table, fields, where, expected):
    mapping = {"source": "erpnext_api", "connector": "erpnext_api", "streams": {"customer_record": {
        "table": table, "primary_key": "name", "updated_at": "modified", "where": where, "fields": fields}}}
    path = tmp_path / "erpnext_api.yaml"
    path.write_text(yaml.safe_dump(mapping))
    source = _api(emulator, load_mapping(path), mapping_file=str(path))
    for attempt in (source.check, lambda: list(source.extract("customer_record", None))):
        with pytest.raises(ConfigError, match=expected) as raised:
            attempt()
        assert str(raised.value).startswith(f"{path}: ")


def test_a_field_the_site_leaves_out_is_a_config_error(emulator):
    source = _api(emulator)
    source.client.get_list = lambda doctype, fields, *args: [{"name": "CUST-00001"}]  # no permission on the rest
    with pytest.raises(ConfigError, match=r"DocType 'Customer': ERPNext answered without field\(s\) modified, creation"):
        source._page(Query("Customer", ("name", "modified", "creation"), "name"), None, 10)


def test_a_server_failing_mid_extraction_is_transient_after_the_retries(emulator):
    sleeps: list[float] = []
    source = _api(emulator, max_retries=2, backoff_s=0.5, sleep=sleeps.append)
    source.page_size = 5
    chunks = source.extract("order", None, 2)
    try:
        next(chunks)
        emulator.fail_with(503)
        served = emulator.requests_served
        with pytest.raises(TransientError, match="HTTP 503"):
            list(chunks)
        assert emulator.requests_served - served == 3  # the first attempt and two retries, backing off
        assert sleeps == [0.5, 1.0]
    finally:
        emulator.fail_with(None)


def test_a_rate_limit_is_waited_out_for_as_long_as_retry_after_says(emulator, demo_db):
    sleeps: list[float] = []

    def sleep(seconds):  # the limit is lifted while the client waits
        sleeps.append(seconds)
        emulator.fail_with(None)

    source = _api(emulator, max_retries=2, backoff_s=0.5, sleep=sleep)
    emulator.fail_with(429, retry_after=7)
    try:
        rows = _all(source, "invoice")
    finally:
        emulator.fail_with(None)
    assert sleeps == [7.0]
    pd.testing.assert_frame_equal(rows, _all(_sql(demo_db), "invoice"))


def test_names_are_keys_as_text_also_when_they_look_like_numbers(own_db):
    path, server = own_db
    with sqlite3.connect(path) as conn:
        first = [n for (n,) in conn.execute("SELECT name FROM tabIssue ORDER BY name LIMIT 4")]
        for old, new in zip(first, ["9", "10", "0010", "100"]):
            conn.execute("UPDATE tabIssue SET name = ? WHERE name = ?", (new, old))
    source = _api(server)
    source.page_size = 2  # keyset pages that end on "0010", "10", "100": compared as text, as the site does
    tickets = _all(source, "service_ticket")
    pd.testing.assert_frame_equal(tickets, _all(_sql(path), "service_ticket"))
    assert {"9", "10", "0010", "100"} <= set(tickets["source_id"])
    found = pd.concat(list(source.extract_keys("service_ticket", ["0010", "9", "999999999"])), ignore_index=True)
    assert sorted(found["source_id"]) == ["0010", "9"]  # not "10" for "0010"


@pytest.mark.parametrize("page_size", [500, 7])
def test_api_calls_per_thousand_rows(emulator, page_size, capsys):
    source = _api(emulator)
    source.page_size = page_size
    pages = lambda rows: rows // page_size + 1  # noqa: E731 - keyset paging ends on the first short page
    rows_total = calls_total = 0
    for entity, stream in source.mapping.streams.items():
        lookup_doctypes = {lookup.table for spec in stream.fields.values() for lookup in spec.lookups}
        lookup_rows = [source.client.get_count(doctype, []) for doctype in lookup_doctypes]
        before = source.client.calls
        rows = len(_all(source, entity))
        calls = source.client.calls - before
        # One pass per lookup DocType (all its looked-up fields at once), then the stream's own pages: no more
        # than ceil(rows / page size) + the lookups' pages + 1, the one page that comes back empty.
        lookup_calls = sum(pages(n) for n in lookup_rows)
        assert calls == pages(rows) + lookup_calls <= math.ceil(rows / page_size) + lookup_calls + 1, entity
        rows_total, calls_total = rows_total + rows, calls_total + calls
    with capsys.disabled():
        print(f"\nERPNext API, page size {page_size}: {calls_total} calls for {rows_total} rows = "
              f"{1000 * calls_total / rows_total:.1f} calls per 1,000 rows")


def test_the_emulator_answers_in_frappes_wire_format(own_db):
    path, server = own_db
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tabCustomer SET modified = '2026-01-02 03:04:05.123456', tax_id = '' WHERE name = 'CUST-00001'")
    auth = {"Authorization": f"token {KEY}:{SECRET}"}

    def get(path_, **params):
        return requests.get(server.url + path_, params=params, headers=auth, timeout=10)

    one = get("/api/resource/Customer", fields='["name", "modified", "creation", "disabled"]',
              filters='[["Customer", "name", "=", "CUST-00001"]]').json()["data"]
    assert one == [{"name": "CUST-00001", "modified": "2026-01-02 03:04:05.123456",
                    "creation": "2020-07-28 01:39:20", "disabled": 0}]
    assert list(get("/api/resource/Sales Order").json()["data"][0]) == ["name"]  # only `name` unless asked
    assert len(get("/api/resource/Sales Order").json()["data"]) == 20  # Frappe's default page
    assert len(get("/api/resource/Sales Order", limit=3).json()["data"]) == 3  # v15's alias
    server.max_page_length = 50
    assert len(get("/api/resource/Sales Order", limit_page_length=10_000).json()["data"]) == 50  # capped
    with sqlite3.connect(path) as conn:
        total, with_tax = conn.execute("SELECT count(*), count(nullif(tax_id, '')) FROM tabCustomer").fetchone()
        by_name = [n for (n,) in conn.execute("SELECT name FROM tabCustomer ORDER BY name DESC")]
    names = [r["name"] for r in get("/api/resource/Customer", order_by="name desc", limit_start=1, limit=2).json()["data"]]
    assert names == by_name[1:3]
    count = lambda **f: get("/api/method/frappe.client.get_count", doctype="Customer", **f).json()["message"]  # noqa: E731
    assert count() == total
    assert count(filters='[["tax_id", "is", "set"]]') == with_tax  # "set" is neither null nor empty text
    assert count(filters='[["tax_id", "is", "not set"]]') == total - with_tax
    assert count(filters='[["name", "in", "CUST-00001,CUST-00002"]]') == 2
    assert count(filters='[["name", "in", ["CUST-00001"]]]') == 1
    either = get("/api/resource/Customer", filters='[["disabled", "=", 0]]',
                 or_filters='[["name", "=", "CUST-00001"], ["name", "=", "CUST-00002"]]').json()["data"]
    assert either == [{"name": "CUST-00001"}, {"name": "CUST-00002"}]  # AND-ed with the filters; modified desc
    assert count(filters='[["modified", ">=", "2026-01-02 03:04:05.123456"], ["modified", "<", "2026-01-02 03:04:05.123457"]]') == 1
    unknown = get("/api/resource/Customer", filters='[["colour", "=", "red"]]')
    assert unknown.status_code == 417 and "Unknown column 'tabCustomer.colour' in 'where clause'" in unknown.json()["exception"]
    refused = requests.get(server.url + "/api/resource/Customer", timeout=10)
    assert refused.status_code == 401 and refused.json()["exc_type"] == "AuthenticationError"


def test_the_hook_builds_the_client_from_an_airflow_connection(emulator, demo_db, monkeypatch):
    from connectors.erpnext_api import ErpnextApiHook

    host, port = emulator.url.removeprefix("http://").split(":")
    monkeypatch.setenv("AIRFLOW_CONN_ERPNEXT_API_TEST", json.dumps(
        {"conn_type": "http", "host": host, "port": int(port), "login": KEY, "password": SECRET}))
    client = ErpnextApiHook("erpnext_api_test").get_client()
    assert client.http.base_url == emulator.url
    assert client.get_count("Customer", []) == _sql(demo_db).check()["customer_record"]
    monkeypatch.setenv("AIRFLOW_CONN_ERPNEXT_API_TEST", json.dumps({"conn_type": "http", "host": host, "login": KEY}))
    with pytest.raises(ConfigError, match="needs host, login .* and password"):
        ErpnextApiHook("erpnext_api_test").get_client()
