"""A stateful local Salesforce REST emulator: sObject Collections upsert by external id, lookup by external id,
the org's daily request quota and its Sforce-Limit-Info header. The demo's CRM target and a test double.
Standard library only.

Where the answers come from:
- Salesforce REST guide, "Upsert Records Using sObject Collections": at most 200 records, all of the URL's
  type, each with attributes.type; a request that isn't well formed is a 400; otherwise 200 with one
  UpsertResult {id, success, errors: [{statusCode, message, fields}], created} per record, in order.
- AllOrNoneHeader docs: with allOrNone, records without errors of their own say they were rolled back.
- Messages as the platform words them, quoted in API users' reports (not printed in the guide): EXCEEDED_ID_LIMIT
  "record limit reached. cannot submit more than 200 records into this call"; INVALID_FIELD "No such column 'X' on
  sobject of type Account"; DUPLICATE_VALUE "Duplicate external id specified: V"; REQUIRED_FIELD_MISSING
  "Required fields are missing: [Name]"; STRING_TOO_LONG "F: data value too large: ... (max length=N)";
  "<field> not specified" for a record without its external id.
- 401 INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED and Sforce-Limit-Info: this project's systems.md contract.
Anything else is marked "emulator choice" where it is made.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from emulators._server import LocalServer, serve_until_signalled

MAX_RECORDS = 200
ID_PREFIX = {"Account": "001", "Contact": "003"}
REQUIRED = {"Account": ("Name",), "Contact": ("LastName",)}
FIELDS = {
    "Account": {"Name", "Phone", "Website", "Type", "Industry", "Description", "AccountNumber", "BillingStreet",
                "BillingCity", "BillingPostalCode", "BillingState", "BillingCountry", "AnnualRevenue",
                "NumberOfEmployees"},
    "Contact": {"FirstName", "LastName", "Email", "Phone", "MobilePhone", "Title", "AccountId", "MailingStreet",
                "MailingCity", "MailingPostalCode", "MailingState", "MailingCountry", "Birthdate", "Description"},
}
CUSTOM_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*__c")
# Every string is taken as text(255) except Description, a Long Text Area (32,000) on both objects in Salesforce.
MAX_LENGTH = {"Description": 32_000}
DEFAULT_LENGTH = 255
DEFAULT_VERSION = "v60.0"
# ALL_OR_NONE_OPERATION_ROLLED_BACK's message as the platform sends it (from memory; the docs name no wording).
ROLLED_BACK = "Record rolled back because not all records were valid and the request was using AllOrNone header"
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
UPSERT = re.compile(r"^/services/data/(v\d+\.0)/composite/sobjects/([^/]+)/([^/]+)/?$")
BY_EXT_ID = re.compile(r"^/services/data/(v\d+\.0)/sobjects/([^/]+)/([^/]+)/([^/]+)/?$")
LIMITS = re.compile(r"^/services/data/(v\d+\.0)/limits/?$")
RECORDS_HELPER = re.compile(r"^/__emulator__/records/([^/]+)/?$")
VERSIONS = [{"label": label, "url": f"/services/data/v{v}", "version": v}
            for label, v in (("Winter '24", "59.0"), ("Spring '24", "60.0"), ("Summer '24", "61.0"))]


def _now() -> str:  # the REST API's timestamp format, UTC: 2024-05-01T09:30:00.000+0000
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _fault(code: str, message: str) -> list[dict]:  # a whole-request error body
    return [{"message": message, "errorCode": code}]


def _error(code: str, message: str, fields: list[str] | tuple = ()) -> dict:  # one error inside a record result
    return {"statusCode": code, "message": message, "fields": list(fields)}


def _not_allowed(method: str, allowed: str) -> tuple[int, list[dict]]:
    return 405, _fault("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}")


def _known_field(sobject: str, name: str) -> bool:
    return name in FIELDS[sobject] or bool(CUSTOM_FIELD.fullmatch(name))


def _ext_value(value) -> str | None:
    """The external id as the string it is matched on; None when absent or blank."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # emulator choice: a JSON number is read as its digits, as a text field would
    return value if isinstance(value, str) and value.strip() else None


class SalesforceEmulator(LocalServer):
    thread_name = "salesforce-emulator"
    def __init__(self, state_file: Path | None = None, token: str = "demo-token", port: int = 0,
                 daily_limit: int = 15000, host: str = "127.0.0.1", fault_rate: float = 0.0, seed: int = 0):
        self.state_file = Path(state_file) if state_file else None
        self.token, self.port, self.daily_limit, self.host = token, port, daily_limit, host
        # Emulator choice: this share of API requests answers 503 SERVER_UNAVAILABLE before doing anything, at
        # random (seeded), so that clients' retries can be tried against a flaky org.
        self.fault_rate, self._random = fault_rate, random.Random(seed)
        # Per process, not persisted. "requests" counts every /services/ request this emulator answered (401s too);
        # "records_rejected" counts records answered success=false inside a 200.
        self.stats = {"requests": 0, "records_created": 0, "records_updated": 0, "records_rejected": 0}
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict]] = {t: {} for t in ID_PREFIX}  # sObject -> Id -> record
        self._id_counter, self._requests_today, self._usage_day = 0, 0, _today()
        if self.state_file and self.state_file.exists():
            self._load()

    def records(self, sobject: str) -> list[dict]:
        if sobject not in self._records:
            raise KeyError(f"unknown sObject {sobject!r}; the emulator knows {', '.join(self._records)}")
        with self._lock:
            return [self._public(sobject, r) for r in self._records[sobject].values()]

    # -- state -----------------------------------------------------------------------------------------------
    # File layout: {"records": {"Account": {<Id>: {...}}, "Contact": {...}}, "id_counter": n, "requests_today": n,
    # "usage_day": "YYYY-MM-DD"}. Records are keyed by Id, not by one external id field: a record may be matched
    # through any external id field, as in Salesforce.
    def _load(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            for sobject, records in data["records"].items():
                if sobject in self._records:
                    self._records[sobject] = dict(records)
            self._id_counter = int(data["id_counter"])
            self._usage_day = data.get("usage_day", _today())
            self._requests_today = int(data.get("requests_today", 0)) if self._usage_day == _today() else 0
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{self.state_file}: not a Salesforce emulator state file ({e})") from None

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"records": self._records, "id_counter": self._id_counter,
                "requests_today": self._requests_today, "usage_day": self._usage_day}
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=f".{self.state_file.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False)
            os.replace(tmp, self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _public(sobject: str, record: dict, version: str = DEFAULT_VERSION) -> dict:
        url = f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"
        return {"attributes": {"type": sobject, "url": url}, **record}

    # -- requests --------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, authorization: str, body: bytes) -> tuple[int, object, dict]:
        """Answer one request: (status, JSON body, extra headers). The HTTP handler's only entry point."""
        if path.startswith("/__emulator__/"):
            return (*self._helper(method, path), {})
        if not path.startswith("/services/"):
            return 404, NOT_FOUND, {}
        with self._lock:
            self.stats["requests"] += 1
            if self._usage_day != _today():
                self._usage_day, self._requests_today = _today(), 0
            if self.fault_rate and self._random.random() < self.fault_rate:
                self.stats["faults"] = self.stats.get("faults", 0) + 1
                return 503, _fault("SERVER_UNAVAILABLE", "Server temporarily unavailable (emulated fault)"), {}
            if authorization != f"Bearer {self.token}":
                status, payload = 401, _fault("INVALID_SESSION_ID", "Session expired or invalid")
            elif self._requests_today >= self.daily_limit:
                status, payload = 403, _fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            else:
                self._requests_today += 1
                status, payload = self._services(method, path, body)
                self._save()  # the request count changed, and perhaps records
            return status, payload, {"Sforce-Limit-Info": f"api-usage={self._requests_today}/{self.daily_limit}"}

    def _helper(self, method: str, path: str) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": "the emulator's helpers answer GET only"}
        with self._lock:
            if path.rstrip("/") == "/__emulator__/health":
                return 200, {"status": "ok"}
            if path.rstrip("/") == "/__emulator__/stats":
                return 200, dict(self.stats)
            m = RECORDS_HELPER.match(path)
            if m and unquote(m[1]) in self._records:
                return 200, self.records(unquote(m[1]))
        return 404, {"error": f"no such emulator resource: {path}"}

    def _services(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if path.rstrip("/") == "/services/data":
            return (200, VERSIONS) if method == "GET" else _not_allowed(method, "GET")
        if LIMITS.match(path):  # the REST API's Limits resource, DailyApiRequests only
            if method != "GET":
                return _not_allowed(method, "GET")
            return 200, {"DailyApiRequests": {"Max": self.daily_limit,
                                              "Remaining": self.daily_limit - self._requests_today}}
        if m := UPSERT.match(path):
            if method != "PATCH":
                return _not_allowed(method, "PATCH")
            return self._upsert(m[1], unquote(m[2]), unquote(m[3]), body)
        if m := BY_EXT_ID.match(path):
            if method != "GET":
                return _not_allowed(method, "GET")
            return self._get(m[1], unquote(m[2]), unquote(m[3]), unquote(m[4]))
        return 404, NOT_FOUND

    def _get(self, version: str, sobject: str, field: str, value: str) -> tuple[int, object]:
        if sobject not in self._records:
            return 404, NOT_FOUND
        if not _known_field(sobject, field):
            return 400, _fault("INVALID_FIELD", f"No such column '{field}' on sobject of type {sobject}")
        ids = [rid for rid, r in self._records[sobject].items() if r.get(field) == value]
        if len(ids) > 1:  # the REST guide: 300 with the matching records when an external id matches several
            return 300, [self._public(sobject, self._records[sobject][i], version)["attributes"]["url"] for i in ids]
        return (200, self._public(sobject, self._records[sobject][ids[0]], version)) if ids else (404, NOT_FOUND)

    def _upsert(self, version: str, sobject: str, ext_field: str, body: bytes) -> tuple[int, object]:
        if sobject not in self._records:
            return 404, NOT_FOUND
        try:
            doc = json.loads(body or b"null")
        except ValueError as e:
            return 400, _fault("JSON_PARSER_ERROR", f"Malformed JSON request body: {e}")
        records = doc.get("records") if isinstance(doc, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            # emulator choice of code: the guide only says a request that isn't well formed is a 400
            return 400, _fault("JSON_PARSER_ERROR", "Expected an object with a 'records' array of objects")
        if len(records) > MAX_RECORDS:
            return 400, _fault("EXCEEDED_ID_LIMIT",
                               f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call")
        for name, value in [(ext_field, None)] + [kv for r in records for kv in r.items() if kv[0] != "attributes"]:
            if not _known_field(sobject, name):  # an unknown field fails the whole request, as the API does
                return 400, _fault("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if isinstance(value, (dict, list)):  # emulator choice: only scalar field values are understood
                return 400, _fault("JSON_PARSER_ERROR", f"Cannot deserialize an object or array into field {name}")

        keys = [_ext_value(r.get(ext_field)) for r in records]
        in_request = Counter(k for k in keys if k)
        stored: dict[str, list[str]] = {}  # external id value -> Ids of the stored records that carry it
        for rid, stored_record in self._records[sobject].items():
            if isinstance(stored_record.get(ext_field), str):
                stored.setdefault(stored_record[ext_field], []).append(rid)
        results, plans = [], []  # plans: (existing Id or None, fields) per valid record, None per failed one
        for record, key in zip(records, keys):
            errors = []
            attributes = record.get("attributes")
            rtype = attributes.get("type") if isinstance(attributes, dict) else None
            if rtype != sobject:  # emulator choice: per-record INVALID_TYPE (the guide only says "must")
                errors.append(_error("INVALID_TYPE", f"Record type {rtype!r} is not the URL's sObject {sobject}"))
            matches = stored.get(key, []) if key else []
            if key is None:
                errors.append(_error("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field]))
            elif in_request[key] > 1:  # every record sharing the value fails, as in the platform's upsert
                errors.append(_error("DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [ext_field]))
            elif len(matches) > 1:  # code from memory of the platform, not confirmed in its published docs
                errors.append(_error("DUPLICATE_EXTERNAL_ID", f"{ext_field}: more than one record found for "
                                     f"external id field: [{', '.join(matches)}]", [ext_field]))
            fields = {k: v for k, v in record.items() if k != "attributes"}
            if key:
                fields[ext_field] = key
            for name, value in fields.items():
                limit = MAX_LENGTH.get(name, DEFAULT_LENGTH)
                if isinstance(value, str) and len(value) > limit:
                    errors.append(_error("STRING_TOO_LONG", f"{name}: data value too large: {value[:40]}... "
                                         f"(max length={limit})", [name]))
            creating = not matches
            missing = [f for f in REQUIRED[sobject]
                       if (creating or f in fields) and not (isinstance(fields.get(f), str) and fields[f].strip())]
            if missing:
                errors.append(_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                     missing))
            plans.append(None if errors else (matches[0] if matches else None, fields))
            results.append({"success": False, "errors": errors} if errors else None)

        if any(p is None for p in plans):
            self.stats["records_rejected"] += sum(p is None for p in plans)
            if doc.get("allOrNone") is True:  # nothing is written; the valid records say why
                self.stats["records_rejected"] += sum(p is not None for p in plans)
                rolled_back = {"success": False, "errors": [_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK)]}
                return 200, [r if r is not None else rolled_back for r in results]
        now = _now()
        for i, plan in enumerate(plans):
            if plan is None:
                continue
            rid, fields = plan
            if rid is None:
                self._id_counter += 1
                # 15 characters plus the platform's 3-character case checksum, which is "AAA" for an all-digit body
                rid = f"{ID_PREFIX[sobject]}{self._id_counter:012d}AAA"
                self._records[sobject][rid] = {"Id": rid, **fields, "CreatedDate": now, "LastModifiedDate": now}
                self.stats["records_created"] += 1
            else:
                self._records[sobject][rid].update(fields, LastModifiedDate=now)
                self.stats["records_updated"] += 1
            results[i] = {"id": rid, "success": True, "errors": [], "created": plan[0] is None}
        return 200, results


class _Handler(BaseHTTPRequestHandler):
    server_version = "SalesforceEmulator/1.0"

    def log_message(self, format, *args) -> None:  # quiet: no per-request lines on stderr
        pass

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""  # always read it, whatever the answer
        try:
            status, payload, headers = self.server.emulator.handle(
                self.command, urlsplit(self.path).path, self.headers.get("Authorization", ""), body)
        except Exception as e:  # an emulator bug: say so to the client, as the API's own 500 does
            status, payload, headers = 500, _fault("UNKNOWN_EXCEPTION", f"emulator error: {e!r}"), {}
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _dispatch


SalesforceEmulator.request_handler = _Handler  # set here: the handler is defined below the emulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="erp2crm emulator salesforce", description="Local Salesforce REST emulator.")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-file", type=Path, help="JSON file the records are kept in across runs")
    p.add_argument("--token", help="bearer token clients must send (default: $SALESFORCE_EMULATOR_TOKEN, "
                                   "else demo-token; prefer the variable, a flag shows in the process list)")
    p.add_argument("--daily-limit", type=int, default=15000, help="daily API request quota (default 15000)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered 503 at random (0-1)")
    args = p.parse_args(argv)
    token = args.token or os.environ.get("SALESFORCE_EMULATOR_TOKEN") or "demo-token"
    def make() -> SalesforceEmulator:
        return SalesforceEmulator(args.state_file, token, args.port, args.daily_limit, args.host, args.fault_rate)

    return serve_until_signalled(make, "salesforce", (OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
