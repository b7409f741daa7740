"""A stateful local Salesforce REST emulator: sObject Collections upsert by external id, Bulk API 2.0 ingest upsert
jobs, lookup by external id, OAuth token renewal and expiring sessions, the org's daily request quota and its
Sforce-Limit-Info header. The demo's CRM target and a test double. Standard library only.

Where the answers come from:
- Salesforce REST guide, "Upsert Records Using sObject Collections": at most 200 records, all of the URL's
  type, each with attributes.type; a request that isn't well formed is a 400; otherwise 200 with one
  UpsertResult {id, success, errors: [{statusCode, message, fields}], created} per record, in order.
- AllOrNoneHeader docs: with allOrNone, records without errors of their own say they were rolled back.
- Messages as the platform words them, quoted in API users' reports (not printed in the guide): EXCEEDED_ID_LIMIT
  "record limit reached. cannot submit more than 200 records into this call"; INVALID_FIELD "No such column 'X' on
  sobject of type Account"; DUPLICATE_VALUE "Duplicate external id specified: V"; REQUIRED_FIELD_MISSING
  "Required fields are missing: [Name]"; STRING_TOO_LONG "F: data value too large: ... (max length=N)";
  "<field> not specified" for a record without its external id; a relationship by external id naming no record,
  INVALID_FIELD "Foreign key external ID: V not found for field F in entity Account" (as integrators quote it), and
  "More than 1 field provided in an external foreign key reference in entity: Account".
- 401 INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED and Sforce-Limit-Info: this project's systems.md contract.
  The concurrent-request limit answers 403 REQUEST_LIMIT_EXCEEDED too, its message naming the limit
  ("ConcurrentRequests (Concurrent API Requests) Limit exceeded", Salesforce Help 000389067; "ConcurrentPerOrgLongTxn
  Limit exceeded ... error code 403", as integrators quote it): the `rate_limit` fault.
- Faults (emulators/_server.py): rate_limit as above; server_error 503 SERVER_UNAVAILABLE or 500 UNKNOWN_EXCEPTION
  (REST guide status codes), or after the write a gateway's 502/504; reject answers a record success=false with
  UNABLE_TO_LOCK_ROW "unable to obtain exclusive access to this record" (the platform's record-lock error, a
  transient one), in sObject Collections results and in a Bulk job's failedResults alike.
- Bulk API 2.0 Developer Guide: create a job (POST jobs/ingest → job info, state Open, contentUrl), upload CSV
  (PUT .../batches, text/csv, 201 without a body), close it (PATCH {"state": "UploadComplete"}; or "Aborted"), job
  info (InProgress, then JobComplete or Failed; numberRecordsProcessed counts failed records too),
  successfulResults (sf__Id, sf__Created + the uploaded columns), failedResults (sf__Id, sf__Error + the uploaded
  columns), unprocessedrecords (the uploaded columns); results in no guaranteed order. "Valid CSV Record Rows": an
  empty cell leaves the field unchanged, #N/A sets it to null. sf__Error reads "CODE:message:fields --", as the
  Bulk API's batch results show it.
- OAuth 2.0 refresh token flow and client credentials flow: POST /services/oauth2/token, form-encoded; 200 with
  {access_token, signature, scope, instance_url, id, token_type, issued_at}; 400 {error, error_description} with
  invalid_grant "expired access/refresh token", invalid_client "invalid client credentials", invalid_client_id
  "client identifier invalid", unsupported_grant_type "grant type not supported" (as API users quote them).
Anything else is marked "emulator choice" where it is made.
"""
from __future__ import annotations

import argparse
import base64
import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import random
import re
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from emulators._server import (DEFAULT_HOLD_S, EmulatorHandler, FaultPlan, LocalServer, add_fault_arguments,
                               serve_until_signalled)

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
# Relationship name → (related sObject, lookup field it sets): a record may name its parent by one of the parent's
# external id fields, {"Account": {"Ext__c": "value"}}, instead of setting AccountId (REST guide, "Upsert Records
# Using sObject Collections" and "Insert/Update Records Using Friendly External ID").
RELATIONSHIPS = {"Contact": {"Account": ("Account", "AccountId")}}
# Every string is taken as text(255) except Description, a Long Text Area (32,000) on both objects in Salesforce.
MAX_LENGTH = {"Description": 32_000}
DEFAULT_LENGTH = 255
DEFAULT_VERSION = "v60.0"
# ALL_OR_NONE_OPERATION_ROLLED_BACK's message as the platform sends it (from memory; the docs name no wording).
ROLLED_BACK = "Record rolled back because not all records were valid and the request was using AllOrNone header"
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
COLLECTION = re.compile(r"^/services/data/(v\d+\.0)/composite/sobjects/?$")
RETRIEVE = re.compile(r"^/services/data/(v\d+\.0)/composite/sobjects/([^/]+)/?$")
UPSERT = re.compile(r"^/services/data/(v\d+\.0)/composite/sobjects/([^/]+)/([^/]+)/?$")
BY_EXT_ID = re.compile(r"^/services/data/(v\d+\.0)/sobjects/([^/]+)/([^/]+)/([^/]+)/?$")
LIMITS = re.compile(r"^/services/data/(v\d+\.0)/limits/?$")
RECORDS_HELPER = re.compile(r"^/__emulator__/records/([^/]+)/?$")
JOBS = re.compile(r"^/services/data/(v\d+\.0)/jobs/ingest/?$")
JOB = re.compile(r"^/services/data/(v\d+\.0)/jobs/ingest/([^/]+)/?$")
JOB_PART = re.compile(r"^/services/data/(v\d+\.0)/jobs/ingest/([^/]+)/"
                      r"(batches|successfulResults|failedResults|unprocessedrecords)/?$")
TOKEN_PATH = "/services/oauth2/token"
BULK_NULL = "#N/A"  # a Bulk CSV cell that sets the field to null; an empty cell leaves it unchanged
ORG_ID, USER_ID = "00D000000000001AAA", "005000000000001AAA"
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
    return name in FIELDS[sobject] or name in RELATIONSHIPS.get(sobject, {}) or bool(CUSTOM_FIELD.fullmatch(name))


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    """A results CSV, every value quoted as the Bulk API writes them; an empty body when there are no rows."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _sf_error(errors: list[dict]) -> str:
    return " ".join(f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --" for e in errors)


@dataclasses.dataclass
class _BulkJob:
    id: str
    sobject: str
    ext_field: str
    version: str
    line_ending: str
    created: str
    state: str = "Open"
    polls_left: int = 1  # job-info reads answered InProgress before the job runs
    header: list[str] = dataclasses.field(default_factory=list)
    rows: list[list[str]] = dataclasses.field(default_factory=list)  # the uploaded records' cells
    successful: list[list[str]] = dataclasses.field(default_factory=list)  # result rows, as the result sets give them
    failed: list[list[str]] = dataclasses.field(default_factory=list)
    unprocessed: list[list[str]] = dataclasses.field(default_factory=list)
    error: str = ""


def _ext_value(value) -> str | None:
    """The external id as the string it is matched on; None when absent or blank."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # emulator choice: a JSON number is read as its digits, as a text field would
    return value if isinstance(value, str) and value.strip() else None


class SalesforceEmulator(LocalServer):
    thread_name = "salesforce-emulator"
    api_prefix = "/services/"
    def __init__(self, state_file: Path | None = None, token: str = "demo-token", port: int = 0,
                 daily_limit: int = 15000, host: str = "127.0.0.1", fault_rate: float = 0.0, seed: int = 0, *,
                 client_id: str | None = None, client_secret: str | None = None, refresh_token: str | None = None,
                 session_ttl_requests: int | None = None, bulk_polls_in_progress: int = 1,
                 faults: dict[str, float] | None = None, fault_hold_s: float = DEFAULT_HOLD_S):
        self.state_file = Path(state_file) if state_file else None
        self.token, self.port, self.daily_limit, self.host = token, port, daily_limit, host
        # The connected app the token endpoint knows (None: that grant is refused), and how many authenticated
        # requests an access token answers before it expires (None: until expire_sessions()). Emulator choice:
        # sessions live in memory only; after a restart only `token` is valid.
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.session_ttl_requests = session_ttl_requests
        self._sessions: dict[str, int] = {token: 0}  # access token -> authenticated requests it has answered
        # Emulator choice: a closed Bulk job answers InProgress this many times before it runs, so that clients'
        # polling is exercised; it then runs at once.
        self.bulk_polls_in_progress = bulk_polls_in_progress
        self._jobs: dict[str, _BulkJob] = {}
        # (method, path) of every /services/ request, in order; the latest ones only in a long-running emulator
        self.request_log: deque[tuple[str, str]] = deque(maxlen=100_000)
        # Emulator choice: this share of API requests answers 503 SERVER_UNAVAILABLE before doing anything, at
        # random (seeded), so that clients' retries can be tried against a flaky org.
        self.fault_rate, self._random = fault_rate, random.Random(seed)
        # Faults by kind (emulators/_server.py: rate_limit, server_error, timeout, dropped, reject), seeded; and a
        # test's hook called before each API request (EmulatorHandler.on_request).
        self.faults = FaultPlan(faults, seed, fault_hold_s)
        self.on_request = None
        # Per process, not persisted. "requests" counts every /services/ request this emulator answered (401s too);
        # "records_rejected" counts records answered success=false inside a 200.
        self.stats = {"requests": 0, "records_created": 0, "records_updated": 0, "records_rejected": 0}
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict]] = {t: {} for t in ID_PREFIX}  # sObject -> Id -> record
        self._id_counter, self._requests_today, self._usage_day = 0, 0, _today()
        if self.state_file and self.state_file.exists():
            self._load()

    def _fault_stats(self) -> dict:  # for /__emulator__/stats, when faults are injected
        return {"fault_rates": self.faults.rates, "faults_injected": dict(self.faults.injected)} if self.faults else {}

    def fault_answer(self, kind: str, variant: str) -> tuple[int, bytes, dict]:
        """The answer of an injected rate_limit or server_error fault (status, body, headers)."""
        json_type = {"Content-Type": "application/json;charset=UTF-8"}
        if kind == "rate_limit":  # not counted against the daily quota (emulator choice)
            body = _fault("REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
            return 403, json.dumps(body).encode(), {**json_type, "Sforce-Limit-Info":
                                                   f"api-usage={self._requests_today}/{self.daily_limit}"}
        if variant == "after":  # emulator choice: an HTML page, as a gateway sends it
            status = self.faults.choice((502, 504))
            reason = "Bad Gateway" if status == 502 else "Gateway Timeout"
            return status, f"<html><body><h1>{status} {reason}</h1></body></html>".encode(), \
                {"Content-Type": "text/html"}
        status, code, message = self.faults.choice((
            (503, "SERVER_UNAVAILABLE", "Server temporarily unavailable (emulated fault)"),
            (500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact "
                                       "support: 1234567890-12345 (-123456789) (emulated fault)")))
        return status, json.dumps(_fault(code, message)).encode(), json_type

    def expire_sessions(self) -> None:
        """Every access token issued so far answers 401 INVALID_SESSION_ID from now on."""
        with self._lock:
            self._sessions.clear()

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
        """Answer one request: (status, body, extra headers); the body is JSON-ready, CSV text (a Bulk result set)
        or None (no body). The HTTP handler's only entry point. `path` may carry a query string."""
        path, _, query = path.partition("?")
        if path.startswith("/__emulator__/"):
            return (*self._helper(method, path), {})
        if not path.startswith("/services/"):
            return 404, NOT_FOUND, {}
        with self._lock:
            self.stats["requests"] += 1
            self.request_log.append((method, path))
            if self._usage_day != _today():
                self._usage_day, self._requests_today = _today(), 0
            if self.fault_rate and self._random.random() < self.fault_rate:
                self.stats["faults"] = self.stats.get("faults", 0) + 1
                return 503, _fault("SERVER_UNAVAILABLE", "Server temporarily unavailable (emulated fault)"), {}
            if path.rstrip("/") == TOKEN_PATH:  # OAuth: no bearer token, and not an API request of the quota
                return (*self._oauth_token(method, body), {})
            if not self._session_valid(authorization):
                status, payload = 401, _fault("INVALID_SESSION_ID", "Session expired or invalid")
            elif self._requests_today >= self.daily_limit:
                status, payload = 403, _fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            else:
                self._requests_today += 1
                status, payload = self._services(method, path, body, parse_qs(query))
                self._save()  # the request count changed, and perhaps records
            return status, payload, {"Sforce-Limit-Info": f"api-usage={self._requests_today}/{self.daily_limit}"}

    def _session_valid(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None
        used = self._sessions.get(token)
        if used is None:
            return False
        if self.session_ttl_requests is not None and used >= self.session_ttl_requests:
            del self._sessions[token]
            return False
        self._sessions[token] = used + 1
        return True

    def _oauth_token(self, method: str, body: bytes) -> tuple[int, object]:
        """The refresh token and client credentials flows: a new access token for the emulator's connected app."""
        if method != "POST":
            return _not_allowed(method, "POST")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if self.client_id is None or form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        # The refresh flow needs the secret only if the app requires one; client credentials always need it.
        secret_needed = grant == "client_credentials" or "client_secret" in form
        if secret_needed and form.get("client_secret") != self.client_secret:
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        if grant == "refresh_token" and (self.refresh_token is None or form.get("refresh_token") != self.refresh_token):
            return 400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(32)}"
        self._sessions[token] = 0
        self.stats["sessions_issued"] = self.stats.get("sessions_issued", 0) + 1
        identity, issued = f"http://{self.host}:{self.port}/id/{ORG_ID}/{USER_ID}", str(int(time.time() * 1000))
        signature = hmac.new((self.client_secret or "").encode(), (identity + issued).encode(), hashlib.sha256)
        return 200, {"access_token": token, "signature": base64.b64encode(signature.digest()).decode(),
                     "scope": "api", "instance_url": f"http://{self.host}:{self.port}", "id": identity,
                     "token_type": "Bearer", "issued_at": issued}

    def _helper(self, method: str, path: str) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": "the emulator's helpers answer GET only"}
        with self._lock:
            if path.rstrip("/") == "/__emulator__/health":
                return 200, {"status": "ok"}
            if path.rstrip("/") == "/__emulator__/stats":
                return 200, {**self.stats, **self._fault_stats()}
            m = RECORDS_HELPER.match(path)
            if m and unquote(m[1]) in self._records:
                return 200, self.records(unquote(m[1]))
        return 404, {"error": f"no such emulator resource: {path}"}

    def _services(self, method: str, path: str, body: bytes, query: dict | None = None) -> tuple[int, object]:
        if path.rstrip("/") == "/services/data":
            return (200, VERSIONS) if method == "GET" else _not_allowed(method, "GET")
        if LIMITS.match(path):  # the REST API's Limits resource, DailyApiRequests only
            if method != "GET":
                return _not_allowed(method, "GET")
            return 200, {"DailyApiRequests": {"Max": self.daily_limit,
                                              "Remaining": self.daily_limit - self._requests_today}}
        if m := COLLECTION.match(path):  # sObject Collections delete: ?ids=a,b&allOrNone=false
            if method != "DELETE":
                return _not_allowed(method, "DELETE")
            return self._delete((query or {}).get("ids", [""])[0].split(","))
        if m := RETRIEVE.match(path):  # sObject Collections retrieve: POST {"ids": [...], "fields": [...]}
            if method != "POST":
                return _not_allowed(method, "POST")
            return self._retrieve(m[1], unquote(m[2]), body)
        if m := UPSERT.match(path):
            if method != "PATCH":
                return _not_allowed(method, "PATCH")
            return self._upsert(m[1], unquote(m[2]), unquote(m[3]), body)
        if m := BY_EXT_ID.match(path):
            if method != "GET":
                return _not_allowed(method, "GET")
            return self._get(m[1], unquote(m[2]), unquote(m[3]), unquote(m[4]))
        if m := JOBS.match(path):
            return self._create_job(m[1], body) if method == "POST" else _not_allowed(method, "POST")
        if (m := JOB.match(path)) or (m := JOB_PART.match(path)):
            job = self._jobs.get(unquote(m[2]))
            if job is None:
                return 404, NOT_FOUND
            return self._job_request(job, method, m[3] if m.re is JOB_PART else None, body)
        return 404, NOT_FOUND

    def _retrieve(self, version: str, sobject: str, body: bytes) -> tuple[int, object]:
        """The records of up to 2,000 Ids, with the fields asked for; null for an Id not found (REST guide)."""
        if sobject not in self._records:
            return 404, NOT_FOUND
        try:
            doc = json.loads(body or b"null")
            ids, fields = list(doc["ids"]), list(doc["fields"])
        except (ValueError, KeyError, TypeError):
            return 400, _fault("JSON_PARSER_ERROR", "Expected a body with ids and fields")
        if len(ids) > 2000:
            return 400, _fault("EXCEEDED_ID_LIMIT", "Maximum number of ids is 2000")
        unknown = [f for f in fields if not _known_field(sobject, f)]
        if unknown:
            return 400, _fault("INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}")
        out = []
        for rid in ids:
            record = self._records[sobject].get(rid)
            out.append(None if record is None else {"attributes": self._public(sobject, record, version)["attributes"],
                                                   "Id": rid, **{f: record.get(f) for f in fields}})
        return 200, out

    def _delete(self, ids: list[str]) -> tuple[int, object]:
        """Delete up to 200 records by Id, one result each (allOrNone false), as the REST guide shows."""
        ids = [i for i in ids if i]
        if not ids or len(ids) > 200:
            return 400, _fault("INVALID_FIELD", "ids: between 1 and 200 Ids")  # emulator choice of wording
        results = []
        for rid in ids:
            sobject = next((t for t, records in self._records.items() if rid in records), None)
            if sobject is None:
                results.append({"id": rid, "success": False,
                                "errors": [_error("ENTITY_IS_DELETED", "entity is deleted")]})
                continue
            del self._records[sobject][rid]
            self.stats["records_deleted"] = self.stats.get("records_deleted", 0) + 1
            results.append({"id": rid, "success": True, "errors": []})
        return 200, results

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
            if isinstance(value, dict) and name in RELATIONSHIPS.get(sobject, {}):
                continue  # a reference by external id, resolved per record in _write
            if isinstance(value, (dict, list)):  # emulator choice: only scalar field values are understood
                return 400, _fault("JSON_PARSER_ERROR", f"Cannot deserialize an object or array into field {name}")
        return 200, self._write(sobject, ext_field, records, doc.get("allOrNone") is True)

    def _write(self, sobject: str, ext_field: str, records: list[dict], all_or_none: bool = False) -> list[dict]:
        """Upsert records whose field names are known: one UpsertResult per record, in order. Shared by sObject
        Collections and Bulk API 2.0 jobs, so both accept and reject a record alike, with the same message."""
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
            errors += self._resolve_references(sobject, fields)
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
            if not errors and self.faults.reject():  # an injected fault: another transaction holds the record
                errors.append(_error("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
                                     + (f" or 1 records: {matches[0]}" if matches else "")))
            plans.append(None if errors else (matches[0] if matches else None, fields))
            results.append({"success": False, "errors": errors} if errors else None)

        if any(p is None for p in plans):
            self.stats["records_rejected"] += sum(p is None for p in plans)
            if all_or_none:  # nothing is written; the valid records say why
                self.stats["records_rejected"] += sum(p is not None for p in plans)
                rolled_back = {"success": False, "errors": [_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK)]}
                return [r if r is not None else rolled_back for r in results]
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
        return results

    def _resolve_references(self, sobject: str, fields: dict) -> list[dict]:
        """Replace each relationship reference {"Account": {"Ext__c": v}} by the lookup field it sets (AccountId);
        errors as the platform words them, in the record's result: a reference naming no record, or several."""
        errors = []
        for name, (parent, lookup) in RELATIONSHIPS.get(sobject, {}).items():
            reference = fields.pop(name, None)
            if not isinstance(reference, dict):
                continue
            if len(reference) != 1:
                errors.append(_error("INVALID_FIELD", f"More than 1 field provided in an external foreign key "
                                                      f"reference in entity: {parent}"))
                continue
            (field, value), = reference.items()
            if not _known_field(parent, field):
                errors.append(_error("INVALID_FIELD", f"No such column '{field}' on sobject of type {parent}"))
                continue
            ids = [rid for rid, r in self._records[parent].items() if _ext_value(value) and r.get(field) == value]
            if len(ids) == 1:
                fields[lookup] = ids[0]
            else:  # emulator choice of code for several matches (the platform's wording is not published)
                errors.append(_error("INVALID_FIELD", f"Foreign key external ID: {value} not found for field {field} "
                                     f"in entity {parent}") if not ids else
                              _error("DUPLICATE_EXTERNAL_ID", f"{field}: more than one record found for external id "
                                     f"field: [{', '.join(ids)}]", [field]))
        return errors

    # -- Bulk API 2.0 ingest -----------------------------------------------------------------------------------
    # Emulator choices: only upsert with CSV and comma delimiters is emulated; error bodies use the REST API's
    # [{"errorCode", "message"}] shape, and codes the guide does not name are marked where they are made.
    def _create_job(self, version: str, body: bytes) -> tuple[int, object]:
        try:
            spec = json.loads(body or b"null")
        except ValueError as e:
            return 400, _fault("JSON_PARSER_ERROR", f"Malformed JSON request body: {e}")
        if not isinstance(spec, dict):
            return 400, _fault("JSON_PARSER_ERROR", "Expected a job definition object")
        sobject, ext_field = spec.get("object"), spec.get("externalIdFieldName")
        if sobject not in self._records:  # code from memory of the Bulk API ("InvalidEntity")
            return 400, _fault("INVALIDENTITY", f"Entity '{sobject}' is not supported by the Bulk API")
        problems = [f"{k} {spec.get(k)!r} is not emulated (only {v})" for k, v in
                    (("operation", "upsert"), ("contentType", "CSV"), ("columnDelimiter", "COMMA"))
                    if spec.get(k, v) != v]
        if not isinstance(ext_field, str) or not ext_field:
            problems.append("externalIdFieldName is required for an upsert")
        if spec.get("lineEnding", "LF") not in ("LF", "CRLF"):
            problems.append(f"lineEnding {spec.get('lineEnding')!r} is not LF or CRLF")
        if problems:  # emulator choice of code and wording
            return 400, _fault("INVALID_JOB", "; ".join(problems))
        job_id = f"750{len(self._jobs) + 1:012d}AAA"  # jobs live in memory only, numbered apart from records
        job = _BulkJob(job_id, sobject, ext_field, version, spec.get("lineEnding", "LF"), _now(),
                       polls_left=self.bulk_polls_in_progress)
        self._jobs[job_id] = job
        self.stats["bulk_jobs"] = self.stats.get("bulk_jobs", 0) + 1
        return 200, self._job_info(job)

    def _job_info(self, job: _BulkJob, detail: bool = False) -> dict:
        info = {"id": job.id, "operation": "upsert", "object": job.sobject, "createdById": USER_ID,
                "createdDate": job.created, "systemModstamp": job.created, "state": job.state,
                "externalIdFieldName": job.ext_field, "concurrencyMode": "Parallel", "contentType": "CSV",
                "apiVersion": float(job.version[1:]), "contentUrl": f"services/data/{job.version}/jobs/ingest/"
                f"{job.id}/batches", "lineEnding": job.line_ending, "columnDelimiter": "COMMA"}
        if detail:
            info.update(jobType="V2Ingest", numberRecordsProcessed=len(job.successful) + len(job.failed),
                        numberRecordsFailed=len(job.failed), retries=0, totalProcessingTime=0,
                        apiActiveProcessingTime=0, apexProcessingTime=0)
            if job.error:
                info["errorMessage"] = job.error
        return info

    def _job_request(self, job: _BulkJob, method: str, part: str | None, body: bytes) -> tuple[int, object]:
        if part == "batches":
            return self._upload(job, body) if method == "PUT" else _not_allowed(method, "PUT")
        if part is not None:  # the three result sets: CSV text, or an empty body when there is no row
            if method != "GET":
                return _not_allowed(method, "GET")
            if part == "successfulResults":
                return 200, _csv_text(["sf__Id", "sf__Created", *job.header], job.successful)
            if part == "failedResults":
                return 200, _csv_text(["sf__Id", "sf__Error", *job.header], job.failed)
            return 200, _csv_text(job.header, job.unprocessed)
        if method == "GET":
            if job.state in ("UploadComplete", "InProgress"):
                job.state = "InProgress"
                if job.polls_left > 0:
                    job.polls_left -= 1
                else:
                    self._run_job(job)
            return 200, self._job_info(job, detail=True)
        if method != "PATCH":
            return _not_allowed(method, "GET, PATCH")
        try:
            state = json.loads(body or b"null").get("state")
        except (ValueError, AttributeError):
            return 400, _fault("JSON_PARSER_ERROR", "Expected {\"state\": ...}")
        allowed = {"UploadComplete": ("Open",), "Aborted": ("Open", "UploadComplete", "InProgress")}
        if job.state not in allowed.get(state, ()):  # emulator choice of code and wording
            return 400, _fault("INVALIDJOBSTATE",
                               f"Cannot change the state of job {job.id} from {job.state} to {state}")
        job.state = state
        if state == "Aborted":
            job.unprocessed = job.rows
        return 200, self._job_info(job)

    def _upload(self, job: _BulkJob, body: bytes) -> tuple[int, object]:
        if job.state != "Open":  # the guide: no more job data once the upload is complete
            return 400, _fault("INVALIDJOBSTATE", f"Job {job.id} is {job.state}: it takes no more data")
        try:
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error) as e:  # emulator choice of code: files must be UTF-8 CSV
            return 400, _fault("INVALID_CSV", f"Job data is not UTF-8 CSV: {e}")
        if not rows or not rows[0]:
            return 400, _fault("INVALID_CSV", "Job data has no header row")
        # Emulator choice: several uploads to an open job are appended when they share the first one's header.
        if job.header and rows[0] != job.header:
            return 400, _fault("INVALID_CSV", "Every upload to a job must have the same header row")
        job.header = rows[0]
        job.rows += [r for r in rows[1:] if r]
        return 201, None

    def _run_job(self, job: _BulkJob) -> None:
        """Process the job at once: a job-wide problem fails it with every row unprocessed; otherwise each row
        goes through the same per-record rules as sObject Collections."""
        unknown = next((c for c in [job.ext_field, *job.header] if not _known_field(job.sobject, c)), None)
        ragged = next((n for n, r in enumerate(job.rows, 1) if len(r) != len(job.header)), None)
        if unknown or ragged:  # wording from memory of the Bulk API's batch errors ("InvalidBatch : ...")
            job.state, job.unprocessed = "Failed", job.rows
            job.error = (f"InvalidBatch : Field name not found : {unknown}" if unknown else
                         f"InvalidBatch : record {ragged} does not have as many fields as the header row")
            return
        records = [{"attributes": {"type": job.sobject},
                    **{name: None if cell == BULK_NULL else cell for name, cell in zip(job.header, row) if cell != ""}}
                   for row in job.rows]
        for row, result in zip(job.rows, self._write(job.sobject, job.ext_field, records)):
            if result["success"]:
                job.successful.append([result["id"], "true" if result["created"] else "false", *row])
            else:
                job.failed.append(["", _sf_error(result["errors"]), *row])
        job.state = "JobComplete"


class _Handler(EmulatorHandler):
    server_version = "SalesforceEmulator/1.0"

    def answer(self, body: bytes) -> tuple[int, bytes, dict]:
        try:
            status, payload, headers = self.server.emulator.handle(
                self.command, self.path, self.headers.get("Authorization", ""), body)
        except Exception as e:  # an emulator bug: say so to the client, as the API's own 500 does
            status, payload, headers = 500, _fault("UNKNOWN_EXCEPTION", f"emulator error: {e!r}"), {}
        # A Bulk result set is CSV text; a Bulk upload answers 201 without a body; the rest is JSON.
        if isinstance(payload, str):
            data, content_type = payload.encode("utf-8"), "text/csv;charset=UTF-8"
        else:
            data = b"" if payload is None else json.dumps(payload).encode("utf-8")
            content_type = "application/json;charset=UTF-8"
        return status, data, {"Content-Type": content_type, **headers}


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
    add_fault_arguments(p)
    p.add_argument("--bulk-polls-in-progress", type=int, default=1,
                   help="job-info reads a closed Bulk job answers InProgress before it runs (default 1)")
    p.add_argument("--session-ttl-requests", type=int, help="authenticated requests an access token answers before "
                   "it expires (default: never). The OAuth app comes from $SALESFORCE_EMULATOR_CLIENT_ID, "
                   "$SALESFORCE_EMULATOR_CLIENT_SECRET and $SALESFORCE_EMULATOR_REFRESH_TOKEN")
    args = p.parse_args(argv)
    token = args.token or os.environ.get("SALESFORCE_EMULATOR_TOKEN") or "demo-token"
    oauth = {k: os.environ.get(f"SALESFORCE_EMULATOR_{k.upper()}")
             for k in ("client_id", "client_secret", "refresh_token")}
    def make() -> SalesforceEmulator:
        return SalesforceEmulator(args.state_file, token, args.port, args.daily_limit, args.host, args.fault_rate,
                                  args.fault_seed, session_ttl_requests=args.session_ttl_requests,
                                  faults=dict(args.fault), fault_hold_s=args.fault_hold,
                                  bulk_polls_in_progress=args.bulk_polls_in_progress, **oauth)

    return serve_until_signalled(make, "salesforce", (OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
