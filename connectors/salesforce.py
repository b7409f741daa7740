"""Salesforce sink: sObject Collections upsert by an external id field, up to 200 records a call, or a Bulk API 2.0
ingest upsert (connectors/salesforce_bulk.py) from `bulk_threshold` records on.

A 200 answer carries one result per record: a failure inside it is a rejected record, not a success.
403 REQUEST_LIMIT_EXCEEDED means the org's daily quota is used up (QuotaExhausted), unless its message names the
concurrent request limit (transient: retried). A 401 INVALID_SESSION_ID is an
expired session: SalesforceClient renews it once through the OAuth token endpoint when the connection holds refresh
credentials; otherwise, or when renewing fails, it is a config error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from airflow.sdk import BaseHook

from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient, default_classify
from erp2crm.errors import ConfigError, Erp2CrmError, QuotaExhausted, TransientError

log = logging.getLogger(__name__)
DEFAULT_BULK_THRESHOLD = 10_000  # as TargetConfig.bulk_threshold's default
TOKEN_PATH = "services/oauth2/token"


@dataclass
class PushResult:
    external_id: str
    ok: bool
    created: bool = False
    crm_id: str | None = None
    error: str | None = None


class SessionRejected(ConfigError):
    """A 401: the access token expired or is wrong. A config error unless the client can renew the session."""


def classify(response: requests.Response):
    if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in response.text:
        # The same code answers the concurrent long-running request limit ("ConcurrentRequests (Concurrent API
        # Requests) Limit exceeded", "ConcurrentPerOrgLongTxn Limit exceeded"): it frees up in seconds, retry.
        if "Concurrent" in response.text:
            return TransientError(f"Salesforce concurrent request limit exceeded: {response.text[:300]}")
        return QuotaExhausted(f"Salesforce daily request limit exceeded ({response.headers.get('Sforce-Limit-Info', '')})")
    if response.status_code == 401:
        return SessionRejected("Salesforce rejected the session (401 INVALID_SESSION_ID): check the connection's token")
    return default_classify(response)


def oauth_grant(extra: dict, conn_id: str) -> dict[str, str] | None:
    """The token request's form from the connection's extra: the refresh token flow (client_id, refresh_token,
    client_secret if the connected app requires it) or else the client credentials flow (client_id,
    client_secret); None when the extra has neither."""
    creds = {k: extra[k] for k in ("client_id", "client_secret", "refresh_token") if extra.get(k)}
    if not creds:
        return None
    if "client_id" not in creds or not ({"refresh_token", "client_secret"} & set(creds)):
        raise ConfigError(f"connection {conn_id!r}: extra has {', '.join(sorted(creds))} but renewing a Salesforce "
                          f"session needs client_id with refresh_token (refresh token flow) or with client_secret "
                          f"(client credentials flow)")
    grant = "refresh_token" if "refresh_token" in creds else "client_credentials"
    return {"grant_type": grant, **creds}


class SalesforceClient(HttpClient):
    """The HttpClient of one org that renews an expired session in one place, for every call site: on a 401 it
    asks the OAuth token endpoint (on the instance URL) for a new access token once and repeats the request. A
    401 changed nothing, so the repeat is safe. The grant holds secrets: it is never logged nor put in an error."""

    def __init__(self, base_url: str, access_token: str | None, grant: dict[str, str] | None, conn_id: str,
                 **kwargs):
        super().__init__(base_url, headers={"Content-Type": "application/json"}, classify=classify, **kwargs)
        self._grant, self.conn_id = grant, conn_id
        if access_token:
            self.session.headers["Authorization"] = f"Bearer {access_token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        if "Authorization" not in self.session.headers:  # no access token in the connection: get one first
            self.renew_session("the connection holds no access token")
        try:
            return super().request(method, path, **kwargs)
        except SessionRejected:
            self.renew_session("Salesforce answered 401 INVALID_SESSION_ID")
        try:
            return super().request(method, path, **kwargs)
        except SessionRejected:
            raise ConfigError(f"connection {self.conn_id!r}: Salesforce rejected the session it had just renewed "
                              f"(401 INVALID_SESSION_ID): check the connected app's OAuth policies and the user's "
                              f"API permission") from None

    def renew_session(self, why: str) -> None:
        if self._grant is None:
            raise ConfigError(f"connection {self.conn_id!r}: Salesforce rejected the session (401 INVALID_SESSION_ID) "
                              f"and the connection has no refresh credentials: put a fresh access token in its "
                              f"password, or add client_id with refresh_token (refresh token flow) or with "
                              f"client_secret (client credentials flow) to its extra so sessions renew themselves")
        log.info("renewing the Salesforce session of connection %r (%s) with the OAuth %s flow", self.conn_id, why,
                 self._grant["grant_type"])
        self.session.headers.pop("Authorization", None)
        try:
            response = super().request("POST", TOKEN_PATH, data=self._grant,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        except TransientError:
            raise
        except Erp2CrmError as e:  # 400 invalid_grant/invalid_client...: the answer names no secret
            raise ConfigError(f"connection {self.conn_id!r}: renewing the Salesforce session failed ({e}): check the "
                              f"extra's client_id, client_secret and refresh_token, or put a fresh access token in "
                              f"the password") from None
        token = response.json().get("access_token") if "json" in response.headers.get("Content-Type", "") else None
        if not token:
            raise ConfigError(f"connection {self.conn_id!r}: the Salesforce token endpoint answered without an "
                              f"access_token")
        self.session.headers["Authorization"] = f"Bearer {token}"


class SalesforceHook(BaseHook):
    """Connection: host = instance URL (https://….my.salesforce.com), password = access token, extra
    {"api_version": "v60.0"} and, so that an expired session renews itself, {"client_id", "refresh_token"
    (+ "client_secret" if the connected app requires it)} or {"client_id", "client_secret"} (client credentials
    flow; then the password may stay empty). Airflow masks extra keys named *secret* and *token* in its logs."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm Salesforce"

    def __init__(self, conn_id: str = "salesforce_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> tuple[SalesforceClient, str]:
        conn = get_connection(self.conn_id)
        extra = conn.extra_dejson or {}
        grant = oauth_grant(extra, self.conn_id)
        if not conn.host or not (conn.password or grant):
            raise ConfigError(f"connection {self.conn_id!r}: needs host (instance URL) and password (access token) "
                              f"or refresh credentials in its extra")
        client = SalesforceClient(base_url(conn), conn.password or None, grant, self.conn_id,
                                  **http_options(conn))
        return client, extra.get("api_version", "v60.0")


class SalesforceSink:
    def __init__(self, client: HttpClient, api_version: str, sobject: str, external_id_field: str,
                 batch_size: int = 200, bulk_threshold: int | None = DEFAULT_BULK_THRESHOLD):
        from connectors.salesforce_bulk import BulkUpsert  # here: that module needs PushResult from this one

        self.client, self.api_version = client, api_version
        self.sobject, self.external_id_field = sobject, external_id_field
        self.batch_size = min(batch_size, 200)
        self.bulk_threshold = bulk_threshold  # None: always sObject Collections
        self.bulk = BulkUpsert(client, api_version, sobject, external_id_field)

    def check(self) -> dict:
        """An authenticated call that writes nothing (the Limits resource): proves the instance URL and the token,
        and reports the day's remaining API requests."""
        limits = self.client.request("GET", f"services/data/{self.api_version}/limits").json()
        daily = limits.get("DailyApiRequests", {}) if isinstance(limits, dict) else {}
        return {"daily_api_requests_max": daily.get("Max"), "daily_api_requests_remaining": daily.get("Remaining")}

    def upsert(self, payloads: list[dict], known_ids: dict[str, str] | None = None) -> list[PushResult]:
        """Upsert by external id (`known_ids`, the CRM ids of earlier writes, are not needed here). From
        `bulk_threshold` payloads on, one Bulk API 2.0 job costs about six calls whatever its size, against one
        call per 200 records; below it, Collections answer at once, record by record."""
        if self.bulk_threshold is not None and len(payloads) >= self.bulk_threshold:
            return self.bulk.upsert(payloads)
        results = []
        for start in range(0, len(payloads), self.batch_size):
            results += self._upsert_batch(payloads[start:start + self.batch_size])
        return results

    def current_values(self, crm_ids: list[str], fields: list[str]) -> dict[str, dict]:
        """The CRM's values of `fields` for these records (sObject Collections retrieve, 2,000 Ids a call)."""
        out = {}
        for start in range(0, len(crm_ids), 2000):
            body = {"ids": crm_ids[start:start + 2000], "fields": fields}
            records = self.client.request("POST", f"services/data/{self.api_version}/composite/sobjects/"
                                                  f"{self.sobject}", json=body).json()
            out.update({r["Id"]: {f: r.get(f) for f in fields} for r in records or [] if r})
        return out

    def archive(self, items: list[tuple[str, str | None]]) -> list[PushResult]:
        """Delete records by CRM id (to the recycle bin), 200 a call; (external id, CRM id) in, one result each."""
        results: dict[str, PushResult] = {}
        known = [(ext, crm_id) for ext, crm_id in items if crm_id]
        for start in range(0, len(known), 200):
            batch = known[start:start + 200]
            answers = self.client.request("DELETE", f"services/data/{self.api_version}/composite/sobjects",
                                          params={"ids": ",".join(c for _, c in batch), "allOrNone": "false"}).json()
            by_id = {a.get("id"): a for a in answers or []}
            for ext, crm_id in batch:
                answer = by_id.get(crm_id, {})
                gone = any(e.get("statusCode") == "ENTITY_IS_DELETED" for e in answer.get("errors", []))
                results[ext] = PushResult(ext, bool(answer.get("success")) or gone, crm_id=crm_id,
                                          error=None if answer.get("success") or gone else
                                          "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                                                    for e in answer.get("errors", [])) or "no result")
        return [results.get(ext) or PushResult(ext, False, error="no Salesforce id known for this record")
                for ext, _ in items]

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
