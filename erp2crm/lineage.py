"""Record-level lineage from the hub store: an ERP row → its unified customer (and why it was linked) → the
record each CRM target holds for that customer, with the row's quarantine history and the customer's
merge and split events."""
from __future__ import annotations

import json

from sqlalchemy import or_, select

from erp2crm.canonical import ENTITIES
from erp2crm.errors import ConfigError
from hub import HubStore
from hub import schema


def _rows(conn, query) -> list[dict]:
    return [dict(row._mapping) for row in conn.execute(query)]


def lineage(hub: HubStore, source_system: str, source_id: str, entity: str = "customer_record") -> dict:
    if entity not in ENTITIES:
        raise ConfigError(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    table = schema.ENTITY_TABLES[entity]
    with hub.engine.connect() as conn:
        row = _rows(conn, select(table).where(table.c.source_system == source_system, table.c.source_id == source_id))
        held = _rows(conn, select(schema.quarantine).where(
            schema.quarantine.c.entity == entity, schema.quarantine.c.source_system == source_system,
            schema.quarantine.c.record_id == source_id).order_by(schema.quarantine.c.id))
        out = {"source_system": source_system, "source_id": source_id, "entity": entity,
               "record": row[0] if row else None, "quarantine": held, "customer": None, "link": None,
               "events": [], "crm": []}
        customer_key = source_id if entity == "customer_record" else (row[0]["customer_source_id"] if row else None)
        if customer_key is None:
            return out
        link = _rows(conn, select(schema.crosswalk).where(schema.crosswalk.c.source_system == source_system,
                                                          schema.crosswalk.c.source_id == customer_key))
        if not link:
            return out
        link = link[0]
        link["explanation"] = json.loads(link["explanation"]) if link["explanation"] else None
        out["link"] = {"customer_source_id": customer_key, **link}
        customer_id = link["customer_id"]
        customer = _rows(conn, select(schema.customers).where(schema.customers.c.customer_id == customer_id))
        if customer:
            customer[0]["source_ids"] = json.loads(customer[0]["source_ids"] or "[]")
        out["customer"] = customer[0] if customer else None
        out["events"] = _rows(conn, select(schema.customer_events).where(or_(
            schema.customer_events.c.customer_id == customer_id,
            schema.customer_events.c.previous_ids.contains(f'"{customer_id}"'))).order_by(schema.customer_events.c.id))
        for state in _rows(conn, select(schema.push_state).where(schema.push_state.c.customer_id == customer_id)):
            receipts = _rows(conn, select(schema.push_receipts).where(
                schema.push_receipts.c.customer_id == customer_id, schema.push_receipts.c.target == state["target"])
                .order_by(schema.push_receipts.c.id.desc()).limit(5))
            out["crm"].append({"target": state["target"], "crm_id": state["crm_id"],
                               "confirmed_at": state["confirmed_at"], "last_receipts": receipts})
    return out


def render(trace: dict) -> str:
    key = f"{trace['source_system']}:{trace['source_id']}"
    lines = [f"{trace['entity']} {key}"]
    record = trace["record"]
    lines.append(f"  in the hub: {'yes, last changed ' + str(record['updated_at']) if record else 'no'}")
    for entry in trace["quarantine"]:
        state = f"released {entry['released_at']}" if entry["released_at"] else "held"
        lines.append(f"  quarantined {entry['quarantined_at']} ({entry['stage']}): {entry['reason_code']}, {state}")
    link = trace["link"]
    if link is None:
        lines.append("  not linked to a unified customer")
        return "\n".join(lines)
    if trace["entity"] != "customer_record":
        lines.append(f"  belongs to customer record {trace['source_system']}:{link['customer_source_id']}")
    lines.append(f"  → unified customer {link['customer_id']} (rule {link['match_rule']}, band {link['match_band']}"
                 + (f", score {link['match_score']:.4f}" if link["match_score"] is not None else "") + ")")
    customer = trace["customer"]
    if customer:
        lines.append(f"    {customer['name']!r}, from {', '.join(customer['source_ids'])}"
                     + (" (held by the customer gate)" if customer.get("held") else ""))
    for event in trace["events"]:
        lines.append(f"    {event['event']} {event['occurred_at']}: {event['previous_ids'] or '[]'} → {event['customer_id']}")
    if not trace["crm"]:
        lines.append("  → not in any CRM yet")
    for target in trace["crm"]:
        last = target["last_receipts"][0] if target["last_receipts"] else None
        lines.append(f"  → {target['target']} record {target['crm_id']} (confirmed {target['confirmed_at']}"
                     + (f"; last push: {last['result']}" if last else "") + ")")
    return "\n".join(lines)
