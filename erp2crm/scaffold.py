"""`erp2crm connector new NAME`: the files a new source needs, named by its one snake_case name.

SQL sources get a mapping and a test; API sources also get a connector module (client, hook, ApiSource
subclass). The test runs the shared contract suite and fails, saying what to do, until it is pointed at a
test server: a scaffold never passes by doing nothing.
"""
from __future__ import annotations

from pathlib import Path

from connectors.mapping import CONNECTOR_DIR, source_connectors
from erp2crm.config import SNAKE
from erp2crm.errors import ConfigError
from erp2crm.paths import ROOT

MAPPING = '''# {name}: {what} → canonical entities. Replace the example tables and columns with the ERP's own,
# then `erp2crm mapping check mappings/{name}.yaml`. Steps a field can take: README, "Adding a connector".
source: {name}
connector: {connector}
source_timezone: UTC        # the zone of the ERP's naive timestamps
default_phone_region: CN    # phones without a country code are read in this region
streams:
  customer_record:
    table: {customers}
    primary_key: id
    updated_at: [write_date, create_date]   # the first non-null is the row's last change
    fields:
      name: {{column: name, transform: strip}}
      email: email
      phone: phone
      is_active: {{column: active, transform: boolean}}
  order:
    table: {orders}
    primary_key: id
    updated_at: [write_date, create_date]
    fields:
      customer_source_id: customer_id
      order_number: number
      status: {{column: state, values: {{draft: draft, confirmed: confirmed, done: done, cancelled: cancelled}}}}
      ordered_at: order_date
      total_amount: total
      currency: {{column: currency, default: CNY}}
'''

MODULE = '''"""{title} through its API: what the API is and where its documentation lives.

Quirks handled here, once: (authentication, paging limits, how errors and typed values arrive).
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from connectors.api import ApiSource, Query
from connectors.hooks import base_url, get_connection
from connectors.http import HttpClient
from connectors.mapping import SourceMapping
from erp2crm.errors import ConfigError


class {cls}Client:
    """Owns the HTTP client and the credentials; raises ConfigError or TransientError, nothing else."""

    def __init__(self, http: HttpClient):
        self.http = http
        self.calls = 0

    def get(self, path: str, **params) -> Any:
        self.calls += 1
        return self.http.request("GET", path, params=params).json()


class {cls}Hook(BaseHook):
    """Connection {name}_default: host (and port), login and password of a user who may read the mapped objects."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm {title}"

    def __init__(self, conn_id: str = "{name}_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> {cls}Client:
        conn = get_connection(self.conn_id)
        if not conn.host:
            raise ConfigError(f"connection {{self.conn_id!r}}: needs host")
        return {cls}Client(HttpClient(base_url(conn), headers={{"Authorization": f"Bearer {{conn.password}}"}}))


class {cls}(ApiSource):
    def __init__(self, name: str, mapping: SourceMapping, client: {cls}Client, mapping_file: str = ""):
        super().__init__(name, mapping, mapping_file)
        self.client = client

    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        # Records of query.table with primary key > after, in key order, at most `limit`, keyed by query.fields;
        # filtered by query.where, query.present, query.keys and query.window (see connectors/tryton_rpc.py).
        raise NotImplementedError("{name}: read one page of records from the API")

    def _count(self, query: Query) -> int:
        raise NotImplementedError("{name}: count the records of a query")
'''

TEST = '''"""The shared source contract (tests/test_source_contract.py), run against {name}."""
from __future__ import annotations

import pytest

from test_source_contract import (  # noqa: F401 (collected here, with this module's `contract` fixture)
    Contract,
    test_bad_credentials_are_a_config_error,
    test_connects_and_counts_every_stream,
    test_every_stream_returns_canonical_rows,
    test_paging_ends_and_reads_every_row_once,
    test_rows_are_found_by_key,
    test_server_failing_mid_extraction_is_transient_and_stages_nothing,
    test_window_selects_rows_by_last_change,
)


@pytest.fixture
def contract() -> Contract:
    # Start a test server for {name} (a real one, or an emulator that follows the API's documented wire
    # format), then return Contract(open=..., open_with_bad_credentials=..., break_server=..., mend_server=...).
    # The fixtures in tests/test_source_contract.py are worked examples.
    pytest.fail("{name}: connect the contract suite to a test server (tests/test_{name}.py)")
'''


def new_connector(name: str, api: bool, root: Path | None = None) -> list[Path]:
    """Write the scaffold's files under `root` and return them; refuses a bad or taken name."""
    if not SNAKE.match(name):
        raise ConfigError(f"connector name {name!r} must be snake_case: it names the module, class, mapping, "
                          f"conn_id and tests")
    if name in source_connectors() or (CONNECTOR_DIR / f"{name}.py").exists():
        raise ConfigError(f"connector name {name!r} is taken")
    root = root or ROOT
    title = " ".join(part.capitalize() for part in name.split("_"))
    files = {root / "mappings" / f"{name}.yaml": MAPPING.format(
        name=name, what=f"{title} API" if api else f"{title} database", connector=name if api else "sql",
        customers="res.partner" if api else "customers", orders="sale.order" if api else "orders"),
        root / "tests" / f"test_{name}.py": TEST.format(name=name)}
    if api:
        files[root / "connectors" / f"{name}.py"] = MODULE.format(
            name=name, title=title, cls="".join(part.capitalize() for part in name.split("_")))
    taken = [str(p.relative_to(root)) for p in files if p.exists()]
    if taken:
        raise ConfigError(f"not overwriting {', '.join(taken)}")
    for path, text in files.items():
        path.write_text(text)
    return list(files)
