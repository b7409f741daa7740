"""A local Odoo (17) external-API server over a SQLite file in the demo's Odoo schema (demodata/odoo.py):
`POST /jsonrpc`, services `common` (authenticate, login, version) and `object` (execute_kw with search_read,
search_count, search, read, fields_get). The demo's Odoo API source and a test double. Standard library only.

Where the answers come from:
- Odoo's "External API" documentation (Web Services): the call shapes; authenticate answers the user id, or
  false for a wrong login or password; execute_kw(db, uid, password, model, method, args, kwargs); domains in
  prefix notation ('&', '|', '!', implicit AND); search_read's fields/offset/limit/order; fields_get.
- Odoo 17's code, as recalled (Many2one.convert_to_read checked in fields.py): read answers false for an empty
  value, a many2one as [id, display_name], datetimes as "YYYY-MM-DD HH:MM:SS" in UTC, dates as "YYYY-MM-DD".
  JSON-RPC errors are an HTTP 200 with error {code: 200, message: "Odoo Server Error", data: {name:
  "<module>.<class>", message, debug, arguments, context}} (http.serialize_exception); a wrong
  uid/password is AccessDenied "Access Denied"; an unknown model the registry's KeyError ('no.model'); an
  unknown field a ValueError ("Invalid field 'x' on model 'res.partner'" from read, "Invalid field
  res.partner.x in leaf ..." from a domain); a database that does not exist fails to open
  (psycopg2.OperationalError). Domains (osv/expression.py): `!=` and `not in` match
  empty values too, `= False` is IS NULL, '!' negates each leaf's operator; active_test (context, default
  true) hides records whose `active` is false unless the domain names `active`.
Emulator choices (the demo file has no ORM metadata, so field types are read off its SQLite schema):
- model res.partner is table res_partner (dots → underscores); fields are the table's columns; one user
  (uid 2, as Odoo's admin); a column with a REFERENCES clause is a many2one, an INTEGER column named
  `active` or `is_*` a boolean, a TEXT column whose name holds "date" a date if its first value is 10
  characters long, else a datetime; TEXT is char, REAL float, other INTEGER integer.
- An empty integer or float is false (Odoo reads it as 0 / 0.0), so that the demo's empty ratings stay
  empty; a many2one to a missing record is [id, "<id>"] (Odoo answers false, but its foreign keys keep such
  rows out; the demo plants orphans on purpose). A stored value that is not a valid date passes as stored.
- Domains: the operators = != > >= < <= in, not in, with the prefix operators; no dotted paths; the
  default order is id (Odoo uses the model's _order).
- Fault injection: fail_with(status, retry_after) answers every request with that HTTP status.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import threading
import traceback
from contextlib import closing
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from emulators._server import LocalServer, serve_until_signalled

UID = 2
MODEL = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")
NEGATION = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "in": "not in", "not in": "in"}
METHODS = ("search_read", "search_count", "search", "read", "fields_get")


class OdooError(Exception):
    """An exception as Odoo serialises it: the Python class path and its message."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message


def _access_denied() -> OdooError:
    return OdooError("odoo.exceptions.AccessDenied", "Access Denied")


class OdooEmulator(LocalServer):
    thread_name = "odoo-emulator"
    def __init__(self, db_path, database: str, login: str, password: str, port: int = 0, host: str = "127.0.0.1"):
        self.db_path, self.database, self.login, self.password = Path(db_path), database, login, password
        self.port, self.host = port, host
        self.requests_served = 0
        self._failure: tuple[int, int | None] | None = None
        self._fields: dict[str, dict[str, dict]] = {}  # model → field → {"type", "relation"?}
        self._lock = threading.Lock()

    # -- lifecycle (the rest: emulators._server.LocalServer) ----------------------------------------
    def _before_start(self) -> None:
        if not self.db_path.exists():
            raise FileNotFoundError(f"{self.db_path}: no such database file")

    def fail_with(self, status: int | None, retry_after: int | None = None) -> None:
        """Answer every following request with HTTP `status` (and Retry-After), until called with None."""
        with self._lock:
            self._failure = None if status is None else (status, retry_after)

    # -- JSON-RPC ----------------------------------------------------------------------------------------------
    def handle(self, path: str, body: bytes) -> tuple[int, object, dict]:
        """Answer one request: (status, body, extra headers). The HTTP handler's only entry point."""
        with self._lock:
            self.requests_served += 1
            failure = self._failure
        if failure:
            status, retry_after = failure
            headers = {"Retry-After": str(retry_after)} if retry_after else {}
            return status, f"emulated failure: HTTP {status}", headers
        if path.rstrip("/") != "/jsonrpc":
            return 404, "Not Found: the requested URL was not found on the server.", {}
        try:
            request = json.loads(body or b"null")
            params = request["params"]
            if not isinstance(params, dict):
                raise TypeError("params is not an object")
        except (ValueError, TypeError, KeyError) as e:  # Odoo: werkzeug BadRequest "Invalid JSON data"
            return 400, f"Bad Request: Invalid JSON data: {e!r}", {}
        answer: dict = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            args = list(params.get("args") or [])
            answer["result"] = self._service(params.get("service"), params.get("method"), args)
        except OdooError as e:
            answer["error"] = _error(e.name, e.message, e)
        except Exception as e:  # noqa: BLE001 - what Odoo does with any exception: serialise it
            answer["error"] = _error(f"{type(e).__module__}.{type(e).__name__}", str(e), e)
        return 200, answer, {}

    def _service(self, service: str, method: str, args: list):
        if service == "common" and method == "version":
            return {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""], "protocol_version": 1}
        if service == "common" and method in ("authenticate", "login"):
            db, login, password = (args + [None] * 3)[:3]
            self._check_database(db)
            return UID if (login, password) == (self.login, self.password) else False
        if service == "object" and method == "execute_kw":
            db, uid, password, model, name, *rest = args + [None] * max(0, 5 - len(args))
            self._check_database(db)
            if uid != UID or password != self.password:
                raise _access_denied()
            return self._execute(model, name, list(rest[0] if rest else []), dict(rest[1] if len(rest) > 1 else {}))
        raise OdooError("builtins.NameError", f"Method not available {method}" if service in ("common", "object")
                        else f"{service!r} is not a known service")

    def _check_database(self, db) -> None:
        if db != self.database:
            raise OdooError("psycopg2.OperationalError", f'connection to server failed: FATAL:  database "{db}" '
                                                         f"does not exist")

    def _execute(self, model: str, method: str, args: list, kwargs: dict):
        fields = self.fields_of(model)
        context = kwargs.pop("context", None) or {}
        if method not in METHODS:
            raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")
        if method == "fields_get":
            allfields, attributes = _bind(args, kwargs, ("allfields", "attributes"))
            names = [f for f in (allfields or fields) if f in fields]
            return {f: {k: v for k, v in fields[f].items() if not attributes or k in attributes} for f in names}
        if method == "read":
            ids, wanted = _bind(args, kwargs, ("ids", "fields"))
            ids = [ids] if isinstance(ids, int) else list(ids or [])
            by_id = {r["id"]: r for r in self._select(model, [["id", "in", ids]], wanted, {"active_test": False})}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise OdooError("odoo.exceptions.MissingError", f"Record does not exist or has been deleted.\n"
                                                                f"(Record: {model}({missing[0]},), User: {UID})")
            return [by_id[i] for i in ids]
        domain, *rest = _bind(args, kwargs, {"search_read": ("domain", "fields", "offset", "limit", "order"),
                                             "search": ("domain", "offset", "limit", "order"),
                                             "search_count": ("domain", "limit")}[method])
        if method == "search_count":
            return len(self._select(model, domain, ["id"], context, limit=rest[0]))
        wanted, offset, limit, order = ([None] if method == "search" else []) + rest
        rows = self._select(model, domain, ["id"] if method == "search" else wanted, context, offset, limit, order)
        return [r["id"] for r in rows] if method == "search" else rows

    # -- the database --------------------------------------------------------------------------------------------
    def _connect(self):
        """A connection per request (requests are served on threads), closed after it."""
        return closing(sqlite3.connect(self.db_path, timeout=30))

    def fields_of(self, model) -> dict[str, dict]:
        """The model's fields and their Odoo types, read off its table (see the module docstring)."""
        if not isinstance(model, str) or not MODEL.match(model):
            raise OdooError("builtins.KeyError", repr(model))
        if model not in self._fields:
            table = model.replace(".", "_")
            with self._connect() as conn:
                columns = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
                if not columns:
                    raise OdooError("builtins.KeyError", repr(model))
                relations = {fk[3]: fk[2] for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")')}
                fields = {}
                for _, name, declared, *_ in columns:
                    kind = {"REAL": "float", "TEXT": "char"}.get(declared.upper(), "integer")
                    if name in relations:
                        fields[name] = {"type": "many2one", "relation": relations[name].replace("_", ".")}
                        continue
                    if kind == "integer" and (name == "active" or name.startswith("is_")):
                        kind = "boolean"
                    elif kind == "char" and "date" in name:
                        first = conn.execute(f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL '
                                             f"LIMIT 1").fetchone()
                        kind = "date" if first and len(str(first[0])) == 10 else "datetime"
                    fields[name] = {"type": kind}
            self._fields[model] = {f: {**spec, "string": f} for f, spec in fields.items()}
        return self._fields[model]

    def _select(self, model: str, domain, wanted, context: dict, offset=0, limit=None, order=None) -> list[dict]:
        fields = self.fields_of(model)
        wanted = list(fields) if not wanted else list(dict.fromkeys(["id", *wanted]))
        for name in wanted:
            if name not in fields:
                raise OdooError("builtins.ValueError", f"Invalid field {name!r} on model {model!r}")
        where, params = _Domain(model, fields).compile(domain or [])
        if "active" in fields and context.get("active_test", True) and not _names(domain or [], "active"):
            where = f"({where}) AND COALESCE(active, 0) = 1"  # archived records are hidden unless asked for
        columns = ", ".join(f'"{name}"' for name in wanted)
        sql = f'SELECT {columns} FROM "{model.replace(".", "_")}" WHERE {where} ' \
              f"ORDER BY {_order(order, fields)} LIMIT ? OFFSET ?"
        with self._connect() as conn:
            page = [-1 if limit in (None, False) else int(limit), int(offset or 0)]
            rows = conn.execute(sql, [*params, *page]).fetchall()
            names = self._display_names(conn, fields, wanted, rows)
        return [{n: _value(fields[n], v, names) for n, v in zip(wanted, row)} for row in rows]

    def _display_names(self, conn, fields: dict, wanted: list[str], rows) -> dict[tuple[str, int], str]:
        """(related model, id) → display name: the related record's `name`, else its id as text."""
        out: dict[tuple[str, int], str] = {}
        for i, name in enumerate(wanted):
            relation = fields[name].get("relation")
            ids = sorted({row[i] for row in rows if row[i] is not None})
            if not relation or not ids:
                continue
            table = relation.replace(".", "_")
            if "name" in {c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')}:
                for start in range(0, len(ids), 500):
                    batch = ids[start:start + 500]
                    out.update(((relation, rid), text) for rid, text in conn.execute(
                        f'SELECT id, name FROM "{table}" WHERE id IN ({", ".join("?" * len(batch))})', batch))
        return out


def _bind(args: list, kwargs: dict, names: tuple) -> list:
    """Positional then keyword arguments, as Python binds them to the ORM method's signature."""
    values = list(args[:len(names)]) + [None] * max(0, len(names) - len(args))
    for i, name in enumerate(names):
        if name in kwargs:
            values[i] = kwargs.pop(name)
    if kwargs:
        raise OdooError("builtins.TypeError", f"got an unexpected keyword argument {next(iter(kwargs))!r}")
    return values


def _names(domain, field: str) -> bool:
    return any(isinstance(t, (list, tuple)) and t and t[0] == field for t in domain)


def _order(order, fields: dict) -> str:
    parts = []
    for term in (order or "id").split(","):
        name, *direction = term.split()
        direction = (direction or ["asc"])[0].lower()
        if name not in fields or direction not in ("asc", "desc") or len(term.split()) > 2:
            raise OdooError("builtins.ValueError", f"Invalid \"order\" specified ({order}). A valid \"order\" "
                                                   f"specification is a comma-separated list of valid field names "
                                                   f"(optionally followed by asc/desc for the direction)")
        parts.append(f'"{name}" {direction.upper()} NULLS {"LAST" if direction == "asc" else "FIRST"}')  # as PostgreSQL
    return ", ".join(parts)


def _value(field: dict, value, names: dict):
    kind = field["type"]
    if kind == "boolean":
        return bool(value)
    if value is None:
        return False
    if kind == "many2one":
        return [value, names.get((field["relation"], value), str(value))]
    if kind in ("date", "datetime"):
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return value
        return parsed.date().isoformat() if kind == "date" else parsed.strftime("%Y-%m-%d %H:%M:%S")
    return value


class _Domain:
    """An Odoo domain (prefix notation) → an SQL condition with bound parameters."""

    def __init__(self, model: str, fields: dict):
        self.model, self.fields = model, fields

    def compile(self, domain) -> tuple[str, list]:
        if not isinstance(domain, (list, tuple)):
            raise OdooError("builtins.ValueError", f"Invalid domain: {domain!r}")
        terms = list(_normalise(domain))
        if not terms:
            return "1", []
        params: list = []
        position = [0]
        sql = self._term(terms, position, False, params)
        return sql, params

    def _term(self, terms: list, position: list, negate: bool, params: list) -> str:
        token = terms[position[0]]
        position[0] += 1
        if token == "!":
            return self._term(terms, position, not negate, params)
        if token in ("&", "|"):
            joiner = " AND " if (token == "&") != negate else " OR "
            left = self._term(terms, position, negate, params)
            return f"({left}{joiner}{self._term(terms, position, negate, params)})"
        return self._leaf(token, negate, params)

    def _leaf(self, leaf, negate: bool, params: list) -> str:
        if not isinstance(leaf, (list, tuple)) or len(leaf) != 3 or leaf[1] not in NEGATION:
            raise OdooError("builtins.ValueError", f"Invalid leaf {leaf!r}")
        name, operator, value = leaf
        if name in (0, 1) and operator == "=" and value == 1:  # Odoo's TRUE_LEAF and FALSE_LEAF
            return "1" if (name == 1) != negate else "0"
        if name not in self.fields:
            raise OdooError("builtins.ValueError", f"Invalid field {self.model}.{name} in leaf {tuple(leaf)!r}")
        operator = NEGATION[operator] if negate else operator
        kind = self.fields[name]["type"]
        column = f'COALESCE("{name}", 0)' if kind == "boolean" else f'"{name}"'  # an empty boolean is false
        if operator in ("in", "not in"):
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            # False (or null) in the list also matches empty values; a boolean is never empty (see column).
            real = [_bound(kind, v) for v in values if kind == "boolean" or (v is not False and v is not None)]
            empty = len(real) < len(values)
            params += real
            listed = f'{column} {operator.upper()} ({", ".join("?" * len(real))})' if real else \
                ("0" if operator == "in" else "1")
            if operator == "in":
                return f"({listed} OR {column} IS NULL)" if empty else listed
            return f"({listed} AND {column} IS NOT NULL)" if empty else f"({listed} OR {column} IS NULL)"
        if (value is False or value is None) and kind != "boolean" and operator in ("=", "!="):
            return f"{column} IS {'NOT ' if operator == '!=' else ''}NULL"
        params.append(_bound(kind, value))
        return f"({column} != ? OR {column} IS NULL)" if operator == "!=" else f"{column} {operator} ?"


def _normalise(domain):
    """Odoo's normalize_domain: the implicit '&' between consecutive terms made explicit."""
    expected, out = (1 if domain else 0), []
    for token in domain:
        if expected == 0:
            out.insert(0, "&")
            expected = 1
        if token in ("&", "|"):
            expected += 1
        elif token != "!":
            expected -= 1
        out.append(token)
    if expected:
        raise OdooError("builtins.ValueError", f"Invalid domain: {domain!r}")
    return out


def _bound(kind: str, value):
    """A domain value as the SQLite file stores it: datetimes as 'YYYY-MM-DD HH:MM:SS', booleans as 0/1."""
    if kind == "boolean":
        return int(bool(value))
    if kind in ("date", "datetime") and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed.date().isoformat() if kind == "date" else parsed.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple, dict)):
        raise OdooError("builtins.ValueError", f"Invalid value {value!r} for a {kind} field")
    return value


def _error(name: str, message: str, exc: BaseException) -> dict:
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "arguments": [message], "context": {},
                     "debug": "".join(traceback.format_exception(exc))}}


class _Handler(BaseHTTPRequestHandler):
    server_version = "OdooEmulator/17.0"

    def log_message(self, format, *args) -> None:  # quiet: no per-request lines on stderr
        pass

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        try:
            status, payload, headers = self.server.emulator.handle(urlsplit(self.path).path, body)
        except Exception as e:  # an emulator bug: a 500, as Odoo's own unhandled errors are
            status, payload, headers = 500, f"emulator error: {e!r}", {}
        is_json = isinstance(payload, dict)
        data = (json.dumps(payload) if is_json else payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if is_json else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _dispatch


OdooEmulator.request_handler = _Handler  # set here: the handler is defined below the emulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulators.odoo", description="Local Odoo 17 JSON-RPC emulator.")
    p.add_argument("--db", type=Path, required=True, help="SQLite file in the demo's Odoo schema (odoo.db)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--database", default="odoo", help="the Odoo database name clients must send")
    p.add_argument("--login", default="admin")
    p.add_argument("--password", help="password (or API key) clients must send (default: $ODOO_EMULATOR_PASSWORD, "
                                      "else admin; prefer the variable, a flag shows in the process list)")
    args = p.parse_args(argv)
    password = args.password or os.environ.get("ODOO_EMULATOR_PASSWORD") or "admin"
    def make() -> OdooEmulator:
        return OdooEmulator(args.db, args.database, args.login, password, args.port, args.host)

    return serve_until_signalled(make, "odoo", (OSError,), f" (database {args.database!r})")


if __name__ == "__main__":
    sys.exit(main())
