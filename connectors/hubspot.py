"""HubSpot sink: CRM v3 batch upsert of companies or contacts by a unique property, up to 100 inputs a call, and v4
batch associations between them (a contact with its company).

A 207 answer is a partial success: its errors name the failed inputs (context.ids), each a rejected record with
HubSpot's message. Results are matched to inputs by the id property's value, never by position: HubSpot does not
promise their order. 429 with policyName DAILY means the day's quota is used up (QuotaExhausted); any other 429
waits for the rolling window (Retry-After, else X-HubSpot-RateLimit-Interval-Milliseconds); 423 Locked (many
upserts in a short time) waits 2 seconds and 521 (web server down) is retried, as HubSpot's error-handling guide
says; 401 and 403 are config errors; a 400 rejects every record of its batch.
"""
from __future__ import annotations

import math
from decimal import Decimal

import requests
from airflow.sdk import BaseHook

from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient, default_classify
from connectors.salesforce import PushResult
from erp2crm.errors import ConfigError, DataError, QuotaExhausted, TransientError

DEFAULT_BASE_URL = "https://api.hubapi.com"
MAX_BATCH = 100
WINDOW_MS = 10_000  # HubSpot's burst window, for an answer that does not state it
LOCK_WAIT_S = 2  # HubSpot's guide: after a 423, wait at least 2 seconds


def _header_int(headers, name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def _describe(response: requests.Response) -> tuple[dict, str]:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    kind = doc.get("category") or doc.get("errorType") or "error"
    return doc, f"HubSpot HTTP {response.status_code} {kind}: {doc.get('message') or response.text[:300]}"


def classify(response: requests.Response):
    if response.status_code < 400:
        return None
    doc, what = _describe(response)
    if response.status_code in (401, 403):
        return ConfigError(f"{what} (check the connection's private app token and its scopes)")
    if response.status_code == 429:
        # Only policyName tells the daily quota from the 10-second window; a daily quota comes back tomorrow.
        if doc.get("policyName") == "DAILY" or response.headers.get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
            return QuotaExhausted(f"HubSpot daily request limit reached ({what})")
        return TransientError(what)
    if response.status_code in (423, 521):  # locked for a moment; web server down: both pass in seconds
        return TransientError(what)
    if response.status_code == 400:
        if "non-unique" in str(doc.get("message")):  # the id property is not unique: every batch would fail
            return ConfigError(f"{what} (the mapping's external_id_field must be a unique property)")
        return DataError(what)
    return default_classify(response)


def _wait_for_window(response: requests.Response, *args, **kwargs) -> requests.Response:
    """HubSpot's 429 may come without Retry-After, and HttpClient honours only Retry-After: a 10-second-window
    429 then waits for the window stated by the answer (its daily limit is never retried), a 423 LOCK_WAIT_S."""
    if response.status_code == 429 and "Retry-After" not in response.headers:
        ms = _header_int(response.headers, "X-HubSpot-RateLimit-Interval-Milliseconds") or WINDOW_MS
        response.headers["Retry-After"] = str(math.ceil(ms / 1000))
    if response.status_code == 423 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(LOCK_WAIT_S)
    return response


def hubspot_client(base_url: str, token: str, **kwargs) -> HttpClient:
    client = HttpClient(base_url, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                        classify=classify, **kwargs)
    client.session.hooks["response"].append(_wait_for_window)
    return client


class HubspotHook(BaseHook):
    """Connection: host = API base URL (default https://api.hubapi.com), password = private app token."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm HubSpot"

    def __init__(self, conn_id: str = "hubspot_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> HttpClient:
        conn = get_connection(self.conn_id)
        if not conn.password:
            raise ConfigError(f"connection {self.conn_id!r}: needs password (the private app's access token)")
        return hubspot_client(base_url(conn, host=conn.host or DEFAULT_BASE_URL), conn.password, **http_options(conn))


def as_property_value(value) -> str:
    """HubSpot property values are strings: None is "" (which clears the property, so a cleared profile field is
    cleared in the CRM too), booleans "true"/"false", numbers written out in full (1e-05 is "0.00001")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, (list, tuple)):
        return ";".join(as_property_value(v) for v in value)  # HubSpot's separator for several values
    return str(value)


class HubspotSink:
    def __init__(self, client: HttpClient, object_type: str, id_property: str, batch_size: int = MAX_BATCH,
                 sleep=None):
        self.client, self.object_type, self.id_property = client, object_type, id_property
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.sleep = sleep or client.sleep  # one injected sleep serves the retries and the pacing
        self._limits = None  # rate-limit headers of the last answer

    def check(self) -> dict:
        """One authenticated read of one record (writes nothing): proves the base URL, the token and the object's
        read scope, and reports the rate limits."""
        headers = self.client.request("GET", f"crm/v3/objects/{self.object_type}", params={"limit": 1}).headers
        return {"daily_limit": _header_int(headers, "X-HubSpot-RateLimit-Daily"),
                "daily_remaining": _header_int(headers, "X-HubSpot-RateLimit-Daily-Remaining"),
                "window_max": _header_int(headers, "X-HubSpot-RateLimit-Max"),
                "window_remaining": _header_int(headers, "X-HubSpot-RateLimit-Remaining")}

    def upsert(self, payloads: list[dict], known_ids: dict[str, str] | None = None) -> list[PushResult]:
        """Upsert by the unique id property (`known_ids`, the CRM ids of earlier writes, are not needed here)."""
        results = []
        for start in range(0, len(payloads), self.batch_size):
            self._pace()
            results += self._upsert_batch(payloads[start:start + self.batch_size])
        return results

    def current_values(self, crm_ids: list[str], fields: list[str]) -> dict[str, dict]:
        """The CRM's values of `fields` for these records (batch read by record id, 100 a call)."""
        out = {}
        for start in range(0, len(crm_ids), self.batch_size):
            self._pace()
            inputs = [{"id": i} for i in crm_ids[start:start + self.batch_size]]
            response = self.client.request("POST", f"crm/v3/objects/{self.object_type}/batch/read",
                                           json={"properties": fields, "inputs": inputs})
            self._limits = response.headers
            out.update({r["id"]: r.get("properties") or {} for r in response.json().get("results") or []})
        return out

    def archive(self, items: list[tuple[str, str | None]]) -> list[PushResult]:
        """Archive records by record id (batch archive, 100 a call; 204, idempotent); one result each."""
        known = [(ext, crm_id) for ext, crm_id in items if crm_id]
        for start in range(0, len(known), self.batch_size):
            self._pace()
            inputs = [{"id": crm_id} for _, crm_id in known[start:start + self.batch_size]]
            self._limits = self.client.request("POST", f"crm/v3/objects/{self.object_type}/batch/archive",
                                               json={"inputs": inputs}).headers
        return [PushResult(ext, True, crm_id=crm_id) if crm_id else
                PushResult(ext, False, error="no HubSpot record id known for this record") for ext, crm_id in items]

    def associate(self, to_type: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
        """Associate records of this object with records of `to_type` by the v4 default association type
        (batch/associate/default, 100 pairs a call); idempotent. (record id, other id) in; the error of each record
        id whose association failed out (absent: associated)."""
        failed: dict[str, str] = {}
        for start in range(0, len(pairs), self.batch_size):
            self._pace()
            batch = pairs[start:start + self.batch_size]
            inputs = [{"from": {"id": a}, "to": {"id": b}} for a, b in batch]
            path = f"crm/v4/associations/{self.object_type}/{to_type}/batch/associate/default"
            try:
                response = self.client.request("POST", path, json={"inputs": inputs})
            except DataError as e:  # a 400 for the batch: none of it is associated
                self._limits = None
                failed.update({a: str(e) for a, _ in batch})
                continue
            self._limits = response.headers
            doc = response.json()
            done = {str((r.get("from") or {}).get("id")) for r in doc.get("results") or []}
            errors = "; ".join(f"{e.get('category', 'error')}: {e.get('message')}" for e in doc.get("errors") or [])
            failed.update({a: errors or "HubSpot returned no result for it" for a, _ in batch if a not in done})
        return failed

    def dissociate(self, to_type: str, pairs: list[tuple[str, str]]) -> None:
        """Remove associations (batch/archive, 100 a call, 204; removing one that does not exist is harmless)."""
        for start in range(0, len(pairs), self.batch_size):
            self._pace()
            inputs = [{"from": {"id": a}, "to": [{"id": b}]} for a, b in pairs[start:start + self.batch_size]]
            path = f"crm/v4/associations/{self.object_type}/{to_type}/batch/archive"
            self._limits = self.client.request("POST", path, json={"inputs": inputs}).headers

    def _pace(self) -> None:
        """Wait out the rolling window when the last answer said it is used up, instead of earning a 429
        (answers with errors count against HubSpot's error-rate guideline)."""
        if self._limits is not None and _header_int(self._limits, "X-HubSpot-RateLimit-Remaining") == 0:
            ms = _header_int(self._limits, "X-HubSpot-RateLimit-Interval-Milliseconds") or WINDOW_MS
            self.sleep(ms / 1000)

    def _upsert_batch(self, batch: list[dict]) -> list[PushResult]:
        keys = [as_property_value(p.get(self.id_property)) for p in batch]
        inputs = [{"id": key, "idProperty": self.id_property,
                   "properties": {k: as_property_value(v) for k, v in payload.items()}}
                  for key, payload in zip(keys, batch)]
        try:
            response = self.client.request("POST", f"crm/v3/objects/{self.object_type}/batch/upsert",
                                           json={"inputs": inputs})
        except DataError as e:  # a 400 for the batch: its records are rejected with HubSpot's message; others go on
            self._limits = None
            return [PushResult(key, False, error=str(e)) for key in keys]
        self._limits = response.headers
        doc = response.json()
        written, folded = {}, {}  # folded: HubSpot may send an email id property back lower-cased
        for result in doc.get("results") or []:
            value = (result.get("properties") or {}).get(self.id_property)
            if isinstance(value, str):
                written[value] = result
                folded.setdefault(value.casefold(), result)
        failed, unnamed = {}, []
        for error in doc.get("errors") or []:
            message = f"{error.get('category', 'error')}: {error.get('message')}"
            ids = (error.get("context") or {}).get("ids") or []
            for key in ids:
                failed.setdefault(str(key), []).append(message)
            if not ids:
                unnamed.append(message)
        out = []
        for key in keys:
            result = written.get(key) or folded.get(key.casefold())
            if key in failed:
                out.append(PushResult(key, False, error="; ".join(failed[key])))
            elif result is not None:
                out.append(PushResult(key, True, bool(result.get("new")), result.get("id")))
            else:  # not sent back: unconfirmed, so sent again next run
                out.append(PushResult(key, False, error="; ".join(unnamed) or "HubSpot returned no result for it"))
        return out
