"""Tryton (8.x) through its JSON-RPC API: `POST /<database>/rpc/`, `model.<model>.search_read`.

Quirks handled here, once: a session login whose token goes in an `Authorization: Session` header (and
is renewed once when the server answers 401 to an expired session); typed values sent as
{"__class__": "Decimal" | "date" | "datetime", ...}; dotted field names answered under "<field>." as a
related record (or a list of them); errors as a 200 with an `error` list, where an unknown model or field
is a bare quoted name. Inactive records are read too (context active_test = false), as the SQL source does.
"""
from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

import requests
from airflow.sdk import BaseHook

from connectors.api import ApiSource, Query
from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient
from connectors.mapping import SourceMapping
from erp2crm.errors import ConfigError, TransientError

# Tryton exceptions that another attempt can get past; any other error is a config error (wrong model,
# field or access right), never retried.
_TRANSIENT = {"ConcurrencyException", "DatabaseOperationalError", "RateLimitException", "TimeoutException"}


class TrytonRpcClient:
    def __init__(self, http: HttpClient, database: str, login: str, password: str):
        self.http, self.database, self.login = http, database, login
        self._password = password
        self._session: str | None = None
        self.calls = 0

    def call(self, method: str, params: list) -> Any:
        if self._session is None:
            self._login()
        try:
            return self._post(method, params)
        except ConfigError as e:
            if "HTTP 401" not in str(e):
                raise
            self._login()  # the session expired (or the server restarted): once, then give up
            return self._post(method, params)

    def _login(self) -> None:
        self.http.session.headers.pop("Authorization", None)
        try:
            user_id, session = self._post("common.db.login", [self.login, {"password": self._password}, "en"])[:2]
        except ConfigError as e:
            raise ConfigError(f"Tryton database {self.database!r} at {self.http.base_url} refused the login of "
                              f"user {self.login!r}: check the connection's login, password and schema "
                              f"(database) ({str(e).split(':')[0]})") from None
        token = base64.b64encode(f"{self.login}:{user_id}:{session}".encode()).decode()
        self.http.session.headers["Authorization"] = f"Session {token}"
        self._session = session

    def _post(self, method: str, params: list) -> Any:
        self.calls += 1
        response = self.http.request("POST", f"{self.database}/rpc/", json={"id": self.calls, "method": method,
                                                                             "params": _encode(params)})
        try:
            body = response.json(object_hook=_decode)
        except ValueError:
            raise TransientError(f"Tryton {method}: the answer is not JSON: {response.text[:200]}") from None
        error = body.get("error")
        if error:
            name = str(error[0]) if isinstance(error, list) and error else str(error)
            detail = f"Tryton {method}: {name} {error[1] if isinstance(error, list) and len(error) > 1 else ''}".strip()
            if name in _TRANSIENT:
                raise TransientError(detail)
            if name.startswith("'") and name.endswith("'"):  # a KeyError: no such model or field
                raise ConfigError(f"Tryton {method}: unknown model or field {name}")
            raise ConfigError(detail)
        return body.get("result")


def _decode(value: dict) -> Any:
    kind = value.get("__class__")
    if kind == "Decimal":
        return float(Decimal(value["decimal"]))
    if kind == "date":
        return dt.date(value["year"], value["month"], value["day"])
    if kind == "datetime":  # Tryton keeps timestamps in UTC, without an offset
        return dt.datetime(value["year"], value["month"], value["day"], value["hour"], value["minute"],
                           value["second"], value.get("microsecond", 0))
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
                "hour": value.hour, "minute": value.minute, "second": value.second, "microsecond": value.microsecond}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


class TrytonRpcHook(BaseHook):
    """Connection: host (and port) of the Tryton server, schema = database, login and password of a user
    allowed to read the mapped models; extra {"scheme": "https"} for TLS."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm Tryton JSON-RPC"

    def __init__(self, conn_id: str = "tryton_rpc_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> TrytonRpcClient:
        conn = get_connection(self.conn_id)
        if not conn.host or not conn.schema or not conn.login:
            raise ConfigError(f"connection {self.conn_id!r}: needs host, schema (the Tryton database) and login")
        return TrytonRpcClient(HttpClient(base_url(conn, "http"), **http_options(conn)), conn.schema, conn.login, conn.password or "")


class TrytonRpc(ApiSource):
    """Keyset paging on the primary key; the window as a domain on the first non-null update field."""

    def __init__(self, name: str, mapping: SourceMapping, client: TrytonRpcClient, mapping_file: str = ""):
        super().__init__(name, mapping, mapping_file)
        self.client = client

    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        domain = _domain(query)
        if after is not None:
            domain.append([query.primary_key, ">", after])
        fields = list(query.fields)
        records = self._call(query, "search_read", [domain, 0, limit, [[query.primary_key, "ASC"]], fields])
        return [{name: _field(record, name) for name in fields} for record in records]

    def _count(self, query: Query) -> int:
        return self._call(query, "search_count", [_domain(query)])

    def _call(self, query: Query, method: str, params: list) -> Any:
        try:
            return self.client.call(f"model.{query.table}.{method}", [*params, {"active_test": False}])
        except ConfigError as e:
            if "HTTP 403" in str(e):  # Tryton answers a model it does not expose over RPC with an HTML 403
                raise ConfigError(f"{self.mapping_file}: model {query.table!r} is not readable through Tryton's "
                                  f"API (HTTP 403); read it through a field of an exposed model instead") from None
            raise ConfigError(f"{self.mapping_file}: model {query.table!r}: {e}") from None
        except requests.RequestException as e:  # pragma: no cover (HttpClient classifies these)
            raise TransientError(str(e)) from None



def _domain(query: Query) -> list:
    """A query's filters as a Tryton domain (shared with the REST source)."""
    domain: list = [[column, "in", values] for column, values in query.where.items()]
    domain += [[column, "!=", None] for column in query.present]
    domain += [[column, "=", None] for column in query.absent]
    if query.keys is not None:
        domain.append([query.primary_key, "in", list(query.keys)])
    if query.window is not None:
        domain.append(_changed_in(list(query.updated), query.window))
    return domain


def _changed_in(updated: list[str], window) -> list:
    """coalesce(updated...) in [start, end) as a Tryton domain: the first field set decides."""
    start = None if window.start is None else _utc_naive(window.start)
    end = _utc_naive(window.end)
    branches: list = ["OR"]
    for i, column in enumerate(updated):
        clause: list = [[earlier, "=", None] for earlier in updated[:i]]
        clause += [[column, "!=", None], [column, "<", end]]
        if start is not None:
            clause.append([column, ">=", start])
        branches.append(clause)
    return branches


def _utc_naive(moment) -> dt.datetime:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).to_pydatetime()


def _field(record: dict, name: str) -> Any:
    """A plain or dotted field's value: a dotted one comes back as the related record ("party." → {...}),
    or a list of them for a one2many, of which the first (lowest id) is taken."""
    if "." not in name:
        return record.get(name)
    head, rest = name.split(".", 1)
    related = record.get(head + ".")
    if isinstance(related, list):
        related = min(related, key=lambda r: r.get("id", 0)) if related else None
    return None if related is None else _field(related, rest)
