"""The contract every source passes, each against a real counterpart: the Tryton JSON-RPC and REST connectors
against a real Tryton 8.2 server, the SQL source on that Tryton's PostgreSQL database, on an Odoo schema in PostgreSQL
and on ERPNext and Dolibarr schemas in MariaDB; the Odoo JSON-RPC and ERPNext REST connectors against our emulators of
those APIs.

It connects; every stream returns canonical rows; paging ends and reads each row once; the window is
respected; rows are found by key; bad credentials are a config error; a server failing mid-extraction is a
transient error and leaves the landing partition as it was."""
from __future__ import annotations

import os
import signal
import uuid
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

from connectors.http import HttpClient
from connectors.mapping import load_mapping
from connectors.erpnext_api import ErpnextApi, ErpnextApiClient
from connectors.odoo_rpc import OdooRpc, OdooRpcClient
from connectors.sql import SqlSource
from connectors.tryton_rest import TrytonRest, TrytonRestClient
from connectors.tryton_rpc import TrytonRpc, TrytonRpcClient
from connectors.window import Window
from demodata import generate
from demodata.dolibarr import dolibarr_database, load_mariadb
from emulators.erpnext import ErpnextEmulator
from emulators.odoo import OdooEmulator
from erp2crm.canonical import DOCUMENT_ENTITIES, ENTITIES
from erp2crm.errors import ConfigError, TransientError
from erp2crm.paths import MAPPINGS
from servers.database import admin_engine_or_skip
from hub.store import HubStore

PG = os.environ.get("ERP2CRM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB = os.environ.get("ERP2CRM_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@dataclass
class Contract:
    open: Callable[[], object]  # a working source
    open_with_bad_credentials: Callable[[], object]
    break_server: Callable[[], None]  # makes the server fail the extraction under way
    mend_server: Callable[[], None] = lambda: None


def _copy_demo_database(sqlite_path, url) -> None:
    """The demo ERP database (SQLite) loaded table by table into a real server."""
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(url)
    with source.connect() as read:
        for table in inspect(source).get_table_names():
            frame = pd.read_sql(text(f'SELECT * FROM "{table}"'), read)
            frame.to_sql(table, target, index=False, chunksize=1000)
    target.dispose()


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract-demo")
    generate(folder, n_customers=60, seed=5)
    return folder


def _sql_contract(name: str, url: str, kill_sql: str, bad_url: str) -> Contract:
    mapping = load_mapping(MAPPINGS / f"{name}.yaml")
    engine = create_engine(url)

    def break_server():
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            for (victim,) in conn.execute(text(kill_sql)).fetchall():
                conn.execute(text(f"KILL {victim}") if url.startswith("mysql") else
                             text("SELECT pg_terminate_backend(:p)"), {"p": victim})

    return Contract(open=lambda: SqlSource(name, mapping, engine),
                    open_with_bad_credentials=lambda: SqlSource(name, mapping, create_engine(bad_url)),
                    break_server=break_server)


@pytest.fixture(scope="module")
def odoo_postgres(demo_files):
    admin = admin_engine_or_skip(PG, "PostgreSQL")
    name = f"erp2crm_contract_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    _copy_demo_database(demo_files / "odoo.db", url)
    kill = f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    # The machine's PostgreSQL trusts local connections, so a wrong password cannot fail there: a role
    # that does not exist is refused the same way ("password authentication failed" / "role ... does not exist").
    bad = PG.rsplit("/", 1)[0].replace("postgres@", "no_such_role_erp2crm:wrong@") + f"/{name}"
    yield _sql_contract("odoo", url, kill, bad)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def erpnext_mariadb(demo_files):
    admin = admin_engine_or_skip(MARIADB, "MariaDB")
    name = f"erp2crm_contract_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = MARIADB.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    _copy_demo_database(demo_files / "erpnext.db", url)
    kill = f"SELECT id FROM information_schema.processlist WHERE db = '{name}' AND id <> CONNECTION_ID()"
    bad = MARIADB.rsplit("/", 1)[0].replace("root@", "root:wrong-password@") + f"/{name}"
    yield _sql_contract("erpnext", url, kill, bad)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE `{name}`"))


@pytest.fixture(scope="module")
def dolibarr_mariadb(tmp_path_factory):
    admin = admin_engine_or_skip(MARIADB, "MariaDB")
    name = f"erp2crm_contract_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = MARIADB.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    engine = create_engine(url)
    load_mariadb(dolibarr_database(tmp_path_factory.mktemp("contract-dolibarr"), 60, 5), engine)
    engine.dispose()
    kill = f"SELECT id FROM information_schema.processlist WHERE db = '{name}' AND id <> CONNECTION_ID()"
    bad = MARIADB.rsplit("/", 1)[0].replace("root@", "root:wrong-password@") + f"/{name}"
    yield _sql_contract("dolibarr", url, kill, bad)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE `{name}`"))


@pytest.fixture(scope="module")
def tryton_postgres(tryton):
    kill = f"SELECT pid FROM pg_stat_activity WHERE datname = '{tryton.database}' AND pid <> pg_backend_pid() " \
           f"AND application_name <> 'trytond'"
    bad = tryton.sql_url.replace("postgres@", "no_such_role_erp2crm:wrong@")
    contract = _sql_contract("tryton", tryton.sql_url, kill, bad)
    return contract


@pytest.fixture(scope="module")
def tryton_rpc(tryton):
    mapping = load_mapping(MAPPINGS / "tryton_rpc.yaml")

    def source(password=tryton.password):
        # Short timeouts and one retry, so that a stopped server fails the test in seconds.
        client = TrytonRpcClient(HttpClient(tryton.url, timeout=3, max_retries=1, backoff_s=0.1),
                                 tryton.database, tryton.login, password)
        rpc = TrytonRpc("tryton_rpc", mapping, client)
        rpc.page_size = 4  # several pages per stream
        return rpc

    # A stopped (not killed) server holds connections open and answers nothing: requests time out.
    return Contract(open=source, open_with_bad_credentials=lambda: source("wrong password"),
                    break_server=lambda: os.killpg(tryton.process.pid, signal.SIGSTOP),
                    mend_server=lambda: os.killpg(tryton.process.pid, signal.SIGCONT))


@pytest.fixture(scope="module")
def tryton_rest(tryton):
    mapping = load_mapping(MAPPINGS / "tryton_rest.yaml")

    def source(key=tryton.rest_key):
        client = TrytonRestClient(HttpClient(tryton.url, timeout=3, max_retries=1, backoff_s=0.1), tryton.database, key)
        rest = TrytonRest("tryton_rest", mapping, client)
        rest.page_size = 4
        return rest

    return Contract(open=source, open_with_bad_credentials=lambda: source("not-a-rest-key"),
                    break_server=lambda: os.killpg(tryton.process.pid, signal.SIGSTOP),
                    mend_server=lambda: os.killpg(tryton.process.pid, signal.SIGCONT))


@pytest.fixture(scope="module")
def odoo_rpc(demo_files):
    with OdooEmulator(demo_files / "odoo.db", "odoo", "api-user", "odoo-api-key") as emulator:
        def source(password="odoo-api-key"):
            client = OdooRpcClient(HttpClient(emulator.url, timeout=3, max_retries=1, backoff_s=0.1), "odoo",
                                   "api-user", password)
            rpc = OdooRpc("odoo_rpc", load_mapping(MAPPINGS / "odoo_rpc.yaml"), client)
            rpc.page_size = 4  # several pages per stream, so that a failure can come between two
            return rpc

        yield Contract(open=source, open_with_bad_credentials=lambda: source("wrong key"),
                       break_server=lambda: emulator.fail_with(503), mend_server=lambda: emulator.fail_with(None))


@pytest.fixture(scope="module")
def erpnext_api(demo_files):
    with ErpnextEmulator(demo_files / "erpnext.db", "contract-key", "contract-secret") as emulator:
        def source(secret="contract-secret"):
            client = ErpnextApiClient(HttpClient(emulator.url, timeout=3, max_retries=1, backoff_s=0.1),
                                      "contract-key", secret)
            api = ErpnextApi("erpnext_api", load_mapping(MAPPINGS / "erpnext_api.yaml"), client)
            api.page_size = 4  # several pages per stream, so that a failure can come between two
            return api

        yield Contract(open=source, open_with_bad_credentials=lambda: source("wrong"),
                       break_server=lambda: emulator.fail_with(503), mend_server=lambda: emulator.fail_with(None))


@pytest.fixture(params=["tryton_rpc", "tryton_rest", "tryton_postgres", "odoo_postgres", "odoo_rpc", "erpnext_mariadb",
                        "erpnext_api", "dolibarr_mariadb"])
def contract(request) -> Contract:
    return request.getfixturevalue(request.param)


def _read(source, entity: str, window=None, chunk_size: int = 50_000) -> pd.DataFrame:
    chunks = list(source.extract(entity, window, chunk_size))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


def test_connects_and_counts_every_stream(contract):
    counts = contract.open().check()
    assert set(counts) == set(contract.open().mapping.streams)
    assert all(n > 0 for n in counts.values()), counts


def test_every_stream_returns_canonical_rows(contract):
    source = contract.open()
    counts = source.check()
    for entity in source.mapping.streams:
        rows = _read(source, entity)
        fields = list(ENTITIES[entity].fields)
        assert list(rows.columns[:len(fields)]) == fields, entity
        assert len(rows) == counts[entity], entity
        assert rows["source_id"].notna().all() and rows["source_id"].is_unique, entity
        assert (rows["source_system"] == source.name).all()
        assert rows["updated_at"].notna().all() and str(rows["updated_at"].dt.tz) == "UTC", entity
        if entity in DOCUMENT_ENTITIES:
            assert rows["customer_source_id"].notna().all(), entity


def test_paging_ends_and_reads_every_row_once(contract):
    source = contract.open()
    whole = _read(source, "order")
    chunks = list(source.extract("order", None, 3))
    assert len(chunks) == -(-len(whole) // 3)
    paged = pd.concat(chunks, ignore_index=True)
    assert paged["source_id"].is_unique
    pd.testing.assert_frame_equal(paged, whole)


def test_window_selects_rows_by_last_change(contract):
    source = contract.open()
    rows = _read(source, "customer_record")
    stamps = rows["updated_at"].sort_values()
    cut = stamps.iloc[len(stamps) // 2]
    later = _read(source, "customer_record", Window(cut.to_pydatetime(), (stamps.iloc[-1] + pd.Timedelta(seconds=1)).to_pydatetime()))
    earlier = _read(source, "customer_record", Window(None, cut.to_pydatetime()))
    assert set(later["source_id"]) == set(rows.loc[rows["updated_at"] >= cut, "source_id"])
    assert set(earlier["source_id"]) == set(rows.loc[rows["updated_at"] < cut, "source_id"])
    assert 0 < len(later) < len(rows)


def test_a_window_maps_its_rows_as_a_full_read_does(contract):
    """Lookups included: an incremental window reads only the lookup rows its own rows point to (SQL sources), in
    small chunks here so that keys are fetched again and again; every field must come out as in a full read."""
    source = contract.open()
    for entity, stream in source.mapping.streams.items():
        whole = _read(source, entity)
        stamps = whole["updated_at"].sort_values()
        cut = stamps.iloc[len(stamps) // 2]
        window = Window(cut.to_pydatetime(), (stamps.iloc[-1] + pd.Timedelta(seconds=1)).to_pydatetime())
        part = _read(source, entity, window, chunk_size=7).set_index("source_id").sort_index()
        expected = whole.set_index("source_id").loc[part.index]
        assert len(part) > 0, entity
        pd.testing.assert_frame_equal(part, expected, obj=entity)


def test_rows_are_found_by_key(contract):
    source = contract.open()
    rows = _read(source, "invoice")
    wanted = sorted(rows["source_id"])[::2]
    found = pd.concat(list(source.extract_keys("invoice", wanted + ["999999999"])), ignore_index=True)
    assert sorted(found["source_id"]) == wanted


def test_bad_credentials_are_a_config_error(contract):
    with pytest.raises(ConfigError):
        contract.open_with_bad_credentials().check()


def test_server_failing_mid_extraction_is_transient_and_stages_nothing(contract, tmp_path):
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    source = contract.open()
    before = hub.write_staged("order", "run-1", source.name, source.extract("order", None, 50_000))
    assert before > 3

    def failing():
        for n, chunk in enumerate(source.extract("order", None, 2)):
            yield chunk
            if n == 0:
                contract.break_server()

    try:
        with pytest.raises(TransientError):
            hub.write_staged("order", "run-1", source.name, failing())
    finally:
        contract.mend_server()
    assert len(hub.read_staged("order", "run-1")) == before  # the earlier partition, untouched
