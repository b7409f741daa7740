"""ERPNext (v14/15) through Frappe's REST API: `GET /api/resource/<DocType>` and `frappe.client.get_count`.

Quirks handled here, once: the `Authorization: token <key>:<secret>` header; query arguments sent as JSON in the
query string; errors as Frappe's JSON body with an HTTP status, where an unknown field is MariaDB's "Unknown column"
(417 or 500) and a field the key's user may not read is left out of the answer; names (keys) are text, also when
they look like numbers ("000000012"); the window compared with the site's wall-clock time.
"""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pandas as pd
import requests
from airflow.sdk import BaseHook

from connectors.api import ApiSource, Query
from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient, default_classify
from connectors.mapping import SourceMapping
from erp2crm.errors import ConfigError, Erp2CrmError, TransientError

_UNKNOWN_COLUMN = re.compile(r"Unknown column '([^']+)'")


def _server_message(response: requests.Response) -> str:
    """What Frappe says went wrong: the exception line of its JSON error body, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        body = body.get("exception") or body.get("exc_type") or body
    return str(body)[:300]


def classify(response: requests.Response) -> Erp2CrmError | None:
    status = response.status_code
    if status < 400:
        return None
    said = f"HTTP {status}: {_server_message(response)}"
    unknown = _UNKNOWN_COLUMN.search(response.text)
    if unknown and status in (417, 500):  # a wrong mapping, whatever status the site gives it: never retried
        return ConfigError(f"ERPNext has no field {unknown[1].rsplit('.', 1)[-1]!r} ({said})")
    if status in (401, 403):
        return ConfigError(f"ERPNext refused the API key/secret, or their user may not read this DocType ({said}): "
                           f"check the connection's login (API key) and password (API secret)")
    if status == 404:
        return ConfigError(f"unknown DocType, or no Frappe site at this URL ({said})")
    if status == 417:  # Frappe's ValidationError: the query itself was refused
        return ConfigError(f"ERPNext refused the query ({said})")
    return default_classify(response)


class ErpnextApiClient:
    """The site's listing and counting calls, through `http` (whose error classification this client sets)."""

    def __init__(self, http: HttpClient, api_key: str, api_secret: str):
        self.http = http
        self.http.classify = classify
        self.http.session.headers["Authorization"] = f"token {api_key}:{api_secret}"
        self.calls = 0

    def get_list(self, doctype: str, fields: list[str], filters: list, order_by: str, limit: int) -> list[dict]:
        params = {"fields": json.dumps(fields), "filters": json.dumps(filters), "order_by": order_by,
                  "limit_start": 0, "limit_page_length": limit}
        return self._get(f"api/resource/{quote(doctype, safe='')}", params)["data"]

    def get_count(self, doctype: str, filters: list) -> int:
        return int(self._get("api/method/frappe.client.get_count",
                             {"doctype": doctype, "filters": json.dumps(filters)})["message"])

    def _get(self, path: str, params: dict) -> dict:
        self.calls += 1
        response = self.http.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"ERPNext {path}: the answer is not JSON: {response.text[:200]}") from None


class ErpnextApiHook(BaseHook):
    """Connection: host (and port) of the ERPNext site, login = API key, password = API secret of a user allowed
    to read the mapped DocTypes; extra {"scheme": "https"} for TLS."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm ERPNext REST API"

    def __init__(self, conn_id: str = "erpnext_api_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> ErpnextApiClient:
        conn = get_connection(self.conn_id)
        if not conn.host or not conn.login or not conn.password:
            raise ConfigError(f"connection {self.conn_id!r}: needs host, login (the API key) and password (the API secret)")
        return ErpnextApiClient(HttpClient(base_url(conn, "http"), **http_options(conn)), conn.login, conn.password)


class ErpnextApi(ApiSource):
    """Keyset paging on the primary key (`name`), in the site's order: a page shorter than asked is the last, so
    `page_size` must not exceed a cap a proxy or app puts on limit_page_length (Frappe has none of its own). The
    window compares the first update column only (see _filters)."""

    def __init__(self, name: str, mapping: SourceMapping, client: ErpnextApiClient, mapping_file: str = ""):
        super().__init__(name, mapping, mapping_file)
        self.client = client

    lookup_key = "name"  # DocTypes are keyed by name, not id
    keys_per_call = 100  # names travel in the URL: 100 keep it well below a proxy's 8 KB request-line limit

    @staticmethod
    def _typed_key(key: str) -> str:
        return str(key)  # names are text: "000000012" is not the number 12

    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        filters = self._filters(query)
        if after is not None:
            filters.append([query.primary_key, ">", after])
        fields = list(query.fields)
        records = self._call(query, lambda: self.client.get_list(query.table, fields, filters,
                                                                 f"{query.primary_key} asc", limit))
        missing = [f for f in fields if records and f not in records[0]]
        if missing:  # Frappe leaves out fields above the user's permission level instead of refusing them
            raise ConfigError(f"{self.mapping_file}: DocType {query.table!r}: ERPNext answered without field(s) "
                              f"{', '.join(missing)}: give the API key's user read access to them")
        return [{name: record.get(name) for name in fields} for record in records]

    def _count(self, query: Query) -> int:
        return self._call(query, lambda: self.client.get_count(query.table, self._filters(query)))

    def _call(self, query: Query, request):
        try:
            return request()
        except ConfigError as e:
            raise ConfigError(f"{self.mapping_file}: DocType {query.table!r}: {e}") from None

    def _filters(self, query: Query) -> list:
        filters: list = [[column, "in", values] for column, values in query.where.items()]
        # Frappe's "is set" also leaves out empty text, where the SQL source's IS NOT NULL keeps it.
        filters += [[column, "is", "set"] for column in query.present]
        filters += [[column, "is", "not set"] for column in query.absent]
        if query.keys is not None:
            filters.append([query.primary_key, "in", list(query.keys)])
        if query.window is not None:
            # Only the first update column: Frappe's filters cannot say coalesce(modified, creation), and ERPNext
            # sets `modified` on every insert and save, so that the first non-null of the two is always `modified`.
            changed = query.updated[0]
            if query.window.start is not None:
                filters.append([changed, ">=", self._bound(query.window.start)])
            filters.append([changed, "<", self._bound(query.window.end)])
        return filters

    def _bound(self, moment) -> str:
        """A UTC window bound as the site's wall-clock time, to the microsecond as Frappe stores it."""
        stamp = pd.Timestamp(moment)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return stamp.tz_convert(self.mapping.source_timezone).strftime("%Y-%m-%d %H:%M:%S.%f")
