"""A local ERPNext (v15) REST server over a SQLite file in the demo's ERPNext schema (`tab<DocType>` tables keyed
by `name`): the listing and counting a source reads with, token auth, and fault injection. Standard library only.

Where the answers come from:
- Frappe docs, "REST API" and "Listing documents": `Authorization: token <api_key>:<api_secret>`;
  `GET /api/resource/<DocType>` answers {"data": [{...}, ...]}, only `name` unless `fields` (a JSON list) asks for
  more; `filters` and `or_filters` are JSON lists of [field, operator, value] or [doctype, field, operator, value];
  `order_by`; `limit_start`; `limit_page_length`, 20 by default.
- Frappe v15 frappe/api/v1.py (document_list): `limit` is read when `limit_page_length` is absent; the order
  defaults to the DocType's sort order (`modified desc`). A whitelisted method's result comes under "message", so
  `GET /api/method/frappe.client.get_count?doctype=&filters=` answers {"message": N}.
- Frappe frappe/model/db_query.py (prepare_filter_condition): a condition compares ifnull(field, fallback) ('' for
  text, 0 for numbers, 0001-01-01... for dates), except `=` and `like` with a non-empty value; `is` takes "set"
  (ifnull(field, '') != '') or "not set"; `in` takes a list or a comma-separated string.
- Frappe frappe/utils/response.py (json_handler): dates and datetimes are sent as str(value) — "YYYY-MM-DD" and
  "YYYY-MM-DD HH:MM:SS.ffffff" (without the fraction when it is zero), the site's wall-clock time without an
  offset; numbers as JSON numbers.
- Frappe frappe/exceptions.py: AuthenticationError is HTTP 401, DoesNotExistError 404 ("DocType X not found"),
  ValidationError 417; an error body carries `exc_type`, `exception` and, for a message raised with frappe.throw,
  `_server_messages` (a JSON list of JSON-encoded {"message": ...}).
- MariaDB error 1054 as Frappe tracebacks show it: "Unknown column 'tabCustomer.x' in 'field list'" (or 'where
  clause', 'order clause'), raised as pymysql.err.OperationalError.

Emulator choices: a request without credentials is a 401 too (Frappe reads it as the Guest user, who is refused
with a 403 PermissionError); the wording of every message; an unknown column is answered 417 (a real site may answer
this unhandled database error 500, or leave a field its user may not read out of the answer); child DocTypes (Sales
Order Item, Payment Entry Reference) are listed like any other (Frappe needs a `parent` argument and read permission
on the parent); page lengths are capped at `max_page_length` (Frappe has no cap of its own: this is a proxy's or an
app's); no tracebacks (`exc`); operators =, !=, <, <=, >, >=, like, not like, in, not in, is; plain field names and
"*" only (no dotted, child-table or aggregate fields); a column's type (Int, Float, Date, Datetime, Data) comes from
its SQLite type, and for text columns from their values.
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import re
import sqlite3
import sys
import threading
from contextlib import closing
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from emulators._server import LocalServer, serve_until_signalled

DEFAULT_PAGE_LENGTH = 20
DEFAULT_ORDER = "modified desc"
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "like", "not like", "in", "not in", "is")
FALLBACK = {"Data": "", "Int": 0, "Float": 0.0, "Date": "0001-01-01", "Datetime": "0001-01-01 00:00:00.000000"}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ORDER_TERM = re.compile(r"^\s*(?:`?tab[^`.]+`?\.)?`?(\w+)`?(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
RESOURCE = re.compile(r"^/api/resource/([^/]+)/?$")
STANDARD_DATETIMES = ("creation", "modified")  # Frappe sets both on every document


class _Refusal(Exception):
    """An error answer: HTTP status, Frappe exception type and message."""

    def __init__(self, status: int, exc_type: str, message: str, module: str = "frappe.exceptions"):
        super().__init__(message)
        self.status, self.exc_type, self.message, self.module = status, exc_type, message, module

    def body(self) -> dict:
        body = {"exc_type": self.exc_type, "exception": f"{self.module}.{self.exc_type}: {self.message}"}
        if self.module == "frappe.exceptions":  # raised with frappe.throw: the message is shown to the user too
            body["_server_messages"] = json.dumps([json.dumps({"message": self.message, "indicator": "red",
                                                               "raise_exception": 1})])
        return body


def _unknown_column(doctype: str, field: str, clause: str) -> _Refusal:
    return _Refusal(417, "OperationalError", f"(1054, \"Unknown column 'tab{doctype}.{field}' in '{clause}'\")",
                    module="pymysql.err")


def _invalid(message: str) -> _Refusal:
    return _Refusal(417, "ValidationError", message)


def _as_datetime(value) -> str | None:
    """A stored datetime as one sortable text, so that "…:05" and "…:05.000000" compare as the same instant."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return str(value)


def _datetime_out(value):
    try:
        return str(datetime.fromisoformat(value)) if isinstance(value, str) else value
    except ValueError:
        return value


def _column_kind(conn: sqlite3.Connection, table: str, column: str, declared: str) -> str:
    declared = declared.upper()
    if "INT" in declared:
        return "Int"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return "Float"
    if column in STANDARD_DATETIMES:
        return "Datetime"
    sample = [v for (v,) in conn.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL LIMIT 1000')]
    if sample and all(isinstance(v, str) and DATETIME.match(v) for v in sample):
        return "Datetime"
    if sample and all(isinstance(v, str) and DATE.match(v) for v in sample):
        return "Date"
    return "Data"


def load_meta(db_path: Path) -> dict[str, dict[str, str]]:
    """DocType → {field: type} for every `tab<DocType>` table of the database."""
    meta: dict[str, dict[str, str]] = {}
    with closing(sqlite3.connect(db_path)) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tab%'")]
        for table in tables:
            columns = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            meta[table[3:]] = {c[1]: _column_kind(conn, table, c[1], c[2] or "") for c in columns}
    return meta


class ErpnextEmulator(LocalServer):
    thread_name = "erpnext-emulator"
    def __init__(self, db_path, api_key: str, api_secret: str, port: int = 0, host: str = "127.0.0.1",
                 max_page_length: int = 500):
        self.db_path = Path(db_path)
        self.api_key, self.api_secret, self.port, self.host = api_key, api_secret, port, host
        self.max_page_length = max_page_length
        self.requests_served = 0
        self.meta: dict[str, dict[str, str]] = {}
        self._fault: tuple[int, int | None] | None = None
        self._lock = threading.Lock()

    # -- lifecycle (the rest: emulators._server.LocalServer) ----------------------------------------
    def _before_start(self) -> None:
        if not self.db_path.is_file():
            raise FileNotFoundError(f"no ERPNext database at {self.db_path}")
        self.meta = load_meta(self.db_path)

    def fail_with(self, status: int | None, retry_after: int | None = None) -> None:
        """Answer every following request with `status` (and a Retry-After header), until called with None."""
        with self._lock:
            self._fault = None if status is None else (status, retry_after)

    # -- requests ---------------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, authorization: str) -> tuple[int, object, dict]:
        """Answer one request: (status, JSON body, extra headers). The HTTP handler's only entry point."""
        with self._lock:
            self.requests_served += 1
            fault = self._fault
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, {"exc_type": "InjectedFailure", "exception": f"emulator: injected HTTP {status}"}, headers
        split = urlsplit(target)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            self._authenticate(authorization)
            if method != "GET":
                raise _Refusal(405, "ValidationError", f"emulator: {method} is not served, only GET (read-only)")
            if m := RESOURCE.match(split.path):
                return 200, {"data": self._list(unquote(m[1]), params)}, {}
            if split.path.rstrip("/") == "/api/method/frappe.client.get_count":
                return 200, {"message": self._count(params.get("doctype", ""), params)}, {}
            raise _Refusal(404, "DoesNotExistError", f"emulator: {split.path} is not served")
        except _Refusal as refusal:
            return refusal.status, refusal.body(), {}

    def _authenticate(self, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        key, _, secret = token.strip().partition(":")
        if not (scheme.lower() == "token" and hmac.compare_digest(key, self.api_key)
                and hmac.compare_digest(secret, self.api_secret)):
            raise _Refusal(401, "AuthenticationError", "Invalid API key or secret")

    def _fields(self, doctype: str, clause: str, names) -> dict[str, str]:
        if doctype not in self.meta:
            raise _Refusal(404, "DoesNotExistError", f"DocType {doctype} not found")
        known = self.meta[doctype]
        for name in names:
            if not isinstance(name, str) or name not in known:
                raise _unknown_column(doctype, str(name), clause)
        return known

    def _list(self, doctype: str, params: dict) -> list[dict]:
        fields = _json(params, "fields", ["name"])
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise _invalid("fields must be a JSON list of field names")
        known = self._fields(doctype, "field list", [])
        fields = list(known) if fields == ["*"] else fields
        self._fields(doctype, "field list", fields)
        where, values = self._where(doctype, params)
        order = self._order(doctype, params.get("order_by") or DEFAULT_ORDER)
        length = _int(params.get("limit_page_length") or params.get("limit") or DEFAULT_PAGE_LENGTH, "limit_page_length")
        length = self.max_page_length if length <= 0 else min(length, self.max_page_length)  # 0: Frappe's "all"
        columns = ", ".join(f'"{f}"' for f in fields)
        sql = f'SELECT {columns} FROM "tab{doctype}" WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?'
        rows = self._query(sql, [*values, length, max(0, _int(params.get("limit_start") or 0, "limit_start"))])
        kinds = [known[f] for f in fields]
        return [{f: _datetime_out(v) if kind == "Datetime" else v for f, kind, v in zip(fields, kinds, row)}
                for row in rows]

    def _count(self, doctype: str, params: dict) -> int:
        self._fields(doctype, "where clause", [])
        where, values = self._where(doctype, params, ("filters",))  # get_count takes no or_filters: Frappe drops them
        return self._query(f'SELECT count(*) FROM "tab{doctype}" WHERE {where}', values)[0][0]

    def _query(self, sql: str, values: list) -> list[tuple]:
        # A connection per request: the file may be changed by others between requests (tests, the demo).
        with closing(sqlite3.connect(self.db_path, timeout=30)) as conn:
            conn.create_function("frappe_datetime", 1, _as_datetime, deterministic=True)
            return conn.execute(sql, values).fetchall()

    def _where(self, doctype: str, params: dict, names=("filters", "or_filters")) -> tuple[str, list]:
        clauses, values = ["1 = 1"], []
        for name in names:
            joiner = " OR " if name == "or_filters" else " AND "
            conditions = [self._condition(doctype, c) for c in _filter_list(_json(params, name, []), doctype)]
            if conditions:
                clauses.append("(" + joiner.join(sql for sql, _ in conditions) + ")")
                values += [v for _, vs in conditions for v in vs]
        return " AND ".join(clauses), values

    def _condition(self, doctype: str, condition: list) -> tuple[str, list]:
        field, operator, value = condition
        kind = self._fields(doctype, "where clause", [field])[field]
        operator = str(operator).strip().lower()
        column = f'frappe_datetime("{field}")' if kind == "Datetime" else f'"{field}"'
        if operator not in OPERATORS:
            raise _invalid(f"Operator must be one of {', '.join(OPERATORS)}")
        if operator == "is":
            if value not in ("set", "not set"):
                raise _invalid("Value for operator 'is' must be 'set' or 'not set'")
            return f"IFNULL({column}, '') {'!=' if value == 'set' else '='} ''", []
        if operator in ("in", "not in"):
            wanted = value.split(",") if isinstance(value, str) else list(value or [])
            wanted = [_typed(kind, v.strip() if isinstance(v, str) else v) for v in wanted] or [""]
            marks = ", ".join("?" * len(wanted))
            return f"IFNULL({column}, ?) {operator.upper()} ({marks})", [FALLBACK[kind], *wanted]
        if operator in ("=", "like") and value not in (None, ""):
            return f"{column} {operator.upper()} ?", [_typed(kind, value)]
        return f"IFNULL({column}, ?) {operator.upper()} ?", [FALLBACK[kind], _typed(kind, value)]

    def _order(self, doctype: str, order_by: str) -> str:
        terms = []
        for term in order_by.split(","):
            m = ORDER_TERM.match(term)
            if not m:
                raise _invalid(f"Invalid order_by: {order_by}")
            kind = self._fields(doctype, "order clause", [m[1]])[m[1]]
            column = f'frappe_datetime("{m[1]}")' if kind == "Datetime" else f'"{m[1]}"'
            terms.append(f"{column} {(m[2] or 'asc').upper()}")
        return ", ".join(terms)


def _json(params: dict, name: str, default):
    if name not in params or params[name] == "":
        return default
    try:
        return json.loads(params[name])
    except ValueError:
        raise _invalid(f"{name} is not valid JSON: {params[name][:100]}") from None


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be a whole number, not {value!r}") from None


def _filter_list(filters, doctype: str) -> list[list]:
    """[field, operator, value] triples from the list form (3 or 4 elements) or the {field: value} form."""
    if isinstance(filters, dict):
        return [[f, *(v if isinstance(v, list) and len(v) == 2 else ["=", v])] for f, v in filters.items()]
    if not isinstance(filters, list):
        raise _invalid("filters must be a JSON list or object")
    out = []
    for condition in filters:
        if isinstance(condition, list) and len(condition) == 4:
            if condition[0] != doctype:  # a child table's field: not served (emulator choice)
                raise _invalid(f"emulator: filters on another DocType ({condition[0]}) are not served")
            condition = condition[1:]
        if not isinstance(condition, list) or len(condition) != 3:
            raise _invalid(f"a filter must be [field, operator, value], not {condition!r}")
        out.append(condition)
    return out


def _typed(kind: str, value):
    """A filter value as the column's type, as MariaDB would convert it for the comparison."""
    if value is None:
        return FALLBACK[kind]
    try:
        if kind == "Int":
            return int(float(value))
        if kind == "Float":
            return float(value)
    except (TypeError, ValueError):
        return str(value)
    return _as_datetime(value) if kind == "Datetime" else str(value)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ErpnextEmulator/1.0"

    def log_message(self, format, *args) -> None:  # quiet: no per-request lines on stderr
        pass

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        if length.isdigit() and int(length) > 0:
            self.rfile.read(int(length))  # always read it, whatever the answer
        try:
            status, payload, headers = self.server.emulator.handle(self.command, self.path,
                                                                   self.headers.get("Authorization", ""))
        except Exception as e:  # an emulator bug: say so, as Frappe's own 500 does
            status, payload, headers = 500, {"exc_type": type(e).__name__, "exception": f"emulator error: {e!r}"}, {}
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


ErpnextEmulator.request_handler = _Handler  # set here: the handler is defined below the emulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulators.erpnext", description="Local ERPNext REST emulator.")
    p.add_argument("--db", type=Path, required=True, help="SQLite database in the demo's ERPNext schema (erpnext.db)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--api-key", help="API key clients must send (default: $ERPNEXT_EMULATOR_API_KEY, else demo-key)")
    p.add_argument("--api-secret", help="API secret (default: $ERPNEXT_EMULATOR_API_SECRET, else demo-secret; "
                                        "prefer the variable, a flag shows in the process list)")
    p.add_argument("--max-page-length", type=int, default=500, help="cap on limit_page_length (default 500)")
    args = p.parse_args(argv)
    key = args.api_key or os.environ.get("ERPNEXT_EMULATOR_API_KEY") or "demo-key"
    secret = args.api_secret or os.environ.get("ERPNEXT_EMULATOR_API_SECRET") or "demo-secret"
    def make() -> ErpnextEmulator:
        return ErpnextEmulator(args.db, key, secret, args.port, args.host, args.max_page_length)

    return serve_until_signalled(make, "erpnext", (OSError, sqlite3.Error))


if __name__ == "__main__":
    sys.exit(main())
