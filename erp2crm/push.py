"""Push changed profiles to one CRM target: diff by payload hash, upsert, store a receipt for every record.

Only a confirmed write updates `push_state`, so a rejected or unsent record is sent again next run, and an
unchanged one is never re-sent. The external id is the unified customer id: a retry cannot duplicate.

The target's mode decides what is sent: upsert (all), update_only (customers the target already holds),
create_only (customers it does not hold yet) and mirror (upsert, and retire the records of customers inactive
or gone from the ERP). Records of customers merged into another are retired in every mode but create_only:
flagged through the mapping's status field, or archived. Fill-if-empty fields are read from the CRM first and
left out where the CRM already has a value; CRM-owned fields are never in a payload. When the mapping has a
`contacts:` section, the customers' contact persons are pushed after the accounts (erp2crm/contacts.py).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd

from connectors.outbound import (PAYLOAD_FORMAT, OutboundMapping, build_payload, load_outbound, payload_hash,
                                 payload_text, retirement_payload)
from connectors.registry import open_sink
from connectors.salesforce import PushResult
from erp2crm.config import TargetConfig
from erp2crm.errors import ConfigError, Erp2CrmError
from erp2crm.profile_json import profile_from_text
from hub import HubStore
from hub.store import utcnow


@dataclass
class Plan:
    mapping: OutboundMapping
    send: list = field(default_factory=list)  # (customer_id, payload, hash)
    unchanged: list = field(default_factory=list)  # customer_id
    skipped: list = field(default_factory=list)  # (customer_id, why)
    retire: list = field(default_factory=list)  # (customer_id, reason, merged_into)
    sources: dict = field(default_factory=dict)  # customer_id → source_hash of each payload built
    texts: dict = field(default_factory=dict)  # customer_id → payload_text of each payload to send
    rebuilt_unchanged: list = field(default_factory=list)  # (customer_id, source_hash): rebuilt, found unchanged


def source_hasher(mapping: OutboundMapping):
    """profile hash → the hash of what a payload is built from: the profile (by its hash), the mapping and the
    payload format. Equal to the one stored with the last confirmed write → the payload would be the same, and is
    not rebuilt. None for a profile written before profiles had hashes: always rebuilt."""
    prefix = hashlib.sha256(f"{PAYLOAD_FORMAT}\n{mapping.model_dump_json()}\n".encode())

    def source_hash(profile_hash: str | None) -> str | None:
        if not isinstance(profile_hash, str):
            return None
        digest = prefix.copy()
        digest.update(profile_hash.encode())
        return digest.hexdigest()
    return source_hash


def _confirmed(hub: HubStore, target: TargetConfig, payloads: bool = False):
    """The target's push state; the last confirmed payloads (JSON, most of a row) only when asked."""
    columns = ["target", "customer_id", "payload_hash", "crm_id", "retired_at", "source_hash"]
    state = hub.read_table("push_state", columns + (["payload"] if payloads else []))
    return state[state["target"] == target.name]


def _merged_into(hub: HubStore) -> dict[str, str]:
    """Each merged-away customer id → the id that absorbed it (the latest merge wins)."""
    events = hub.read_keyed("customer_events", ["id", "customer_id", "previous_ids"], "event", ["merged"])
    events = events.sort_values("id")
    return {old: new for new, olds in zip(events["customer_id"], events["previous_ids"]) for old in json.loads(olds)}


def plan(hub: HubStore, target: TargetConfig, state=None) -> Plan:
    """What this push does; `state` is the target's push state when the caller has read it already. A profile
    whose source hash is the one of its last confirmed write is unchanged without reading it; the others are
    read, their payloads built and compared by payload hash."""
    mapping = load_outbound(target.mapping_path)
    stored = hub.read_table("profiles", ["customer_id", "profile_hash", "push_ready"])
    stored = stored[stored["push_ready"].fillna(False).astype(bool)]
    state = _confirmed(hub, target) if state is None else state
    held = state[state["retired_at"].isna()]
    confirmed = dict(zip(state["customer_id"], state["payload_hash"]))
    built_from = dict(zip(held["customer_id"], held["source_hash"]))
    in_crm = set(held["customer_id"])
    customers = hub.read_table("customers", ["customer_id", "is_active"])
    inactive = set()
    if target.mode == "mirror":
        inactive = set(customers.loc[customers["is_active"].astype("boolean").eq(False).fillna(False), "customer_id"])
    out = Plan(mapping)
    source_hash = source_hasher(mapping)
    to_build = {}
    for customer_id, profile_hash in sorted(zip(stored["customer_id"], stored["profile_hash"])):
        if customer_id in inactive:
            continue  # retired below
        if target.mode == "update_only" and customer_id not in in_crm:
            out.skipped.append((customer_id, "update_only: the target holds no record of this customer"))
            continue
        if target.mode == "create_only" and customer_id in confirmed:
            out.unchanged.append(customer_id)  # create_only never updates
            continue
        source = source_hash(profile_hash)
        if source is not None and built_from.get(customer_id) == source:
            out.unchanged.append(customer_id)
        else:
            to_build[customer_id] = source
    profiles = hub.read_keyed("profiles", ["customer_id", "profile"], "customer_id", list(to_build))
    for customer_id, profile in sorted(zip(profiles["customer_id"], profiles["profile"])):
        payload = build_payload(mapping, customer_id, profile_from_text(profile))
        text, source = payload_text(payload), to_build[customer_id]
        digest = payload_hash(payload, text)
        if confirmed.get(customer_id) == digest:
            out.unchanged.append(customer_id)
            if source is not None and customer_id in built_from:
                out.rebuilt_unchanged.append((customer_id, source))
        else:
            out.send.append((customer_id, payload, digest))
            out.sources[customer_id] = source
            out.texts[customer_id] = text
    out.unchanged.sort()
    if target.mode != "create_only":
        merged = _merged_into(hub)
        present = set(customers["customer_id"])
        for customer_id in sorted(in_crm):
            if customer_id in present and customer_id not in inactive:
                continue
            if customer_id in merged and customer_id not in present:
                out.retire.append((customer_id, "merged", merged[customer_id]))
            elif customer_id in inactive:
                out.retire.append((customer_id, "inactive", None))
            elif target.mode == "mirror":
                out.retire.append((customer_id, "gone", None))
    return out


def fill_if_empty(sink, fields: list[str], target: str, to_send: list, known_ids: dict[str, str]) -> list[dict]:
    """The payloads to send of (key, payload, hash) items: a fill-if-empty field is left out of an update when the
    CRM already holds a value (`known_ids`: key → CRM id of the records the CRM holds)."""
    known = [known_ids[c] for c, _, _ in to_send if c in known_ids]
    if not fields or not known:
        return [payload for _, payload, _ in to_send]
    if not hasattr(sink, "current_values"):
        raise ConfigError(f"target {target!r}: fill_if_empty fields ({', '.join(fields)}) need a CRM whose "
                          f"current values erp2crm can read; make them erp- or crm-owned")
    current = sink.current_values(known, fields)
    out = []
    for customer_id, payload, _ in to_send:
        values = current.get(known_ids.get(customer_id), {})
        out.append({k: v for k, v in payload.items() if k not in fields or values.get(k) in (None, "")})
    return out


def _retire(sink, target: TargetConfig, mapping: OutboundMapping, retire: list, known_ids: dict[str, str]):
    """(customer_id, reason, payload or None, PushResult) per record retired; nothing when there is none."""
    if not retire:
        return []
    if target.retire == "archive":
        results = sink.archive([(c, known_ids.get(c)) for c, _, _ in retire])
        return [(c, reason, None, r) for (c, reason, _), r in zip(retire, results)]
    if not mapping.status_field:
        why = (f"not flagged: mappings/{target.mapping_path.name} has no status_field (or set retire: archive)")
        return [(c, reason, None, PushResult(c, False, error=why)) for c, reason, _ in retire]
    payloads = [retirement_payload(mapping, c, reason, into) for c, reason, into in retire]
    results = sink.upsert(payloads, known_ids=known_ids)
    return [(c, reason, p, r) for (c, reason, _), p, r in zip(retire, payloads, results)]


def reopen(sink, target: TargetConfig, state, key: str, items: list, known_ids: dict[str, str], log) -> list:
    """The `items` (key first) to write, after reopening those archived by an earlier run: a CRM that archives by
    closing records (BottleCRM) reopens them first; a deleted one (Salesforce, HubSpot) is simply created again by
    the upsert. One that cannot be reopened is not written (it would stay closed): `log` records it rejected."""
    if target.retire != "archive" or not hasattr(sink, "reopen"):
        return items
    retired = set(state.loc[state["retired_at"].notna(), key])
    back = [(item[0], known_ids.get(item[0])) for item in items if item[0] in retired]
    closed = {r.external_id: f"archived, and could not be reopened: {r.error}"
              for r in (sink.reopen(back) if back else []) if not r.ok}
    if closed:
        log.written([i for i in items if i[0] in closed], [PushResult(i[0], False, error=closed[i[0]])
                                                            for i in items if i[0] in closed])
    return [i for i in items if i[0] not in closed]


def batches(sink, target: TargetConfig, payloads: list[dict]):
    """The payloads in the target's batches, or all at once when they make one Salesforce Bulk API job."""
    bulk = getattr(sink, "bulk_threshold", None)
    step = len(payloads) if bulk is not None and len(payloads) >= bulk else target.batch_size
    for start in range(0, len(payloads), max(step, 1)):
        yield payloads[start:start + step]


def push(hub: HubStore, run_id: str, target: TargetConfig) -> dict:
    state = _confirmed(hub, target)
    work = plan(hub, target, state)
    log = _Log(hub, target, run_id, work.sources, work.texts)
    if work.rebuilt_unchanged:  # confirmed before source hashes were kept, or under another mapping: next time skipped
        hub.update_rows("push_state", [{"target": target.name, "customer_id": c, "source_hash": h}
                                       for c, h in work.rebuilt_unchanged], ("target", "customer_id"))
    log.receipts += [log.receipt(c, "unchanged") for c in work.unchanged]
    log.receipts += [log.receipt(c, "skipped", note=why) for c, why in work.skipped]
    api_calls, stopped, sent = 0, None, 0
    if work.send or work.retire:
        sink = open_sink(target, work.mapping.sobject, work.mapping.external_id_field)
        # The CRM ids of earlier confirmed writes: a CRM without upsert by external id (BottleCRM) updates by them.
        known_ids = {c: i for c, i in zip(state["customer_id"], state["crm_id"]) if isinstance(i, str) and i}
        # Batch by batch, each batch's confirmed writes saved at once: when a batch fails for good (a used-up
        # quota, an outage outlasting the retries) or the task is killed, the next try sends only the rest.
        to_send = work.send
        try:
            to_send = reopen(sink, target, state, "customer_id", work.send, known_ids, log)
            payloads = (fill_if_empty(sink, work.mapping.fill_if_empty(), work.mapping.target, to_send, known_ids)
                        if to_send else [])
            for batch in batches(sink, target, payloads):
                log.written(to_send[sent:sent + len(batch)], sink.upsert(batch, known_ids=known_ids))
                sent += len(batch)
            if work.retire:
                log.retired(work.retire, _retire(sink, target, work.mapping, work.retire, known_ids), known_ids)
        except Erp2CrmError as e:
            stopped = e
            log.receipts += [log.receipt(c, "unsent", error=str(e), payload_hash=d) for c, _, d in to_send[sent:]]
            log.receipts += [log.receipt(c, "unsent", error=str(e), note=reason) for c, reason, _ in work.retire]
        api_calls = sink.client.requests_sent
    log.flush()
    if stopped is not None:  # saved above: the next run sends only what was not confirmed
        raise stopped
    counts = {"crm_object": work.mapping.sobject, "mode": target.mode,
              "profiles_ready": len(work.send) + len(work.unchanged) + len(work.skipped), "sent": len(work.send),
              "to_retire": len(work.retire), **log.counts, "unchanged": len(work.unchanged),
              "skipped": len(work.skipped), "api_calls": api_calls}
    if work.mapping.contacts is not None:  # after the accounts, which the contacts link to (erp2crm/contacts.py)
        from erp2crm.contacts import push_contacts

        counts["contacts"] = push_contacts(hub, run_id, target, work.mapping)
    return counts


class _Log:
    """A push's receipts and confirmed writes; `flush` saves them (after every batch of writes)."""
    COLUMNS = ("crm_id", "error", "payload_hash", "note")  # one shape for every receipt row of an insert

    def __init__(self, hub: HubStore, target: TargetConfig, run_id: str, sources: dict[str, str | None],
                 texts: dict[str, str]):
        self.hub, self.target, self.run_id, self.now = hub, target, run_id, utcnow()
        self.sources = sources  # customer_id → source_hash of the payload sent
        self.texts = texts  # customer_id → payload_text of the payload sent
        self.receipts: list[dict] = []
        self.confirmed: list[dict] = []
        self.counts = {"created": 0, "updated": 0, "rejected": 0, "retired": 0}

    def receipt(self, customer_id: str, result: str, **fields) -> dict:
        return {"run_id": self.run_id, "target": self.target.name, "pushed_at": self.now,
                "customer_id": customer_id, "result": result, **dict.fromkeys(self.COLUMNS), **fields}

    def _confirm(self, customer_id: str, digest: str, crm_id, payload: dict | None, retired: bool) -> None:
        text = None if retired else self.texts.get(customer_id)  # the plan's canonical JSON of this payload
        self.confirmed.append({"target": self.target.name, "customer_id": customer_id, "payload_hash": digest,
                               "crm_id": crm_id, "confirmed_at": self.now, "retired_at": self.now if retired else None,
                               "source_hash": None if retired else self.sources.get(customer_id),
                               "payload": (text or payload_text(payload)) if payload else None})

    def written(self, sent: list, results: list) -> None:
        for (customer_id, payload, digest), result in zip(sent, results):
            outcome = "created" if result.ok and result.created else "updated" if result.ok else "rejected"
            self.counts[outcome] += 1
            self.receipts.append(self.receipt(customer_id, outcome, crm_id=result.crm_id, error=result.error,
                                              payload_hash=digest))
            if result.ok:
                self._confirm(customer_id, digest, result.crm_id, payload, retired=False)
        self.flush()

    def retired(self, retire: list, results: list, known_ids: dict[str, str]) -> None:
        into_of = {c: into for c, _, into in retire}
        for customer_id, reason, payload, result in results:
            into, crm_id = into_of[customer_id], result.crm_id or known_ids.get(customer_id)
            self.counts["retired" if result.ok else "rejected"] += 1
            self.receipts.append(self.receipt(customer_id, "retired" if result.ok else "rejected", crm_id=crm_id,
                                              error=result.error, note=f"{reason} into {into}" if into else reason))
            if result.ok:
                self._confirm(customer_id, f"retired:{reason}", crm_id, payload, retired=True)
        self.flush()

    def flush(self) -> None:
        if self.confirmed:
            self.hub.upsert_rows("push_state", self.confirmed, ("target", "customer_id"))
        if self.receipts:
            self.hub.insert_rows("push_receipts", self.receipts)
        self.confirmed, self.receipts = [], []


def dry_run(hub: HubStore, target: TargetConfig) -> dict:
    """What the next push to `target` would do, field by field, without calling the CRM: a customer with no
    confirmed write is created, one whose payload differs from its last confirmed write is updated (with the
    fields that differ), one merged away or (mirror) gone from the ERP is retired, the rest are unchanged."""
    state = _confirmed(hub, target, payloads=True)
    work = plan(hub, target, state)
    previous = {c: (json.loads(p) if isinstance(p, str) else None) for c, p in zip(state["customer_id"], state["payload"])}
    changes = []
    for customer_id, payload, _ in work.send:
        if customer_id not in previous:
            changes.append({"customer_id": customer_id, "action": "create",
                            "fields": {k: [None, v] for k, v in payload.items() if v is not None}})
            continue
        before = previous[customer_id]
        if before is None:  # confirmed before payloads were kept: which fields changed is unknown
            changes.append({"customer_id": customer_id, "action": "update", "fields": None})
            continue
        diff = {k: [before.get(k), payload.get(k)] for k in sorted(set(before) | set(payload))
                if before.get(k) != payload.get(k)}
        changes.append({"customer_id": customer_id, "action": "update", "fields": diff})
    for customer_id, reason, merged_into in work.retire:
        changes.append({"customer_id": customer_id, "action": f"retire ({target.retire})", "reason": reason,
                        "merged_into": merged_into, "fields": None})
    out = {"target": target.name, "mode": target.mode,
           "create": sum(c["action"] == "create" for c in changes),
           "update": sum(c["action"] == "update" for c in changes), "retire": len(work.retire),
           "skipped": len(work.skipped), "unchanged": len(work.unchanged), "changes": changes}
    if work.mapping.contacts is not None:  # counts only; those of accounts not yet written show as deferred
        from erp2crm.contacts import CONTACT_STATE_COLUMNS, plan_contacts

        contact_state = hub.read_table("contact_push_state", CONTACT_STATE_COLUMNS)
        contact_state = contact_state[contact_state["target"] == target.name]
        contacts = plan_contacts(hub, target, work.mapping, contact_state)
        known = set(contact_state["contact_key"])
        out["contacts"] = {"create": sum(k not in known for k, *_ in contacts.send),
                           "update": sum(k in known for k, *_ in contacts.send), "retire": len(contacts.retire),
                           "unchanged": len(contacts.unchanged),
                           "deferred": len(contacts.deferred), "skipped": len(contacts.skipped)}
    return out
