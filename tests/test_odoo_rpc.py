"""The Odoo JSON-RPC source against the Odoo emulator (emulators/odoo.py) over real HTTP, on a generated demo
odoo.db: it reads what the SQL source reads from the same file, follows changes, reads archived partners,
explains refused logins and wrong mappings, retries what is transient, and pages to an end."""
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

from connectors.http import HttpClient
from connectors.mapping import load_mapping
from connectors.odoo_rpc import OdooRpc, OdooRpcClient, OdooRpcHook, _classify
from connectors.sql import SqlSource
from connectors.window import Window
from demodata import generate
from emulators.odoo import OdooEmulator
from erp2crm.errors import ConfigError, TransientError
from erp2crm.paths import MAPPINGS

DATABASE, LOGIN, API_KEY = "odoo_demo", "erp2crm", "0a1b2c3d-api-key"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odoo-demo")
    generate(folder, n_customers=60, seed=5)
    return folder / "odoo.db"


@pytest.fixture(scope="module")
def odoo(demo_db):
    with OdooEmulator(demo_db, DATABASE, LOGIN, API_KEY) as emulator:
        yield emulator


def _client(odoo, password=API_KEY, database=DATABASE, **http) -> OdooRpcClient:
    http = {"max_retries": 1, "backoff_s": 0.01, **http}
    return OdooRpcClient(HttpClient(odoo.url, **http), database, LOGIN, password)


def _rpc(odoo, mapping=None, client=None) -> OdooRpc:
    return OdooRpc("odoo", mapping or load_mapping(MAPPINGS / "odoo_rpc.yaml"), client or _client(odoo))


def _sql(db_path) -> SqlSource:
    return SqlSource("odoo", load_mapping(MAPPINGS / "odoo.yaml"), create_engine(f"sqlite:///{db_path}"))


def _all(source, entity, window=None) -> pd.DataFrame:
    chunks = list(source.extract(entity, window))
    if not chunks:
        return pd.DataFrame(columns=["source_id"])
    frame = pd.concat(chunks, ignore_index=True)
    return frame.sort_values("source_id", key=lambda s: s.astype(int)).reset_index(drop=True)


def test_json_rpc_and_sql_read_the_same_rows(odoo, demo_db):
    rpc, sql = _rpc(odoo), _sql(demo_db)
    assert rpc.check() == sql.check()
    for entity in sql.mapping.streams:
        by_api, by_sql = _all(rpc, entity), _all(sql, entity)
        assert len(by_api) > 0, entity
        pd.testing.assert_frame_equal(by_api, by_sql, obj=entity)
    tickets = _all(rpc, "service_ticket")
    assert tickets["satisfaction"].isna().any() and tickets["satisfaction"].notna().any()  # false → empty
    assert set(tickets["status"]) == {"open", "closed"}  # a boolean lookup value, mapped as the SQL 1/0
    assert _all(rpc, "order_line")["category"].notna().all()  # a chain of three many2one lookups


def test_archived_partners_are_read(odoo, demo_db):
    with sqlite3.connect(demo_db) as conn:
        archived = {str(i) for (i,) in conn.execute("SELECT id FROM res_partner WHERE active = 0 AND parent_id IS NULL")}
    customers = _all(_rpc(odoo), "customer_record")
    assert archived and set(customers.loc[~customers["is_active"].astype(bool), "source_id"]) == archived
    # Odoo hides them unless asked: the connector's active_test = false is what brings them in.
    client = _client(odoo)
    hidden = client.execute_kw("res.partner", "search_count", [[["parent_id", "=", False]]])
    assert hidden == len(customers) - len(archived)


def test_a_change_is_the_only_row_in_a_window_around_now(demo_db, tmp_path):
    db = tmp_path / "odoo.db"
    shutil.copy(demo_db, db)
    partner_id = 7
    now = datetime.now(timezone.utc)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE res_partner SET name = 'Renamed Trading Ltd', write_date = ? WHERE id = ?",
                     (now.strftime("%Y-%m-%d %H:%M:%S"), partner_id))
    window = Window(now - timedelta(seconds=5), now + timedelta(seconds=5))
    with OdooEmulator(db, DATABASE, LOGIN, API_KEY) as odoo:
        for source in (_rpc(odoo), _sql(db)):
            changed = _all(source, "customer_record", window)
            assert list(changed["source_id"]) == [str(partner_id)], type(source).__name__
            assert changed.loc[0, "name"] == "Renamed Trading Ltd"
            assert _all(source, "order", window).empty
        # The window from the beginning up to just before the change holds every other partner.
        earlier = _all(_rpc(odoo), "customer_record", Window(None, now - timedelta(seconds=5)))
        assert str(partner_id) not in set(earlier["source_id"])
        assert len(earlier) == _rpc(odoo).check()["customer_record"] - 1


def test_documents_addressed_to_a_contact_person_belong_to_its_company(demo_db, tmp_path):
    """Odoo users often address an order, invoice or ticket to the person they deal with, a child partner of the
    company: the document is the company's (commercial_partner_id), through SQL and JSON-RPC alike. A partner
    missing from res_partner is kept as it is, so the document is held as orphan_customer naming it."""
    db = tmp_path / "odoo.db"
    shutil.copy(demo_db, db)
    with sqlite3.connect(db) as conn:
        person, company = conn.execute("SELECT id, parent_id FROM res_partner WHERE parent_id IS NOT NULL "
                                       "AND parent_id IN (SELECT id FROM res_partner WHERE parent_id IS NULL) "
                                       "ORDER BY id LIMIT 1").fetchone()
        order = conn.execute("SELECT MIN(id) FROM sale_order").fetchone()[0]
        invoice = conn.execute("SELECT MIN(move_id) FROM account_move_line WHERE id IN "
                               "(SELECT debit_move_id FROM account_partial_reconcile)").fetchone()[0]
        ticket = conn.execute("SELECT MIN(id) FROM helpdesk_ticket").fetchone()[0]
        conn.execute("UPDATE sale_order SET partner_id = ? WHERE id = ?", (person, order))
        conn.execute("UPDATE account_move SET partner_id = ? WHERE id = ?", (person, invoice))
        conn.execute("UPDATE account_move_line SET partner_id = ? WHERE move_id = ?", (person, invoice))
        conn.execute("UPDATE helpdesk_ticket SET partner_id = 999999 WHERE id = ?", (ticket,))
        payments = {str(i) for (i,) in conn.execute(
            "SELECT p.id FROM account_partial_reconcile p JOIN account_move_line l ON l.id = p.debit_move_id "
            "WHERE l.move_id = ?", (invoice,))}
    with OdooEmulator(db, DATABASE, LOGIN, API_KEY) as odoo:
        for source in (_rpc(odoo), _sql(db)):
            name = type(source).__name__
            owner = lambda entity, ids: set(_all(source, entity).set_index("source_id").loc[list(ids), "customer_source_id"])  # noqa: E731
            assert owner("order", [str(order)]) == {str(company)}, name
            lines = _all(source, "order_line")
            assert set(lines.loc[lines["order_source_id"] == str(order), "customer_source_id"]) == {str(company)}, name
            assert owner("invoice", [str(invoice)]) == {str(company)}, name
            assert owner("payment", payments) == {str(company)}, name
            assert owner("service_ticket", [str(ticket)]) == {"999999"}, name  # kept: held as orphan_customer


def test_an_incremental_window_reads_only_the_lookup_rows_it_needs(demo_db, tmp_path, monkeypatch):
    """One order line changed: its order, product, template, category and partner are read by key, not the
    whole of every lookup table (which a full read does, once)."""
    from sqlalchemy import event

    from hub import bulk

    db = tmp_path / "odoo.db"
    shutil.copy(demo_db, db)
    now = datetime.now(timezone.utc)
    with sqlite3.connect(db) as conn:
        line = conn.execute("SELECT MIN(id) FROM sale_order_line").fetchone()[0]
        conn.execute("UPDATE sale_order_line SET write_date = ? WHERE id = ?", (now.strftime("%Y-%m-%d %H:%M:%S"), line))
    source = _sql(db)
    statements = []
    event.listen(source.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    batches = bulk.sqlite_batches  # the rows themselves are read through ADBC
    monkeypatch.setattr(bulk, "sqlite_batches", lambda *args, **kw: statements.append(args[1]) or batches(*args, **kw))
    changed = _all(source, "order_line", Window(now - timedelta(seconds=5), now + timedelta(seconds=5)))
    reads = [q for q in statements if q.lstrip().upper().startswith("SELECT") and "sqlite_" not in q]
    lookups = [q for q in reads if "sale_order_line" not in q]  # the stream's own query is the one with it
    assert lookups and all(" IN (" in q for q in lookups), lookups
    whole = _all(_sql(db), "order_line").set_index("source_id")
    pd.testing.assert_frame_equal(changed.set_index("source_id"), whole.loc[[str(line)]])


def test_refused_logins_are_config_errors(odoo):
    with pytest.raises(ConfigError, match=r"refused the login of 'erp2crm' to database 'odoo_demo'"):
        _rpc(odoo, client=_client(odoo, password="wrong")).check()
    with pytest.raises(ConfigError, match=r'database "no_such_db" does not exist.*schema'):
        _rpc(odoo, client=_client(odoo, database="no_such_db")).check()
    client = _client(odoo)
    client.authenticate()
    client._password = "changed since"  # execute_kw checks the password on every call: AccessDenied
    with pytest.raises(ConfigError, match=r"AccessDenied: Access Denied \(the connection's login and password"):
        client.execute_kw("res.partner", "search_count", [[]])


@pytest.mark.parametrize("model, field, lookup, expected", [
    ("no.such.model", "name", None, "unknown model 'no.such.model'"),
    ("res.partner", "no_such_field", None, "Invalid field 'no_such_field' on model 'res.partner'"),
    ("res.partner", "name", "no.such.lookup", "unknown model 'no.such.lookup'"),
])
def test_a_wrong_model_or_field_is_a_config_error_naming_the_mapping(odoo, tmp_path, model, field, lookup, expected):
    fields = {"name": field}
    if lookup:
        fields["country"] = {"column": "country_id", "lookup": {"table": lookup, "key": "id", "value": "code"}}
    mapping = {"source": "odoo_rpc", "connector": "odoo_rpc", "streams": {"customer_record": {
        "table": model, "primary_key": "id", "updated_at": "write_date", "fields": fields}}}
    path = tmp_path / "odoo_rpc.yaml"
    path.write_text(yaml.safe_dump(mapping))
    source = OdooRpc("odoo_rpc", load_mapping(path), _client(odoo))
    with pytest.raises(ConfigError, match=rf"mappings/odoo_rpc\.yaml: model '{lookup or model}'") as raised:
        list(source.extract("customer_record", None))
    assert expected in str(raised.value)


def test_a_server_failing_mid_extraction_is_transient_after_the_retries(odoo):
    sleeps: list[float] = []
    source = _rpc(odoo, client=_client(odoo, max_retries=2, sleep=sleeps.append))
    source.page_size = 50
    served = None
    try:
        with pytest.raises(TransientError, match="HTTP 503"):
            for n, _chunk in enumerate(source.extract("order", None, 20)):
                if n == 0:
                    odoo.fail_with(503)
                    served = odoo.requests_served
    finally:
        odoo.fail_with(None)
    assert odoo.requests_served - served == 3 and len(sleeps) == 2  # the request and its two retries


def test_a_rate_limit_honours_retry_after_then_recovers(odoo):
    sleeps: list[float] = []

    def sleep(seconds):  # the server is ready again once the client has waited
        sleeps.append(seconds)
        odoo.fail_with(None)

    source = _rpc(odoo, client=_client(odoo, max_retries=3, sleep=sleep))
    odoo.fail_with(429, retry_after=7)
    try:
        orders = _all(source, "order")
    finally:
        odoo.fail_with(None)
    assert sleeps == [7]
    pd.testing.assert_frame_equal(orders, _all(_rpc(odoo), "order"))


@pytest.mark.parametrize("page_size", [1000, 50])
def test_calls_per_thousand_rows_and_paging_ends(odoo, demo_db, page_size):
    source = _rpc(odoo)
    source.page_size = page_size
    with sqlite3.connect(demo_db) as conn:
        size = {table: n for table in {s.table for s in source.mapping.streams.values()} | {
            lookup.table for s in source.mapping.streams.values() for f in s.fields.values() for lookup in f.lookups}
            for (n,) in [conn.execute(f'SELECT count(*) FROM "{table.replace(".", "_")}"').fetchone()]}
    rows = 0
    models: set[str] = set()
    for entity, stream in source.mapping.streams.items():
        before = source.client.calls
        read = _all(source, entity)
        lookups = {(lookup.table, lookup.value) for spec in stream.fields.values() for lookup in spec.lookups}
        pages = math.ceil(len(read) / page_size) + sum(math.ceil(size[table] / page_size) for table, _ in lookups)
        new_models = {stream.table, *(table for table, _ in lookups)} - models
        models |= new_models
        # Its pages, one more when the last page is full, and the login and fields_get calls it is the first to need.
        assert source.client.calls - before <= pages + 1 + len(new_models) + (1 if entity == "customer_record" else 0)
        assert read["source_id"].is_unique, entity
        rows += len(read)
    calls = source.client.calls
    assert rows == sum(source.check().values())
    print(f"\nOdoo JSON-RPC, page size {page_size}: {calls} calls for {rows} rows = "
          f"{1000 * calls / rows:.1f} calls per 1,000 rows")


def test_the_hook_builds_a_client_from_the_airflow_connection(odoo, monkeypatch):
    host, port = odoo.url.removeprefix("http://").split(":")
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_RPC_TEST", json.dumps({
        "conn_type": "http", "host": host, "port": int(port), "schema": DATABASE, "login": LOGIN, "password": API_KEY}))
    client = OdooRpcHook("odoo_rpc_test").get_client()
    assert client.http.base_url == odoo.url and client.authenticate() == 2
    monkeypatch.setenv("AIRFLOW_CONN_ODOO_RPC_TEST", json.dumps({"conn_type": "http", "host": host}))
    with pytest.raises(ConfigError, match="needs host, schema"):
        OdooRpcHook("odoo_rpc_test").get_client()


@pytest.mark.parametrize("name, message, kind", [
    ("psycopg2.errors.SerializationFailure", "could not serialize access due to concurrent update", TransientError),
    ("psycopg2.OperationalError", "server closed the connection unexpectedly", TransientError),
    ("odoo.exceptions.AccessError", "You are not allowed to access 'Journal Entry' (account.move).", ConfigError),
    ("builtins.ValueError", "Invalid leaf ('id', '~', 1)", ConfigError),
])
def test_odoo_errors_are_classified(name, message, kind):
    error = {"code": 200, "message": "Odoo Server Error", "data": {"name": name, "message": message}}
    assert type(_classify("account.move.search_read", error)) is kind


def test_the_emulator_reads_domains_as_odoo_does(odoo, demo_db):
    client = _client(odoo)

    def ids(domain) -> set[int]:
        return set(client.execute_kw("res.partner", "search", [domain], {"context": {"active_test": False}}))

    def where(condition) -> set[int]:
        with sqlite3.connect(demo_db) as conn:
            return {i for (i,) in conn.execute(f"SELECT id FROM res_partner WHERE {condition}")}

    assert ids([["country_id", "=", False]]) == where("country_id IS NULL") != set()
    assert ids([["country_id", "!=", 1]]) == where("country_id IS NULL OR country_id != 1")  # empty values too
    assert ids([["country_id", "not in", [1, 2]]]) == where("country_id IS NULL OR country_id NOT IN (1, 2)")
    assert ids([["country_id", "in", [2, False]]]) == where("country_id IS NULL OR country_id = 2")
    assert ids(["!", ["active", "=", True]]) == where("active = 0")
    assert ids(["|", ["id", "<", 3], "&", ["id", ">=", 40], ["is_company", "=", True]]) == \
        where("id < 3 OR (id >= 40 AND is_company = 1)")
    assert ids([["id", ">", 10], ["id", "<=", 12]]) == {11, 12}  # implicit AND
    with sqlite3.connect(demo_db) as conn:
        partner_id, country_id, country, written = conn.execute(
            "SELECT p.id, c.id, c.name, p.write_date FROM res_partner p JOIN res_country c ON c.id = p.country_id "
            "WHERE vat IS NULL AND is_company = 0 ORDER BY p.id LIMIT 1").fetchone()
    wanted = ["country_id", "vat", "write_date", "is_company"]
    read = client.execute_kw("res.partner", "read", [[partner_id]], {"fields": wanted})
    # Odoo's answer: many2one as [id, name], empty as false (not null), booleans as booleans, UTC datetime text.
    assert read == [{"id": partner_id, "country_id": [country_id, country], "vat": False, "write_date": written,
                     "is_company": False}]
    params = {"service": "object", "method": "execute_kw",
              "args": [DATABASE, 2, API_KEY, "res.partner", "search", [[["x", "=", 1]]]]}
    answer = requests.post(f"{odoo.url}/jsonrpc", json={"jsonrpc": "2.0", "method": "call", "id": 9, "params": params})
    assert answer.status_code == 200 and answer.json()["error"]["data"]["name"] == "builtins.ValueError"
