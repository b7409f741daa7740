"""BottleCRM sink: one Account per unified customer, found by the customer id kept in an Account custom field; and
one Contact per contact person (erp2crm/contacts.py), found the same way by its contact key in a Contact custom
field, linked to its account through the Contact's `account` field.

Accounts, not Contacts, for companies and persons alike: the unified customer is the party that orders and
pays, and BottleCRM hangs deals, invoices and tickets on the Account; the profile has one `name`, while a
Contact needs first and last name (splitting is a guess, and wrong for companies); Contact emails are unique
per org, so two customers sharing an address would collide; and it is what the Salesforce target does.
`is_company` goes to a custom field. Caveat: Account names are unique per org (case-insensitive), so a second
customer with the same name is rejected with BottleCRM's error until someone tells them apart.

BottleCRM (django-crm 1.35.0) has no upsert and no batch write: each record is found, then created (POST) or
updated (PATCH), one request each. It is found by the CRM id of its last confirmed write (`known_ids`), else
by `GET /api/accounts/?cf_<key>=<customer id>` (an exact match on the custom field; the filter is in
accounts/views.py, not in the OpenAPI document), or, when many are unknown (a first push), by reading every
account once, page by page. A POST is never retried blindly: after a timeout or 5xx the account is searched
for first, so an account created whose answer was lost is updated, not created twice.
"""
from __future__ import annotations

from collections import defaultdict

import requests
from airflow.sdk import BaseHook

from connectors.hooks import base_url, get_connection, http_options
from connectors.http import HttpClient, default_classify
from connectors.salesforce import PushResult
from erp2crm.errors import ConfigError, TransientError

CF = "custom_fields."
# sobject → (API root, the detail answer's key); custom fields are per target model. A Contact's `account` is its
# account's CRM id (BottleCRM's "primary account"; setting it also lists the contact on the account).
RESOURCES = {"Account": ("accounts", "account_obj"), "Contact": ("contacts", "contact_obj")}


def classify(response: requests.Response):
    if response.status_code in (401, 403):  # a wrong or revoked token answers 403 "Organization context ..."
        return ConfigError(f"BottleCRM refused the token (HTTP {response.status_code}: {response.text[:200]}): the "
                           f"connection's password must be a valid bcrm_pat_ token with the scopes accounts:read, "
                           f"accounts:write and custom-fields:read (and contacts:read, contacts:write when "
                           f"contacts are pushed)")
    if response.status_code in (400, 404):  # one record's rejection, or a stale CRM id: decided per record
        return None
    return default_classify(response)


class BottlecrmHook(BaseHook):
    """Connection: host = BottleCRM's API server (https://crm.example.com), optional port,
    password = a personal access token (bcrm_pat_…) of an org admin profile."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm BottleCRM"

    def __init__(self, conn_id: str = "bottlecrm_default"):
        super().__init__()
        self.conn_id = conn_id

    def get_client(self) -> HttpClient:
        conn = get_connection(self.conn_id)
        if not conn.host or not (conn.password or "").startswith("bcrm_pat_"):
            raise ConfigError(f"connection {self.conn_id!r}: needs host (BottleCRM's URL) and password (a personal "
                              f"access token, bcrm_pat_…)")
        return HttpClient(base_url(conn), headers={"Authorization": f"Bearer {conn.password}", "Accept": "application/json"},
                          classify=classify, **http_options(conn))


def _errors(response: requests.Response) -> str:
    """BottleCRM's field errors, `field: message; …` (custom fields as `custom_fields.key`)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    errors = (body.get("errors") or body) if isinstance(body, dict) else body
    flat = []
    for field, messages in (errors.items() if isinstance(errors, dict) else [("", errors)]):
        if isinstance(messages, dict):
            flat += [f"{field}.{k}: {v}" for k, v in messages.items()]
        else:
            flat.append(f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}")
    return f"HTTP {response.status_code}: " + "; ".join(flat)


class BottlecrmSink:
    def __init__(self, client: HttpClient, sobject: str = "Account",
                 external_id_field: str = "custom_fields.erp2crm_customer_id", batch_size: int = 200,
                 scan_threshold: int = 50):
        if sobject not in RESOURCES:
            raise ConfigError(f"BottleCRM sink: sobject {sobject!r} is not supported ({', '.join(RESOURCES)})")
        if not external_id_field.startswith(CF):
            raise ConfigError(f"BottleCRM sink: external_id_field must be a custom field (custom_fields.<key>), "
                              f"got {external_id_field!r}: no built-in Account field can hold the customer id")
        self.client, self.sobject, self.root = client, sobject, f"api/{RESOURCES[sobject][0]}/"
        self.detail_key = RESOURCES[sobject][1]
        self.external_id_field, self.key = external_id_field, external_id_field[len(CF):]
        self.page_size = batch_size  # accounts per list request when scanning (writes are one per request)
        self.scan_threshold = scan_threshold  # from this many unknown records, one scan beats one search each

    def _get(self, path: str, **params) -> dict:
        response = self.client.request("GET", path, params=params)
        if response.status_code != 200:  # 400/404 pass classify for the writes; on a read they mean a wrong URL
            raise ConfigError(f"BottleCRM GET {path} → HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    def _custom_fields(self) -> set[str]:
        body = self._get("api/custom-fields/", target_model=self.sobject)
        return {d["key"] for d in body.get("definitions", []) if d.get("is_active")}

    def check(self) -> dict:
        """One authenticated read (the Account custom field definitions): proves the URL, the token and that
        the customer id field exists."""
        defined = self._custom_fields()
        if self.key not in defined:
            raise ConfigError(f"BottleCRM has no active {self.sobject} custom field {self.key!r} to hold the "
                              f"customer id: an org admin must create it (Text)")
        return {"custom_fields": len(defined)}

    def upsert(self, payloads: list[dict], known_ids: dict[str, str] | None = None) -> list[PushResult]:
        """One result per payload, in order. `known_ids`: customer id → CRM id of its last confirmed write."""
        if not payloads:
            return []
        used = {k[len(CF):] for p in payloads for k in p if k.startswith(CF)}
        missing = sorted(used - self._custom_fields())
        if missing:  # BottleCRM drops values of undefined custom fields without a word: refuse instead
            raise ConfigError(f"BottleCRM has no active {self.sobject} custom field(s) {', '.join(missing)}: an org "
                              f"admin must create them, or remove them from the mapping")
        known = known_ids or {}
        unknown = sum(p[self.external_id_field] not in known for p in payloads)
        found = self._scan() if unknown >= self.scan_threshold else None
        return [self._upsert_one(p, known.get(p[self.external_id_field]), found) for p in payloads]

    def archive(self, items: list[tuple[str, str | None]]) -> list[PushResult]:
        """Close records (is_active false: BottleCRM's closed accounts, inactive contacts), which BottleCRM lists
        apart and a user can reopen; nothing is deleted. (external id, CRM id or None) in, one result each."""
        return [self._set_active(ext, crm_id, False) for ext, crm_id in items]

    def reopen(self, items: list[tuple[str, str | None]]) -> list[PushResult]:
        """Undo `archive` for records that came back in the ERP, before they are written again."""
        return [self._set_active(ext, crm_id, True) for ext, crm_id in items]

    def _set_active(self, external_id: str, crm_id: str | None, active: bool) -> PushResult:
        crm_id = crm_id or next(iter(self._search(external_id)), None)
        if crm_id is None:  # reopening: the upsert that follows creates it
            return PushResult(external_id, active, error=None if active else
                              f"no BottleCRM {self.sobject} carries {external_id}")
        response = self.client.request("PATCH", f"{self.root}{crm_id}/", json={"is_active": active})
        if response.status_code == 404:  # deleted in BottleCRM since: nothing to close (the upsert recreates it)
            return PushResult(external_id, True, crm_id=crm_id)
        return self._result(external_id, response, crm_id, created=False)

    def current_values(self, crm_ids: list[str], fields: list[str]) -> dict[str, dict]:
        """The CRM's values of `fields` for these accounts, one GET each (BottleCRM has no batch read); an
        account deleted in BottleCRM since is left out, so its fields count as empty."""
        out = {}
        for crm_id in crm_ids:
            response = self.client.request("GET", f"{self.root}{crm_id}/")
            if response.status_code != 200:
                continue
            account = response.json().get(self.detail_key) or {}
            custom = account.get("custom_fields") or {}
            out[crm_id] = {f: custom.get(f[len(CF):]) if f.startswith(CF) else account.get(f) for f in fields}
        return out

    def _upsert_one(self, payload: dict, crm_id: str | None, found: dict | None) -> PushResult:
        external_id = payload[self.external_id_field]
        body = {k: v for k, v in payload.items() if not k.startswith(CF)}
        body["custom_fields"] = {k[len(CF):]: v for k, v in payload.items() if k.startswith(CF)}
        if crm_id:
            response = self.client.request("PATCH", f"{self.root}{crm_id}/", json=body)
            if response.status_code != 404:
                return self._result(external_id, response, crm_id, created=False)
            # 404: deleted or merged away in BottleCRM since our last write: find it again, or create it.
        matches = found.get(external_id, []) if found is not None else self._search(external_id)
        if len(matches) > 1:
            return PushResult(external_id, False, error=f"{len(matches)} BottleCRM accounts carry customer id "
                              f"{external_id} ({', '.join(matches)}): merge them in BottleCRM")
        if matches:
            response = self.client.request("PATCH", f"{self.root}{matches[0]}/", json=body)
            return self._result(external_id, response, matches[0], created=False)
        return self._create(external_id, body)

    def _create(self, external_id: str, body: dict) -> PushResult:
        for attempt in range(self.client.max_retries + 1):
            try:
                response = self._once("POST", self.root, json=body)
            except TransientError:
                if attempt == self.client.max_retries:
                    raise
                self.client.sleep(min(self.client.max_backoff_s, self.client.backoff_s * 2 ** attempt))
                matches = self._search(external_id)  # created, with the answer lost? then it is there now
                if len(matches) == 1:
                    response = self.client.request("PATCH", f"{self.root}{matches[0]}/", json=body)
                    return self._result(external_id, response, matches[0], created=True)
                continue
            crm_id = response.json().get("id") if response.status_code == 200 else None
            return self._result(external_id, response, crm_id, created=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request without HttpClient's own retries (the sink retries a POST only after a search)."""
        retries, self.client.max_retries = self.client.max_retries, 0
        try:
            return self.client.request(method, path, **kwargs)
        finally:
            self.client.max_retries = retries

    @staticmethod
    def _result(external_id: str, response: requests.Response, crm_id: str | None, created: bool) -> PushResult:
        if response.status_code == 200 and crm_id:
            return PushResult(external_id, True, created, crm_id)
        return PushResult(external_id, False, error=_errors(response))

    def _ids(self, page: dict) -> list[tuple[str, str]]:
        """(external id, CRM id) of every record in a list answer that carries an external id."""
        rows = page["results"] if self.sobject == "Contact" else \
            page["active_accounts"]["open_accounts"] + page["closed_accounts"]["close_accounts"]
        return [(str(a["custom_fields"][self.key]), a["id"]) for a in rows if (a.get("custom_fields") or {}).get(self.key)]

    def _total(self, page: dict) -> int:
        if self.sobject == "Contact":
            return page["count"]
        return max(page["active_accounts"]["open_accounts_count"], page["closed_accounts"]["close_accounts_count"])

    def _search(self, external_id: str) -> list[str]:
        page = self._get(self.root, limit=2, **{f"cf_{self.key}": external_id})
        return [crm_id for ext, crm_id in self._ids(page) if ext == external_id]

    def _scan(self) -> dict[str, list[str]]:
        """Customer id → CRM ids of every account; active and inactive accounts page side by side."""
        found, offset = defaultdict(list), 0
        while True:
            page = self._get(self.root, limit=self.page_size, offset=offset)
            for external_id, crm_id in self._ids(page):
                found[external_id].append(crm_id)
            offset += self.page_size
            if offset >= self._total(page):
                return found
