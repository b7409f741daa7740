"""Salesforce sink: sObject Collections upsert by an external id field, up to 200 records a call.

A 200 answer carries one result per record: a failure inside it is a rejected record, not a success.
403 REQUEST_LIMIT_EXCEEDED means the org's daily quota is used up (QuotaExhausted); 401 is a config error.
"""
from __future__ import annotations

from dataclasses import dataclass

import requests
from airflow.sdk import BaseHook

from connectors.hooks import base_url, get_connection
from connectors.http import HttpClient, default_classify
from erp2crm.errors import ConfigError, QuotaExhausted


@dataclass
class PushResult:
    external_id: str
    ok: bool
    created: bool = False
    crm_id: str | None = None
    error: str | None = None


def classify(response: requests.Response):
    if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text:
        return QuotaExhausted(f"Salesforce daily request limit exceeded ({response.headers.get('Sforce-Limit-Info', '')})")
    if response.status_code == 401:
        return ConfigError("Salesforce rejected the session (401 INVALID_SESSION_ID): check the connection's token")
    return default_classify(response)


class SalesforceHook(BaseHook):
    """Connection: host = instance URL (https://….my.salesforce.com), password = access token,
    extra {"api_version": "v60.0"}."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm Salesforce"

    def __init__(self, conn_id: str = "salesforce_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> tuple[HttpClient, str]:
        conn = get_connection(self.conn_id)
        if not conn.host or not conn.password:
            raise ConfigError(f"connection {self.conn_id!r}: needs host (instance URL) and password (access token)")
        base = base_url(conn)
        version = (conn.extra_dejson or {}).get("api_version", "v60.0")
        client = HttpClient(base, headers={"Authorization": f"Bearer {conn.password}",
                                           "Content-Type": "application/json"}, classify=classify)
        return client, version


class SalesforceSink:
    def __init__(self, client: HttpClient, api_version: str, sobject: str, external_id_field: str, batch_size: int = 200):
        self.client, self.api_version = client, api_version
        self.sobject, self.external_id_field = sobject, external_id_field
        self.batch_size = min(batch_size, 200)

    def check(self) -> dict:
        """An authenticated call that writes nothing (the Limits resource): proves the instance URL and the token,
        and reports the day's remaining API requests."""
        limits = self.client.request("GET", f"services/data/{self.api_version}/limits").json()
        daily = limits.get("DailyApiRequests", {}) if isinstance(limits, dict) else {}
        return {"daily_api_requests_max": daily.get("Max"), "daily_api_requests_remaining": daily.get("Remaining")}

    def upsert(self, payloads: list[dict], known_ids: dict[str, str] | None = None) -> list[PushResult]:
        """Upsert by external id (`known_ids`, the CRM ids of earlier writes, are not needed here)."""
        results = []
        for start in range(0, len(payloads), self.batch_size):
            results += self._upsert_batch(payloads[start:start + self.batch_size])
        return results

    def _upsert_batch(self, batch: list[dict]) -> list[PushResult]:
        body = {"allOrNone": False,
                "records": [{"attributes": {"type": self.sobject}, **payload} for payload in batch]}
        path = f"services/data/{self.api_version}/composite/sobjects/{self.sobject}/{self.external_id_field}"
        answers = self.client.request("PATCH", path, json=body).json()
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise ConfigError(f"Salesforce answered {len(answers) if isinstance(answers, list) else type(answers).__name__} "
                              f"results for {len(batch)} records")
        out = []
        for payload, answer in zip(batch, answers):
            external_id = payload[self.external_id_field]
            if answer.get("success"):
                out.append(PushResult(external_id, True, bool(answer.get("created")), answer.get("id")))
            else:
                errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                                   + (f" ({', '.join(e.get('fields') or [])})" if e.get("fields") else "")
                                   for e in answer.get("errors", []))
                out.append(PushResult(external_id, False, error=errors or "rejected without an error message"))
        return out
