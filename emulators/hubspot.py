"""A stateful local HubSpot CRM v3 emulator: batch upsert of companies and contacts by a unique property, read one
record, list records, private-app bearer auth, the rolling 10-second and daily request limits with HubSpot's
rate-limit headers, and fault injection for tests. A test double and a demo target. Standard library only.

Where the answers come from:
- HubSpot API reference, "Create or update a batch of ... by unique property values"
  (POST /crm/v3/objects/{objectType}/batch/upsert): inputs [{id, idProperty, properties}]; the answer
  {status, results: [{id, new, properties, createdAt, updatedAt, archived}], startedAt, completedAt}, and
  numErrors + errors [{status, category, message, context}] beside them; at most 100 inputs (systems.md).
  The order of results is not promised to follow the inputs (hence `shuffle_results`).
- HubSpot "Error handling" guide: 207 Multi-Status for mixed outcomes, 401 invalid authentication,
  403 missing scopes, 429 rate limits. Every other error body {status: "error", message, correlationId, category}.
- Bodies as HubSpot words them, quoted in public reports: 401 INVALID_AUTHENTICATION "Authentication credentials
  not found..." (HubSpot/hubspot-api-nodejs#148, #432); 403 MISSING_SCOPES "This app hasn't been granted all
  required scopes..." (hubspot-api-nodejs#50); 429 {status, message "You have reached your ... limit.",
  errorType RATE_LIMIT, correlationId, policyName} (HGData/mk-node-hubspot#89, HubSpot community on usage
  details); "Property values were not valid: [{isValid, message, error, name}]" with INVALID_EMAIL
  (Atlas-Authority/marketing-automation#174) and PROPERTY_DOESNT_EXIST (hubspot-net/HubSpot.NET#50);
  "Unable to perform update/upsert by non-unique 0-1 property" (hubspot-api-nodejs#548).
- Headers X-HubSpot-RateLimit-Max, -Remaining, -Interval-Milliseconds, -Daily, -Daily-Remaining, and the
  Free/Starter limits (100 requests per 10 s, 250,000 a day): HubSpot "API usage guidelines", systems.md.
  Retry-After may be absent on a 429 (systems.md): this emulator's own 429s never carry it.
- HubSpot "Error handling" guide: 423 Locked when upserting many records in a short time ("include a delay of at
  least 2 seconds"); 502/504 when processing limits are met, 503 temporarily unavailable, 521 web server down
  ("pause your requests for a few seconds, then retry").
- HubSpot API reference, associations v4, "Associate records (default)" (POST
  /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default, inputs [{from: {id}, to: {id}}]; the
  answer {status, results: [{from, to, associationSpec: {associationCategory, associationTypeId}}], startedAt,
  completedAt}, with numErrors and errors for failed inputs) and "Remove associations" (.../batch/archive, inputs
  [{from: {id}, to: [{id}]}], 204). Emulator choice: an input naming a record that does not exist is an error of
  category VALIDATION_ERROR inside a 207, and associating twice is harmless.
- Faults (emulators/_server.py): rate_limit is a 429 TEN_SECONDLY_ROLLING without Retry-After or a 423 Locked;
  server_error a 500, 502, 503, 504 or 521, or after the write a 502/504; reject answers one input as an error
  inside a 207 (category LOCKED: emulator choice, HubSpot documents no per-input transient error).
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
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from emulators._server import (DEFAULT_HOLD_S, EmulatorHandler, FaultPlan, LocalServer, add_fault_arguments,
                               serve_until_signalled)

MAX_INPUTS = 100
WINDOW_MS = 10_000
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2"}  # HubSpot's object type ids, used in its messages
DEFAULT_UNIQUE = {"companies": ["erp2crm_customer_id"],
                  "contacts": ["email", "erp2crm_customer_id", "erp2crm_contact_id"]}
DEFAULT_PROPERTIES = {"companies": {"name", "domain", "phone", "city", "zip", "country", "address"},
                      "contacts": {"email", "firstname", "lastname", "phone", "company", "jobtitle"}}
CUSTOM_PREFIX = "erp2crm_"  # every property with this prefix counts as created in the account
READ_ONLY = {"hs_object_id", "createdate", "hs_lastmodifieddate"}  # set by the emulator, readable, never written
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OBJECT_PATH = re.compile(r"^/crm/v3/objects/([^/]+)(?:/([^/]+))?(?:/([^/]+))?/?$")
ASSOCIATIONS_PATH = re.compile(r"^/crm/v4/associations/([^/]+)/([^/]+)/batch/(associate/default|archive)/?$")
# The default (unlabelled) association types HubSpot defines between its objects, from the v4 associations guide.
DEFAULT_ASSOCIATION = {("contacts", "companies"): 279, ("companies", "contacts"): 280}
MESSAGES = {  # default bodies for fail_next and the real checks
    401: ("INVALID_AUTHENTICATION", ("Authentication credentials not found. This API supports OAuth 2.0 "
                                     "authentication and you can find more details at "
                                     "https://developers.hubspot.com/docs/methods/auth/oauth-overview")),
    403: ("MISSING_SCOPES", ("This app hasn't been granted all required scopes to make this call. Read more about "
                             "required scopes here: https://developers.hubspot.com/scopes.")),
    500: ("INTERNAL_ERROR", "internal error"),  # emulator choice of wording
}


def _now() -> str:  # HubSpot's timestamps: 2024-05-01T09:30:00.123Z
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _today() -> str:  # emulator choice: the day turns at midnight UTC (HubSpot: the account's time zone)
    return datetime.now(timezone.utc).date().isoformat()


def _error(category: str, message: str, **extra) -> dict:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def _rate_limited(policy: str) -> dict:
    # The public examples carry errorType RATE_LIMIT; this project's brief names category RATE_LIMITS: both are sent,
    # and clients should rely on policyName only, which every source shows.
    return {"status": "error", "message": f"You have reached your {policy.lower()} limit.", "errorType": "RATE_LIMIT",
            "category": "RATE_LIMITS", "correlationId": str(uuid.uuid4()), "policyName": policy}


def _invalid(name: str, message: str, error: str) -> dict:
    return {"isValid": False, "message": message, "error": error, "name": name}


class HubspotEmulator(LocalServer):
    thread_name = "hubspot-emulator"
    api_prefix = "/crm/"
    def __init__(self, token: str = "demo-token", port: int = 0, state_file: Path | None = None,
                 max_per_second_window: int = 100, daily_limit: int = 250_000, host: str = "127.0.0.1",
                 unique_properties: dict[str, list[str]] | None = None,
                 properties: dict[str, set[str]] | None = None, shuffle_results: bool = False,
                 clock=time.monotonic, fault_rate: float = 0.0, seed: int = 0,
                 faults: dict[str, float] | None = None, fault_hold_s: float = DEFAULT_HOLD_S):
        self.token, self.port, self.host = token, port, host
        self.state_file = Path(state_file) if state_file else None
        self.window_max, self.daily_limit = max_per_second_window, daily_limit
        self.unique = {o: list(p) for o, p in (unique_properties or DEFAULT_UNIQUE).items()}
        self.properties = {o: set(p) for o, p in (properties or DEFAULT_PROPERTIES).items()}
        self.shuffle_results = shuffle_results  # answer results in another order than the inputs, as HubSpot may
        self.clock = clock  # tests pass a fake clock to move the rolling window without waiting
        self.requests_served = 0  # every /crm/ request answered, whatever the status (per process)
        self.stats = {"records_created": 0, "records_updated": 0, "records_rejected": 0}
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict]] = {o: {} for o in OBJECT_TYPE_IDS}  # object -> id -> record
        self._associations: set[tuple[str, str, str, str]] = set()  # (from object, from id, to object, to id)
        self._id_counter, self._requests_today, self._usage_day = 0, 0, _today()
        self._window: deque[float] = deque()  # clock() of each admitted request in the last 10 s
        self._faults: deque[tuple] = deque()
        self._index: dict[tuple[str, str], dict[str, str]] = {}  # (object, property) -> value -> record id
        self._rejected: dict[str, set[str]] = {}  # property -> values answered as invalid
        self._random = random.Random(0)
        # Emulator choice: this share of requests answers a 502, or a 429 without Retry-After, at random (seeded)
        # and before doing anything, so that clients' retries can be tried against a flaky portal.
        self.fault_rate, self._fault_random = fault_rate, random.Random(seed)
        # Faults by kind (emulators/_server.py: rate_limit, server_error, timeout, dropped, reject), seeded; and a
        # test's hook called before each API request (EmulatorHandler.on_request).
        self.faults = FaultPlan(faults, seed, fault_hold_s)
        self.on_request = None
        if self.state_file and self.state_file.exists():
            self._load()

    # -- test helpers (lifecycle: emulators._server.LocalServer) ----------------------------------------------
    def fault_answer(self, kind: str, variant: str) -> tuple[int, bytes, dict]:
        """The answer of an injected rate_limit or server_error fault (status, body, headers)."""
        json_type = {"Content-Type": "application/json;charset=utf-8"}
        with self._lock:
            limits = self._limit_headers()
        if kind == "rate_limit":
            if self.faults.choice((429, 423)) == 429:
                return 429, json.dumps(_rate_limited("TEN_SECONDLY_ROLLING")).encode(), {**json_type, **limits}
            body = _error("LOCKED", "The objects are locked by other writes; retry in at least 2 seconds "
                                    "(emulated fault)")  # emulator choice of body: the guide names the status only
            return 423, json.dumps(body).encode(), {**json_type, **limits}
        status = self.faults.choice((502, 504) if variant == "after" else (500, 502, 503, 504, 521))
        body = _error("INTERNAL_ERROR", f"emulated HTTP {status}")
        return status, json.dumps(body).encode(), json_type


    def records(self, object_type: str) -> list[dict]:
        if object_type not in self._records:
            raise KeyError(f"unknown object {object_type!r}; the emulator knows {', '.join(self._records)}")
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._records[object_type].values()]

    def associations(self, from_type: str, to_type: str) -> list[tuple[str, str]]:
        """(from id, to id) of every association from one object type to another, sorted."""
        with self._lock:
            return sorted((a[1], a[3]) for a in self._associations if a[0] == from_type and a[2] == to_type)

    def fail_next(self, n: int, status: int, retry_after: int | None = None, body: dict | None = None,
                  processed: bool = False) -> None:
        """The next n /crm/ requests answer `status` (with Retry-After when given). processed=True carries the
        request out first and then answers the fault: a response lost on the way back."""
        with self._lock:
            self._faults.extend([(status, retry_after, body, processed)] * n)

    def reject_property_values(self, values: dict[str, str | list[str]]) -> None:
        """Inputs setting one of these property values are rejected inside a 207 (besides malformed emails)."""
        with self._lock:
            for name, value in values.items():
                self._rejected.setdefault(name, set()).update([value] if isinstance(value, str) else value)

    # -- state: {"records": {object: {id: record}}, "id_counter", "requests_today", "usage_day"} ---------------
    def _load(self) -> None:
        self._index.clear()
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            for object_type, records in data["records"].items():
                if object_type in self._records:
                    self._records[object_type] = dict(records)
            self._id_counter = int(data["id_counter"])
            self._associations = {tuple(a) for a in data.get("associations", [])}
            self._usage_day = data.get("usage_day", _today())
            self._requests_today = int(data.get("requests_today", 0)) if self._usage_day == _today() else 0
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{self.state_file}: not a HubSpot emulator state file ({e})") from None

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"records": self._records, "id_counter": self._id_counter, "associations": sorted(self._associations),
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

    # -- requests --------------------------------------------------------------------------------------------
    def _limit_headers(self) -> dict:
        return {"X-HubSpot-RateLimit-Max": str(self.window_max),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.window_max - len(self._window))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
                "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self._requests_today))}

    def handle(self, method: str, path: str, query: str, authorization: str, body: bytes) -> tuple[int, object, dict]:
        """Answer one request: (status, JSON body, headers). The HTTP handler's only entry point."""
        if path.startswith("/__emulator__/"):
            return (*self._helper(method, path), {})
        if not path.startswith(("/crm/v3/", "/crm/v4/")):
            return 404, _error("OBJECT_NOT_FOUND", f"No route for {method} {path}"), {}  # emulator choice
        with self._lock:
            self.requests_served += 1
            now = self.clock()
            while self._window and now - self._window[0] >= WINDOW_MS / 1000:
                self._window.popleft()
            if self._usage_day != _today():
                self._usage_day, self._requests_today = _today(), 0
            if self.fault_rate and self._fault_random.random() < self.fault_rate:
                status = self._fault_random.choice((502, 429))
                return self._fault(status, None, None)
            fault = self._faults.popleft() if self._faults else None
            if fault and not fault[3]:  # emulator choice: an injected fault is not counted against the limits
                return self._fault(*fault[:3])
            status, payload = self._admit(method, path, query, authorization, body, now)
            return self._fault(*fault[:3]) if fault else (status, payload, self._limit_headers())

    def _admit(self, method: str, path: str, query: str, authorization: str, body: bytes, now: float):
        if authorization != f"Bearer {self.token}":  # emulator choice: a refused token is not counted
            return 401, _error(*MESSAGES[401])
        if self._requests_today >= self.daily_limit:
            return 429, _rate_limited("DAILY")
        if len(self._window) >= self.window_max:  # emulator choice: a refused request does not extend the window
            return 429, _rate_limited("TEN_SECONDLY_ROLLING")
        self._window.append(now)
        self._requests_today += 1
        answer = self._route(method, path, parse_qs(query), body)
        self._save()
        return answer

    def _fault(self, status: int, retry_after: int | None, body: dict | None) -> tuple[int, object, dict]:
        if body is None:
            body = _rate_limited("TEN_SECONDLY_ROLLING") if status == 429 else _error(*MESSAGES.get(
                status, MESSAGES[500]))
        headers = self._limit_headers()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return status, body, headers

    def _helper(self, method: str, path: str) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": "the emulator's helpers answer GET only"}
        if path.rstrip("/") == "/__emulator__/health":
            return 200, {"status": "ok"}
        if path.rstrip("/") == "/__emulator__/stats":
            faults = {"fault_rates": self.faults.rates, "faults_injected": dict(self.faults.injected)} \
                if self.faults else {}
            return 200, {"requests": self.requests_served, **self.stats, **faults}
        m = re.match(r"^/__emulator__/records/([^/]+)/?$", path)
        if m and m[1] in self._records:
            return 200, self.records(m[1])
        m = re.match(r"^/__emulator__/associations/([^/]+)/([^/]+)/?$", path)
        if m:
            return 200, [{"from": f, "to": t} for f, t in self.associations(m[1], m[2])]
        return 404, {"error": f"no such emulator resource: {path}"}

    def _route(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, object]:
        if (a := ASSOCIATIONS_PATH.match(path)) and method == "POST":
            return self._associate(unquote(a[1]), unquote(a[2]), a[3] == "archive", body)
        m = OBJECT_PATH.match(path)
        if not m:
            return 404, _error("OBJECT_NOT_FOUND", f"No route for {method} {path}")
        object_type, first, second = unquote(m[1]), m[2] and unquote(m[2]), m[3] and unquote(m[3])
        if object_type not in self._records:  # wording from memory of the platform
            return 400, _error("VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")
        if first == "batch" and second == "upsert" and method == "POST":
            return self._upsert(object_type, body)
        if first == "batch" and second == "read" and method == "POST":
            return self._batch_read(object_type, body)
        if first == "batch" and second == "archive" and method == "POST":
            return self._archive(object_type, body)
        if first and not second and method == "GET":
            return self._get(object_type, first, query.get("idProperty", [None])[0])
        if not first and method == "GET":
            return self._list(object_type, query)
        return 405, _error("VALIDATION_ERROR", f"{method} is not supported on {path}")  # emulator choice

    def _find(self, object_type: str, prop: str, value: str) -> str | None:
        """The id of the record whose `prop` is `value` (looked up with a non-empty value of a unique property)."""
        index = self._index.get((object_type, prop))
        if index is None:  # built on first use, then kept up to date by _write; dropped by _load and _archive
            index = self._index[(object_type, prop)] = {}
            for rid, record in self._records[object_type].items():
                value_of = record["properties"].get(prop)
                if isinstance(value_of, str) and value_of:
                    index.setdefault(value_of, rid)
        return index.get(value)

    def _not_unique(self, object_type: str, prop: str) -> tuple[int, dict]:
        return 400, _error("VALIDATION_ERROR", f"Unable to perform update/upsert by non-unique "
                                               f"{OBJECT_TYPE_IDS[object_type]} property: {prop}")

    def _get(self, object_type: str, key: str, id_property: str | None) -> tuple[int, object]:
        if id_property and id_property not in self.unique[object_type]:
            return self._not_unique(object_type, id_property)
        rid = self._find(object_type, id_property, key) if id_property else key
        record = self._records[object_type].get(rid or "")
        if record is None:  # wording from memory of the platform
            return 404, _error("OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.",
                               context={"id": [key]})
        return 200, record  # emulator choice: every property, not only the defaults and `properties=`

    def _list(self, object_type: str, query: dict) -> tuple[int, object]:
        try:
            limit = min(100, max(1, int(query.get("limit", ["10"])[0])))
            offset = int(query.get("after", ["0"])[0])
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "limit and after must be integers")
        records = list(self._records[object_type].values())
        page = {"results": records[offset:offset + limit]}
        if offset + limit < len(records):  # emulator choice: the cursor is an offset
            page["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, page

    def _check_input(self, object_type: str, item: dict) -> list[dict]:
        """Why one input cannot be written, as HubSpot's property validation results; empty when it can."""
        problems = []
        id_property, key, props = item.get("idProperty"), item.get("id"), dict(item.get("properties") or {})
        if not isinstance(key, str) or not key.strip():  # emulator choice: a per-input error
            problems.append(_invalid(id_property, f"{id_property} has no value to upsert by", "INVALID_ID"))
        else:
            props[id_property] = key  # the id is written to its property, so it is validated like one
        for name, value in props.items():
            if (name not in self.properties[object_type] and not name.startswith(CUSTOM_PREFIX)) or name in READ_ONLY:
                problems.append(_invalid(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
            elif not isinstance(value, str):  # emulator choice: stricter than HubSpot, which coerces scalars
                problems.append(_invalid(name, f"{name} must be a string, got {json.dumps(value)}", "INVALID_TYPE"))
            elif name == "email" and value and not EMAIL.match(value):
                problems.append(_invalid(name, f"Email address {value} is invalid", "INVALID_EMAIL"))
            elif value in self._rejected.get(name, ()):  # emulator choice of wording
                problems.append(_invalid(name, f"{value} was not a valid value for {name}", "INVALID_OPTION"))
            elif name in self.unique[object_type] and name != id_property and value:
                owner, own = self._find(object_type, name, value), self._find(object_type, id_property, key)
                if owner and owner != own:  # emulator choice of error and wording
                    problems.append(_invalid(name, f"{value} is already the {name} of record {owner}", "CONFLICT"))
        return problems

    def _inputs(self, body: bytes) -> list | None:
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            return None
        inputs = doc.get("inputs") if isinstance(doc, dict) else None
        return inputs if isinstance(inputs, list) and all(isinstance(i, dict) for i in inputs) else None

    def _batch_read(self, object_type: str, body: bytes) -> tuple[int, object]:
        """POST batch/read {properties, inputs: [{id}]}: the records found, with the properties asked for."""
        inputs = self._inputs(body)
        if inputs is None or len(inputs) > MAX_INPUTS:
            return 400, _error("VALIDATION_ERROR", f"Invalid input JSON: expected at most {MAX_INPUTS} inputs")
        wanted = json.loads(body).get("properties") or []
        started, results = _now(), []
        for item in inputs:
            record = self._records[object_type].get(str(item.get("id")))
            if record is not None:
                props = record["properties"]
                results.append({"id": record["id"], "properties": {k: props.get(k) for k in wanted},
                                "createdAt": record["createdAt"], "updatedAt": record.get("updatedAt"),
                                "archived": False})
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}

    def _associate(self, from_type: str, to_type: str, remove: bool, body: bytes) -> tuple[int, object]:
        """v4 batch associate (default type) or archive: inputs [{from: {id}, to: {id}}] (archive: to is a list)."""
        type_id = DEFAULT_ASSOCIATION.get((from_type, to_type))
        inputs = self._inputs(body)
        if type_id is None:  # wording from memory of the platform
            return 400, _error("VALIDATION_ERROR", f"Unable to infer object type from: {from_type}/{to_type}")
        if inputs is None or len(inputs) > MAX_INPUTS:
            return 400, _error("VALIDATION_ERROR", f"Invalid input JSON: expected at most {MAX_INPUTS} inputs")
        started, results, errors = _now(), [], []
        for item in inputs:
            source = str((item.get("from") or {}).get("id"))
            targets = item.get("to") if remove else [item.get("to")]
            for target in [str((t or {}).get("id")) for t in targets or []]:
                key = (from_type, source, to_type, target)
                if remove:
                    self._associations.discard(key)
                    continue
                missing = [f"{o} {i}" for o, i in ((from_type, source), (to_type, target)) if i not in self._records[o]]
                if missing:
                    errors.append({"status": "error", "category": "VALIDATION_ERROR",
                                   "message": f"No such record: {', '.join(missing)}",
                                   "context": {"fromObjectId": [source], "toObjectId": [target]}})
                    continue
                self._associations.add(key)
                results.append({"from": {"id": source}, "to": {"id": target}, "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}})
        if remove:
            return 204, None
        answer = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        return (207, {**answer, "numErrors": len(errors), "errors": errors}) if errors else (200, answer)

    def _archive(self, object_type: str, body: bytes) -> tuple[int, object]:
        """POST batch/archive {inputs: [{id}]}: 204; an id not found is ignored (emulator choice)."""
        inputs = self._inputs(body)
        if inputs is None or len(inputs) > MAX_INPUTS:
            return 400, _error("VALIDATION_ERROR", f"Invalid input JSON: expected at most {MAX_INPUTS} inputs")
        for item in inputs:
            if self._records[object_type].pop(str(item.get("id")), None) is not None:
                self._index.clear()
                self._associations = {a for a in self._associations if (a[0], a[1]) != (object_type, str(item["id"]))
                                      and (a[2], a[3]) != (object_type, str(item["id"]))}
                self.stats["records_archived"] = self.stats.get("records_archived", 0) + 1
        return 204, None

    def _upsert(self, object_type: str, body: bytes) -> tuple[int, object]:
        started = _now()
        try:
            doc = json.loads(body or b"null")
        except ValueError as e:
            return 400, _error("VALIDATION_ERROR", f"Invalid input JSON: {e}")
        inputs = doc.get("inputs") if isinstance(doc, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return 400, _error("VALIDATION_ERROR", "Invalid input JSON: expected {\"inputs\": [objects]}")
        if len(inputs) > MAX_INPUTS:  # emulator choice of wording
            return 400, _error("VALIDATION_ERROR", f"Batch input limit is {MAX_INPUTS} inputs, got {len(inputs)}")
        for id_property in {i.get("idProperty") for i in inputs}:
            if id_property not in self.unique[object_type]:
                return self._not_unique(object_type, id_property)
        keys = [i.get("id") for i in inputs]
        dupes = sorted({k for k in keys if isinstance(k, str) and keys.count(k) > 1})
        if dupes:  # wording from memory of the platform
            return 400, _error("VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dupes}. IDs must be unique",
                               context={"ids": dupes})
        results, errors = [], []
        for item in inputs:
            problems = self._check_input(object_type, item)
            if not problems and self.faults.reject():  # an injected, transient per-input failure
                self.stats["records_rejected"] += 1
                errors.append({"status": "error", "category": "LOCKED",
                               "message": "The record is locked by another write; retry later (emulated fault)",
                               "context": {"ids": [str(item.get("id"))]}})
            elif problems:
                self.stats["records_rejected"] += 1
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": "Property values were not valid: " + json.dumps(problems),
                               "context": {"ids": [str(item.get("id"))]}, "errors": problems})
            else:
                results.append(self._write(object_type, item))
        if self.shuffle_results:
            self._random.shuffle(results)
        answer = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        if errors:  # emulator choice: a 207 also when every input failed
            return 207, {**answer, "numErrors": len(errors), "errors": errors}
        return 200, answer

    def _write(self, object_type: str, item: dict) -> dict:
        id_property, key = item["idProperty"], item["id"]
        props = {**(item.get("properties") or {}), id_property: key}  # emulator choice: the input's id wins
        now, rid = _now(), self._find(object_type, id_property, key)
        new = rid is None
        if new:
            self._id_counter += 1
            rid = str(100_000 + self._id_counter)  # emulator choice: numeric strings, as HubSpot's ids are
            self._records[object_type][rid] = {"id": rid, "properties": {"hs_object_id": rid, "createdate": now},
                                               "createdAt": now, "archived": False}
        self.stats["records_created" if new else "records_updated"] += 1
        record = self._records[object_type][rid]
        for (indexed_type, prop), index in self._index.items():  # keep the lookups in step with the write
            if indexed_type != object_type or prop not in props:
                continue
            old = record["properties"].get(prop)
            if index.get(old) == rid and old != props[prop]:
                del index[old]
            if isinstance(props[prop], str) and props[prop]:
                index.setdefault(props[prop], rid)
        record["properties"].update(props, hs_lastmodifieddate=now)  # "" is stored: it clears the value
        record["updatedAt"] = now
        return {**json.loads(json.dumps(record)), "new": new}


class _Handler(EmulatorHandler):
    server_version = "HubspotEmulator/1.0"

    def answer(self, body: bytes) -> tuple[int, bytes, dict]:
        parts = urlsplit(self.path)
        try:
            status, payload, headers = self.server.emulator.handle(
                self.command, parts.path, parts.query, self.headers.get("Authorization", ""), body)
        except Exception as e:  # an emulator bug: say so to the client, as HubSpot's own 500 does
            status, payload, headers = 500, _error("INTERNAL_ERROR", f"emulator error: {e!r}"), {}
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")  # a 204 has no body
        return status, data, {"Content-Type": "application/json;charset=utf-8", **headers}


HubspotEmulator.request_handler = _Handler  # set here: the handler is defined below the emulator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="erp2crm emulator hubspot", description="Local HubSpot CRM v3 emulator.")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--state-file", type=Path, help="JSON file the records are kept in across runs")
    p.add_argument("--token", help="private app token clients must send (default: $HUBSPOT_EMULATOR_TOKEN, else "
                                   "demo-token; prefer the variable, a flag shows in the process list)")
    p.add_argument("--window-max", type=int, default=100, help="requests per rolling 10 s (default 100)")
    p.add_argument("--daily-limit", type=int, default=250_000, help="requests per day (default 250000)")
    p.add_argument("--fault-rate", type=float, default=0.0,
                   help="share of requests answered 502 or 429 at random (0-1)")
    add_fault_arguments(p)
    args = p.parse_args(argv)
    token = args.token or os.environ.get("HUBSPOT_EMULATOR_TOKEN") or "demo-token"
    def make() -> HubspotEmulator:
        return HubspotEmulator(token, args.port, args.state_file, args.window_max, args.daily_limit, args.host,
                               fault_rate=args.fault_rate, seed=args.fault_seed, faults=dict(args.fault),
                               fault_hold_s=args.fault_hold)

    return serve_until_signalled(make, "hubspot", (OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
