"""Tryton (8.x) through its REST API: `GET /<database>/rest/model/<model>` with a bearer application key.

Quirks handled here, once: fields are asked for one by one (`f=`), the domain and the order travel as
URL-safe base64 JSON (`d=`, `o=`), the context (active_test = false, so that inactive records are read as
the SQL source reads them) in an `X-Tryton-Context` header, and a page as an HTTP Range (`Range: records=0-500`,
answered with `Content-Range`). Dotted fields come back nested ({"currency": {"code": ..}}). A field the
key's user may not read is silently left out, so an answer without a requested field is a config error here;
an unknown model or field answers an HTML 500. There is no count: `_count` pages through ids.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from airflow.sdk import BaseHook

from connectors.api import ApiSource, Query
from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient
from connectors.mapping import SourceMapping
from connectors.tryton_rpc import _decode, _domain, _encode, _field
from erp2crm.errors import ConfigError, TransientError

COUNT_PAGE = 10_000  # ids per request when counting


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(_encode(value)).encode()).decode()


class TrytonRestClient:
    def __init__(self, http: HttpClient, database: str, key: str):
        self.http, self.database = http, database
        self.http.session.headers.update({"Authorization": f"bearer {key}",
                                          "X-Tryton-Context": _b64({"active_test": False})})
        self.calls = 0

    def search(self, model: str, fields: list[str], domain: list, order: list, limit: int) -> list[dict]:
        self.calls += 1
        params = [("f", name) for name in fields] + [("d", _b64(domain)), ("o", _b64(order))]
        try:
            response = self.http.request("GET", f"{self.database}/rest/model/{model}", params=params,
                                         headers={"Range": f"records=0-{limit}"})
        except TransientError as e:
            if "HTTP 500" in str(e) and "<html" in str(e).lower():  # Tryton's answer to an unknown model or field
                raise ConfigError(f"Tryton REST: unknown model {model!r} or one of its fields {', '.join(fields)} "
                                  f"(the server answered an HTML 500)") from None
            raise
        except ConfigError as e:
            if "HTTP 401" in str(e):
                raise ConfigError(f"Tryton database {self.database!r} at {self.http.base_url} refused the REST "
                                  f"key: check the connection's password (a validated 'rest' user application key)") from None
            raise
        return json.loads(response.text, object_hook=_decode)


class TrytonRestHook(BaseHook):
    """Connection: host (and port) of the Tryton server, schema = database, password = the key of a validated
    REST user application (Preferences → Applications); extra {"scheme": "https"} for TLS."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm Tryton REST"

    def __init__(self, conn_id: str = "tryton_rest_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> TrytonRestClient:
        conn = get_connection(self.conn_id)
        if not conn.host or not conn.schema or not conn.password:
            raise ConfigError(f"connection {self.conn_id!r}: needs host, schema (the Tryton database) and password "
                              f"(a REST application key)")
        return TrytonRestClient(HttpClient(base_url(conn, "http"), **http_options(conn)), conn.schema, conn.password)


class TrytonRest(ApiSource):
    """Keyset paging on the primary key, one HTTP Range per page; the window as in the JSON-RPC source."""

    def __init__(self, name: str, mapping: SourceMapping, client: TrytonRestClient, mapping_file: str = ""):
        super().__init__(name, mapping, mapping_file)
        self.client = client

    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        domain = _domain(query)
        if after is not None:
            domain.append([query.primary_key, ">", after])
        fields = list(query.fields)
        records = self._search(query, fields, domain, limit)
        missing = [name for name in fields if records and not _present(records[0], name)]
        if missing:
            raise ConfigError(f"{self.mapping_file}: model {query.table!r}: Tryton answered without field(s) "
                              f"{', '.join(missing)}: they do not exist, or the REST key's user may not read them")
        return [{name: _field(_dotted(record), name) for name in fields} for record in records]

    def _count(self, query: Query) -> int:
        count, after = 0, None
        while True:
            domain = _domain(query) + ([[query.primary_key, ">", after]] if after is not None else [])
            ids = self._search(query, [query.primary_key], domain, COUNT_PAGE)
            count += len(ids)
            if len(ids) < COUNT_PAGE:
                return count
            after = ids[-1][query.primary_key]

    def _search(self, query: Query, fields: list[str], domain: list, limit: int) -> list[dict]:
        try:
            return self.client.search(query.table, fields, domain, [[query.primary_key, "ASC"]], limit)
        except ConfigError as e:
            raise ConfigError(f"{self.mapping_file}: model {query.table!r}: {e}") from None


def _present(record: dict, name: str) -> bool:
    head, _, rest = name.partition(".")
    if head not in record:
        return False
    value = record[head]
    if not rest or value is None or value == []:
        return True
    first = value[0] if isinstance(value, list) else value
    return isinstance(first, dict) and _present(first, rest)


def _dotted(record: dict) -> dict:
    """REST nests a related record (or a list of them) under the field's own name; the JSON-RPC form, which
    `_field` reads, keys it "<field>."."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out[f"{key}."] = _dotted(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out[f"{key}."] = [_dotted(v) for v in value]
        else:
            out[key] = value
    return out
