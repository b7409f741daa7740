"""Contact persons of company customers on a CRM target: which CRM contact each becomes, and their push, which runs
after the accounts' in the same push task.

Key: a CRM contact's external id is "<source_system>:<source_id>" of the ERP record it is built from ("odoo:1178",
"erpnext:Anna Richter-CUST-00140"). It does not depend on the unified customer, so a contact whose customer is
merged into another keeps its CRM record: the crosswalk attaches it to the survivor, its account link changes and
it is updated. Contacts are never part of identity resolution.

Dedupe: the contacts of one unified customer with the same normalised e-mail (reconcile.normalize.norm_email) are
one person and one CRM contact: its values are those of the most recently updated record, its key the smallest
key among them already confirmed in the target (so that it never changes once written), else the smallest key;
`source_ids` lists every record. Contacts without an e-mail are never merged.

A contact is sent only when its account is in the target (a confirmed write of its customer, not retired);
otherwise it is deferred with a receipt and sent by a later run, once its account is there. The push state of
each contact (payload hash of the payload and its account link, CRM id, the customer it was linked to) is in
contact_push_state, its receipts in contact_receipts. Modes apply as to accounts: update_only never creates a
contact, create_only never updates one.

Retirement, as for accounts (target `retire: flag | archive`): a CRM contact whose key became one of another CRM
contact's records (its customer was merged into one holding the same person) is retired as "merged" in every mode
but create_only; in mirror mode, one whose ERP records are all gone, or inactive, is retired as "gone" or
"inactive". Flag writes the contacts section's status_field (a mapping without one leaves the contact as it is, with
a skipped receipt saying so); archive deletes the record. A retired contact that comes back is written again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from connectors.outbound import OutboundMapping, build_contact_payload, payload_hash
from erp2crm.config import TargetConfig
from erp2crm.errors import Erp2CrmError
from hub import HubStore
from hub.store import utcnow


@dataclass
class ContactPlan:
    send: list = field(default_factory=list)  # (key, payload, hash, customer_id)
    unchanged: list = field(default_factory=list)  # (key, customer_id)
    skipped: list = field(default_factory=list)  # (key, customer_id, why)
    deferred: list = field(default_factory=list)  # (key, customer_id, why)
    retire: list = field(default_factory=list)  # (key, customer_id, reason, crm_id)


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """(first, last) of a name kept in one field: a Chinese name of up to four characters is family name (one
    character, two for a compound surname) and given name, 王伟 → (伟, 王); otherwise the last word is the family
    name, "Anna Schmidt" → (Anna, Schmidt). A guess, made only for CRMs that hold two name fields."""
    from reconcile.normalize import _CJK, COMPOUND_SURNAMES

    text = " ".join((name or "").split())
    if not text:
        return None, None
    if _CJK.search(text) and " " not in text and len(text) <= 4:
        family = text[:2] if text[:2] in COMPOUND_SURNAMES else text[:1]
        return text[len(family):] or None, family
    first, _, last = text.rpartition(" ")
    return first or None, last


def _values(row) -> dict:
    """What a contact's CRM fields are built from (connectors.outbound.CONTACT_FIELDS)."""
    given, family = row["given_name"], row["family_name"]
    if not (given and family):
        given, family = split_name(row["name"] or " ".join(p for p in (given, family) if p))
    email = row["email"].strip().lower() if isinstance(row["email"], str) and row["email"].strip() else None
    return {"name": row["name"], "given_name": row["given_name"], "family_name": row["family_name"],
            "first_name": given, "last_name": family or email, "email": email, "phone": row["phone"],
            "job_title": row["job_title"], "is_active": row["is_active"], "updated_at": row["updated_at"],
            "source_ids": row["source_ids"], "customer_id": row["customer_id"]}


CONTACT_STATE_COLUMNS = ["target", "contact_key", "customer_id", "payload_hash", "crm_id", "retired_at"]


def crm_contacts(hub: HubStore, confirmed_keys: set[str]) -> pd.DataFrame:
    """One row per CRM contact (deduplicated, see the module docstring): key, customer_id (None when its customer
    record is not unified), source_ids (JSON list) and the values of its most recently updated record."""
    from reconcile.normalize import norm_email

    contacts = hub.read_entity("contact")
    if contacts.empty:
        return contacts.assign(key=[], customer_id=[], source_ids=[])
    crosswalk = hub.read_table("crosswalk")[["source_system", "source_id", "customer_id"]]
    rows = contacts.merge(crosswalk.rename(columns={"source_id": "customer_source_id"}), how="left",
                          on=["source_system", "customer_source_id"])
    rows["key"] = rows["source_system"] + ":" + rows["source_id"]
    email = rows["email"].map(norm_email)
    person = rows["customer_id"].notna() & email.notna()
    rows["group"] = ("@" + rows["key"]).where(~person, rows["customer_id"].astype(str) + "\x1f" + email.astype(str))
    rows["unconfirmed"] = ~rows["key"].isin(confirmed_keys)
    first_key = rows.sort_values(["group", "unconfirmed", "key"]).drop_duplicates("group").set_index("group")["key"]
    sources = rows.sort_values("key").groupby("group")["key"].agg(lambda keys: json.dumps(list(keys)))
    latest = rows.sort_values(["updated_at", "key"], ascending=[False, True], na_position="last")
    latest = latest.drop_duplicates("group").set_index("group")
    latest["key"], latest["source_ids"] = first_key, sources
    latest["customer_id"] = latest["customer_id"].astype(object).where(latest["customer_id"].notna(), None)
    return latest.reset_index(drop=True).sort_values("key", ignore_index=True)


def plan_contacts(hub: HubStore, target: TargetConfig, mapping: OutboundMapping, state: pd.DataFrame) -> ContactPlan:
    """What the contact push does; `state` is this target's contact_push_state."""
    accounts = hub.read_table("push_state", ["target", "customer_id", "crm_id", "retired_at"])
    accounts = accounts[accounts["target"] == target.name]
    retired = set(accounts.loc[accounts["retired_at"].notna(), "customer_id"])
    accounts = accounts[accounts["retired_at"].isna()]
    account_ids = dict(zip(accounts["customer_id"], accounts["crm_id"]))
    confirmed = dict(zip(state["contact_key"], state["payload_hash"]))
    retired = set(state.loc[state["retired_at"].notna(), "contact_key"])
    out = ContactPlan()
    current = crm_contacts(hub, set(confirmed)).to_dict("records")
    retiring = _to_retire(target, state, current)
    for row in current:
        key, customer = row["key"], row["customer_id"]
        if key in retiring:
            continue
        if target.mode == "mirror" and _inactive(row):  # retired, or never created
            if key in retired:
                out.unchanged.append((key, customer))
            else:
                out.skipped.append((key, customer, "mirror: inactive in the ERP, not created"))
            continue
        if customer is None:
            out.deferred.append((key, None, "its customer record is not unified yet"))
        elif customer not in account_ids:
            out.deferred.append((key, customer, "its account is retired in the CRM" if customer in retired
                                 else "its account is not in the CRM yet"))
        elif target.mode == "update_only" and key not in confirmed:
            out.skipped.append((key, customer, "update_only: the target holds no record of this contact"))
        elif target.mode == "create_only" and key in confirmed:
            out.unchanged.append((key, customer))
        else:
            payload = build_contact_payload(mapping, key, _values(row), customer, account_ids[customer])
            digest = payload_hash({"payload": payload, "account": [customer, account_ids[customer]]})
            if confirmed.get(key) == digest:
                out.unchanged.append((key, customer))
            else:
                out.send.append((key, payload, digest, customer))
    out.retire = sorted(retiring.values())
    return out


def _inactive(row: dict) -> bool:
    active = row["is_active"]
    return active is not None and not pd.isna(active) and not bool(active)


def _to_retire(target: TargetConfig, state: pd.DataFrame, current: list[dict]) -> dict[str, tuple]:
    """key → (key, customer_id, reason, crm_id) of the CRM contacts to retire now (module docstring)."""
    if target.mode == "create_only":
        return {}
    keys = {row["key"] for row in current}
    absorbed = {k for row in current for k in json.loads(row["source_ids"]) if k != row["key"]}
    out = {}
    if target.mode == "mirror":
        out = {row["key"]: (row["key"], row["customer_id"], "inactive") for row in current if _inactive(row)}
    held = state[state["retired_at"].isna()]
    for key, customer in zip(held["contact_key"], held["customer_id"]):
        if key in keys:
            continue
        if key in absorbed:
            out[key] = (key, customer, "merged")
        elif target.mode == "mirror":
            out[key] = (key, customer, "gone")
    crm_ids = dict(zip(state["contact_key"], state["crm_id"]))
    retired = set(state.loc[state["retired_at"].notna(), "contact_key"])
    return {k: (*v, crm_ids.get(k)) for k, v in out.items() if k in crm_ids and k not in retired}


def push_contacts(hub: HubStore, run_id: str, target: TargetConfig, mapping: OutboundMapping) -> dict:
    """Push the contacts after the accounts: batch by batch, each batch's confirmed writes saved at once."""
    from connectors.registry import open_sink
    from erp2crm.push import batches, fill_if_empty, reopen

    section = mapping.contacts
    state = hub.read_table("contact_push_state", CONTACT_STATE_COLUMNS)  # not the payloads: only the dry run needs those
    state = state[state["target"] == target.name]
    work = plan_contacts(hub, target, mapping, state)
    log = _ContactLog(hub, target, run_id)
    log.receipts += [log.receipt(k, c, "unchanged") for k, c in work.unchanged]
    log.receipts += [log.receipt(k, c, "skipped", note=why) for k, c, why in work.skipped]
    log.receipts += [log.receipt(k, c, "deferred", note=why) for k, c, why in work.deferred]
    api_calls, stopped, sent, retired = 0, None, 0, False
    if work.send or work.retire:
        sink = open_sink(target, section.sobject, section.external_id_field, bulk=False)
        held = state[state["retired_at"].isna()]
        known = {k: i for k, i in zip(held["contact_key"], held["crm_id"]) if isinstance(i, str) and i}
        linked_to = dict(zip(state["contact_key"], state["customer_id"]))
        to_send = work.send
        try:
            every_id = {k: i for k, i in zip(state["contact_key"], state["crm_id"]) if isinstance(i, str) and i}
            to_send = reopen(sink, target, state, "contact_key", work.send, every_id, log)
            items = [(k, p, d) for k, p, d, _ in to_send]
            payloads = fill_if_empty(sink, section.fill_if_empty(), target.name, items, known)
            for batch in batches(sink, target, payloads):
                chunk = to_send[sent:sent + len(batch)]
                results = sink.upsert(batch, known_ids=known)
                if section.account.association:
                    results = _associate(hub, target, sink, section.account.association, chunk, results, linked_to)
                log.written(chunk, results)
                sent += len(batch)
            if work.retire:
                log.retired(work.retire, _retire(sink, target, section, work.retire, known))
            retired = True
        except Erp2CrmError as e:
            stopped = e
            log.receipts += [log.receipt(k, c, "unsent", error=str(e), payload_hash=d)
                             for k, _, d, c in to_send[sent:]]
            if not retired:
                log.receipts += [log.receipt(k, c, "unsent", error=str(e), note=reason)
                                 for k, c, reason, _ in work.retire]
        api_calls = sink.client.requests_sent
    log.flush()
    if stopped is not None:
        raise stopped
    return {"crm_object": section.sobject, "sent": len(work.send), "to_retire": len(work.retire), **log.counts,
            "unchanged": len(work.unchanged), "skipped": len(work.skipped) + log.counts.pop("not_flagged"),
            "deferred": len(work.deferred), "api_calls": api_calls}


def _retire(sink, target: TargetConfig, section, retire: list, known: dict[str, str]) -> list:
    """The PushResult of each (key, customer, reason, crm_id) retired, or None for all when flagging is not possible
    (the contacts section has no status_field)."""
    if target.retire == "archive":
        return sink.archive([(key, crm_id) for key, _, _, crm_id in retire])
    if not section.status_field:
        return [None] * len(retire)
    flags = [{section.external_id_field: key, section.status_field: reason} for key, _, reason, _ in retire]
    return sink.upsert(flags, known_ids=known)


def _associate(hub: HubStore, target: TargetConfig, sink, to_type: str, chunk: list, results: list,
               linked_to: dict) -> list:
    """HubSpot: associate each written contact with its account's record (v4 default association), and remove its
    association with the account it was linked to before, when it moved (its customer was merged into another). A
    contact whose association failed is not confirmed: the next run sends it again."""
    from connectors.salesforce import PushResult

    accounts = hub.read_table("push_state", ["target", "customer_id", "crm_id"])
    crm_id = dict(zip(*(accounts.loc[accounts["target"] == target.name, c] for c in ("customer_id", "crm_id"))))
    pairs = [(r.crm_id, crm_id[customer]) for (_, _, _, customer), r in zip(chunk, results) if r.ok]
    failed = sink.associate(to_type, pairs)
    moved = [(r.crm_id, crm_id[linked_to[key]]) for (key, _, _, customer), r in zip(chunk, results)
             if r.ok and r.crm_id not in failed and linked_to.get(key) not in (None, customer)
             and isinstance(crm_id.get(linked_to[key]), str)]
    if moved:
        sink.dissociate(to_type, moved)
    return [PushResult(r.external_id, False, error=f"written, but not associated with its account: {failed[r.crm_id]}")
            if r.ok and r.crm_id in failed else r for r in results]


class _ContactLog:
    """A contact push's receipts and confirmed writes; `flush` saves them (after every batch of writes)."""
    COLUMNS = ("crm_id", "error", "payload_hash", "note")

    def __init__(self, hub: HubStore, target: TargetConfig, run_id: str):
        self.hub, self.target, self.run_id, self.now = hub, target, run_id, utcnow()
        self.receipts: list[dict] = []
        self.confirmed: list[dict] = []
        self.counts = {"created": 0, "updated": 0, "rejected": 0, "retired": 0, "not_flagged": 0}

    def receipt(self, key: str, customer_id: str | None, result: str, **fields) -> dict:
        return {"run_id": self.run_id, "target": self.target.name, "pushed_at": self.now, "contact_key": key,
                "customer_id": customer_id, "result": result, **dict.fromkeys(self.COLUMNS), **fields}

    def written(self, chunk: list, results: list) -> None:
        for (key, payload, digest, customer), result in zip(chunk, results):
            outcome = "created" if result.ok and result.created else "updated" if result.ok else "rejected"
            self.counts[outcome] += 1
            self.receipts.append(self.receipt(key, customer, outcome, crm_id=result.crm_id, error=result.error,
                                              payload_hash=digest))
            if result.ok:
                self.confirmed.append({"target": self.target.name, "contact_key": key, "customer_id": customer,
                                       "payload_hash": digest, "crm_id": result.crm_id, "confirmed_at": self.now,
                                       "payload": json.dumps(payload, sort_keys=True, ensure_ascii=False),
                                       "retired_at": None})
        self.flush()

    def retired(self, retire: list, results: list) -> None:
        """A retired contact's state keeps its CRM id and says why in its hash, so that it is written again, whole,
        if it comes back."""
        for (key, customer, reason, crm_id), result in zip(retire, results):
            if result is None:
                self.counts["not_flagged"] += 1
                self.receipts.append(self.receipt(key, customer, "skipped", crm_id=crm_id, note=f"{reason}: not flagged, "
                                     f"the contacts section of mappings/{self.target.mapping_path.name} has no "
                                     f"status_field (or set retire: archive)"))
                continue
            self.counts["retired" if result.ok else "rejected"] += 1
            self.receipts.append(self.receipt(key, customer, "retired" if result.ok else "rejected", crm_id=crm_id,
                                              error=result.error, note=reason))
            if result.ok:
                self.confirmed.append({"target": self.target.name, "contact_key": key, "customer_id": customer,
                                       "payload_hash": f"retired:{reason}", "crm_id": result.crm_id or crm_id,
                                       "confirmed_at": self.now, "payload": None, "retired_at": self.now})
        self.flush()

    def flush(self) -> None:
        if self.confirmed:
            self.hub.upsert_rows("contact_push_state", self.confirmed, ("target", "contact_key"))
        if self.receipts:
            self.hub.insert_rows("contact_receipts", self.receipts)
        self.confirmed, self.receipts = [], []
