"""Push changed profiles to one CRM target: diff by payload hash, upsert, store a receipt for every record.

Only a confirmed write updates `push_state`, so a rejected or unsent record is sent again next run, and an
unchanged one is never re-sent. The external id is the unified customer id: a retry cannot duplicate.
"""
from __future__ import annotations

import json

from connectors.outbound import build_payload, load_outbound, payload_hash
from connectors.registry import open_sink
from erp2crm.config import TargetConfig
from hub import HubStore
from hub.store import utcnow


def _confirmed(hub: HubStore, target: TargetConfig):
    state = hub.read_table("push_state")
    return state[state["target"] == target.name]


def plan(hub: HubStore, target: TargetConfig, state=None):
    """(mapping, [(customer_id, payload, hash)] to send, [customer_id] unchanged); `state` is the target's
    push state when the caller has read it already."""
    mapping = load_outbound(target.mapping_path)
    stored = hub.read_table("profiles")
    stored = stored[stored["push_ready"].fillna(False).astype(bool)]
    state = _confirmed(hub, target) if state is None else state
    confirmed = dict(zip(state["customer_id"], state["payload_hash"]))
    to_send, unchanged = [], []
    for customer_id, profile in sorted(zip(stored["customer_id"], stored["profile"])):
        payload = build_payload(mapping, customer_id, json.loads(profile))
        digest = payload_hash(payload)
        if confirmed.get(customer_id) == digest:
            unchanged.append(customer_id)
        else:
            to_send.append((customer_id, payload, digest))
    return mapping, to_send, unchanged


def push(hub: HubStore, run_id: str, target: TargetConfig) -> dict:
    mapping, to_send, unchanged = plan(hub, target)
    now = utcnow()
    receipts = [{"run_id": run_id, "target": target.name, "customer_id": c, "result": "unchanged", "pushed_at": now}
                for c in unchanged]
    created = updated = rejected = 0
    if to_send:
        sink = open_sink(target, mapping.sobject, mapping.external_id_field)
        # The CRM ids of earlier confirmed writes: a CRM without upsert by external id (BottleCRM) updates by them.
        known = _confirmed(hub, target)
        known_ids = {c: i for c, i in zip(known["customer_id"], known["crm_id"]) if isinstance(i, str) and i}
        results = sink.upsert([payload for _, payload, _ in to_send], known_ids=known_ids)
        confirmed_rows = []
        for (customer_id, payload, digest), result in zip(to_send, results):
            outcome = "created" if result.ok and result.created else "updated" if result.ok else "rejected"
            created += outcome == "created"
            updated += outcome == "updated"
            rejected += outcome == "rejected"
            receipts.append({"run_id": run_id, "target": target.name, "customer_id": customer_id, "result": outcome,
                             "crm_id": result.crm_id, "error": result.error, "payload_hash": digest, "pushed_at": now})
            if result.ok:
                confirmed_rows.append({"target": target.name, "customer_id": customer_id, "payload_hash": digest,
                                       "crm_id": result.crm_id, "confirmed_at": now,
                                       "payload": json.dumps(payload, sort_keys=True, ensure_ascii=False)})
        hub.upsert_rows("push_state", confirmed_rows, ("target", "customer_id"))
        api_calls = sink.client.requests_sent
    else:
        api_calls = 0
    hub.insert_rows("push_receipts", receipts)
    return {"profiles_ready": len(to_send) + len(unchanged), "sent": len(to_send), "created": created,
            "updated": updated, "unchanged": len(unchanged), "rejected": rejected, "api_calls": api_calls}


def dry_run(hub: HubStore, target: TargetConfig) -> dict:
    """What the next push to `target` would do, field by field, without calling the CRM: a customer with no
    confirmed write is created, one whose payload differs from its last confirmed write is updated (with the
    fields that differ), the rest are unchanged."""
    state = _confirmed(hub, target)
    _, to_send, unchanged = plan(hub, target, state)
    previous = {c: (json.loads(p) if isinstance(p, str) else None) for c, p in zip(state["customer_id"], state["payload"])}
    changes = []
    for customer_id, payload, _ in to_send:
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
    return {"target": target.name, "create": sum(c["action"] == "create" for c in changes),
            "update": sum(c["action"] == "update" for c in changes), "unchanged": len(unchanged), "changes": changes}
