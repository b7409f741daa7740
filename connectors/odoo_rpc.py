"""Odoo (16/17) through its external JSON-RPC API: `POST /jsonrpc`, common.authenticate for the user id, then
object.execute_kw(database, uid, password, model, method, args, kwargs) with search_read.

Quirks handled here, once: a refused login is not an error but a `false` uid; errors are an HTTP 200 whose
error.data.name is the Python exception's class path; every empty value is answered `false`, so a field's type
(fields_get, asked once per model) says whether `false` is a boolean or nothing; a many2one is [id, display
name]. Archived records are read too (context active_test = false), as the SQL source reads every row. Odoo
keeps timestamps in UTC and compares them as 'YYYY-MM-DD HH:MM:SS'.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pandas as pd
import requests
from airflow.sdk import BaseHook

from connectors.api import ApiSource, Query
from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient
from connectors.mapping import SourceMapping
from erp2crm.errors import ConfigError, Erp2CrmError, TransientError

# Exceptions that another attempt can get past: a lost or busy database, a serialisation failure between
# concurrent transactions. Matched in the exception's class path and message.
_TRANSIENT = ("OperationalError", "SerializationFailure", "concurren")
_READ_ALL = {"active_test": False}


class OdooRpcClient:
    def __init__(self, http: HttpClient, database: str, login: str, password: str):
        self.http, self.database, self.login = http, database, login
        self._password = password  # a password or an API key: Odoo accepts either here
        self.uid: int | None = None
        self.calls = 0
        self._types: dict[str, dict[str, str]] = {}

    def authenticate(self) -> int:
        if self.uid is None:
            uid = self._rpc("common", "authenticate", [self.database, self.login, self._password, {}])
            if not uid:
                raise ConfigError(f"Odoo at {self.http.base_url} refused the login of {self.login!r} to database "
                                  f"{self.database!r}: check the connection's login, password (or API key) and "
                                  f"schema (the database)")
            self.uid = uid
        return self.uid

    def execute_kw(self, model: str, method: str, args: list, kwargs: dict | None = None) -> Any:
        uid = self.authenticate()
        return self._rpc("object", "execute_kw", [self.database, uid, self._password, model, method, args,
                                                  kwargs or {}], f"{model}.{method}")

    def field_types(self, model: str) -> dict[str, str]:
        """field → Odoo type ("boolean", "many2one", ...), asked once per model."""
        if model not in self._types:
            fields = self.execute_kw(model, "fields_get", [], {"attributes": ["type"]})
            self._types[model] = {name: spec.get("type") for name, spec in fields.items()}
        return self._types[model]

    def _rpc(self, service: str, method: str, args: list, what: str = "") -> Any:
        self.calls += 1
        payload = {"jsonrpc": "2.0", "method": "call", "id": self.calls,
                   "params": {"service": service, "method": method, "args": args}}
        response = self.http.request("POST", "jsonrpc", json=payload)
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"Odoo {what or method}: the answer is not JSON: {response.text[:200]}") from None
        if body.get("error"):
            raise _classify(what or f"{service}.{method}", body["error"])
        return body.get("result")


def _classify(what: str, error: dict) -> Erp2CrmError:
    data = error.get("data") or {}
    name, message = str(data.get("name") or ""), str(data.get("message") or error.get("message") or error)
    detail = f"Odoo {what}: {name.rsplit('.', 1)[-1] or 'error'}: {message}"
    if "database" in message and "does not exist" in message:  # an OperationalError no retry can mend
        return ConfigError(f"{detail} (check the connection's schema, the Odoo database)")
    if name.endswith(("AccessDenied", "AccessError")):
        return ConfigError(f"{detail} (the connection's login and password, or the user's access rights)")
    if any(mark.lower() in f"{name} {message}".lower() for mark in _TRANSIENT):
        return TransientError(detail)
    if name == "builtins.KeyError":  # the registry has no such model
        return ConfigError(f"Odoo {what}: unknown model {message}")
    if name == "builtins.ValueError" and "Invalid field" in message:
        return ConfigError(f"Odoo {what}: unknown field: {message}")
    return ConfigError(detail)  # a wrong domain, method or argument: the mapping or the connector, not luck


class OdooRpcHook(BaseHook):
    """Connection: host (and port) of the Odoo server, schema = database, login and password (or an API key)
    of a user allowed to read the mapped models; extra {"scheme": "https"} for TLS."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm Odoo JSON-RPC"

    def __init__(self, conn_id: str = "odoo_rpc_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> OdooRpcClient:
        conn = get_connection(self.conn_id)
        if not conn.host or not conn.schema or not conn.login:
            raise ConfigError(f"connection {self.conn_id!r}: needs host, schema (the Odoo database) and login")
        return OdooRpcClient(HttpClient(base_url(conn, "http"), **http_options(conn)), conn.schema, conn.login, conn.password or "")


class OdooRpc(ApiSource):
    """Keyset paging on the primary key; the window as a domain on the first non-null update field."""

    # Pages of 1,000 records: a few hundred KB of JSON, well inside the HTTP timeout, and a tenth of the calls
    # of Odoo's own 80-record web pages.
    page_size = 1000

    def __init__(self, name: str, mapping: SourceMapping, client: OdooRpcClient, mapping_file: str = ""):
        super().__init__(name, mapping, mapping_file)
        self.client = client

    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        domain = self._domain(query)
        if after is not None:
            domain.append([query.primary_key, ">", after])
        fields = list(query.fields)
        with self._about(query.table):
            types = self.client.field_types(query.table)
            records = self.client.execute_kw(query.table, "search_read", [domain], {
                "fields": fields, "limit": limit, "order": f"{query.primary_key} asc", "context": _READ_ALL})
        return [{name: _plain(record.get(name, False), types.get(name)) for name in fields} for record in records]

    def _count(self, query: Query) -> int:
        with self._about(query.table):
            return self.client.execute_kw(query.table, "search_count", [self._domain(query)], {"context": _READ_ALL})

    @contextmanager
    def _about(self, model: str):
        """Errors about a model or field name the mapping file that names it."""
        self.client.authenticate()  # a refused login is the connection's fault, not the mapping's
        try:
            yield
        except ConfigError as e:
            raise ConfigError(f"{self.mapping_file}: model {model!r}: {e}") from None
        except requests.RequestException as e:  # pragma: no cover (HttpClient classifies these)
            raise TransientError(str(e)) from None

    @staticmethod
    def _domain(query: Query) -> list:
        domain: list = [[field, "in", values] for field, values in query.where.items()]
        domain += [[field, "!=", False] for field in query.present]
        domain += [[field, "=", False] for field in query.absent]
        if query.keys is not None:
            domain.append([query.primary_key, "in", list(query.keys)])
        if query.window is not None:
            domain += _changed_in(list(query.updated), query.window)
        return domain


def _changed_in(updated: list[str], window) -> list:
    """coalesce(updated...) in [start, end) as Odoo's prefix notation: an OR ('|') of one branch per field,
    each an AND ('&') of "the earlier fields are empty, this one is set and in the window"."""
    start = None if window.start is None else _odoo_datetime(window.start)
    end = _odoo_datetime(window.end)
    branches = []
    for i, field in enumerate(updated):
        terms: list = [[earlier, "=", False] for earlier in updated[:i]]
        terms += [[field, "!=", False], [field, "<", end]]
        if start is not None:
            terms.append([field, ">=", start])
        branches.append(["&"] * (len(terms) - 1) + terms)
    return ["|"] * (len(branches) - 1) + [token for branch in branches for token in branch]


def _odoo_datetime(moment) -> str:
    """A window bound as Odoo writes datetimes: UTC, whole seconds (as the SQL source bounds text columns)."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def _plain(value: Any, kind: str | None) -> Any:
    """Odoo's answer as the SQL source would read the column: false is empty unless the field is a boolean,
    a many2one [id, name] is its id."""
    if kind == "boolean":
        return value
    if value is False:
        return None
    if kind == "many2one" and isinstance(value, list):
        return value[0] if value else None
    return value
