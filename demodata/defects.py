"""Deliberately bad rows, so data-quality checks have something known to catch.

Every defect is listed in bad_rows.csv and nowhere else: a bad document is an ordinary generated
document with exactly one thing broken. Bad customer records belong to customers of their own (one
record, no documents, no duplicates), so they never disturb the ground-truth clusters.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from .documents import Documents, Invoice, Order, Ticket
from .records import SYSTEMS, source_id

UNKNOWN_CURRENCY = "XYZ"
CUSTOMER_DEFECTS = ("missing_name", "malformed_email")
DOCUMENT_DEFECTS = (
    ("order", "negative_amount"), ("order", "unknown_currency"),
    ("invoice", "due_before_issue"), ("invoice", "orphan_customer"),
    ("service_ticket", "closed_before_opened"), ("service_ticket", "orphan_customer"),
)
# Tryton complaints have no closing timestamp, so a ticket cannot close before it opens there.
SUPPORTING_SYSTEMS = {"closed_before_opened": ("odoo", "erpnext")}


@dataclass(frozen=True, slots=True)
class BadRow:
    source_system: str
    entity: str
    source_id: str
    defect: str


@dataclass(frozen=True, slots=True)
class Planned:
    entity: str
    defect: str
    system: str


def per_defect(n_customers: int) -> int:
    """A couple of each at demo size; scales with the data (1,500 each at 300k customers)."""
    return max(2, n_customers // 200)


def plan(n_customers: int) -> list[Planned]:
    """Which defect goes to which system: rotated so every system gets some of most kinds."""
    kinds = [("customer_record", d) for d in CUSTOMER_DEFECTS] + list(DOCUMENT_DEFECTS)
    planned = []
    for j, (entity, defect) in enumerate(kinds):
        systems = SUPPORTING_SYSTEMS.get(defect, SYSTEMS)
        planned += [Planned(entity, defect, systems[(i + j) % len(systems)]) for i in range(per_defect(n_customers))]
    return planned


def document_source_id(system: str, doc: Order | Invoice | Ticket) -> str:
    """ERPNext documents are keyed by their name (the number); the others by integer id."""
    return doc.number if system == "erpnext" else str(doc.id)


def _eligible(docs: Documents, entity: str, defect: str, system: str) -> list[Order | Invoice | Ticket]:
    """Documents on which the defect is visible and nothing else is broken yet."""
    if entity == "order":
        rows = docs.orders
        if defect == "negative_amount" and system == "tryton":  # drafts and quotations have no amount
            rows = [o for o in rows if o.status not in ("draft", "sent")]
    elif entity == "invoice":
        rows = [i for i in docs.invoices if i.kind == "invoice"] if defect == "due_before_issue" else docs.invoices
    else:
        rows = [t for t in docs.tickets if t.closed] if defect == "closed_before_opened" else docs.tickets
    return [d for d in rows if d.defect is None]


def _apply(doc: Order | Invoice | Ticket, defect: str, rng: random.Random, max_party_id: int) -> None:
    if defect == "negative_amount":
        doc.amount = -doc.amount
    elif defect == "unknown_currency":
        doc.currency = UNKNOWN_CURRENCY
    elif defect == "due_before_issue":
        doc.due_date = doc.invoice_date - timedelta(days=rng.randint(1, 30))
    elif defect == "orphan_customer":  # a party deleted after the document was entered
        doc.orphan_party = max_party_id + rng.randint(1, 500)
    elif defect == "closed_before_opened":  # closed on an earlier day than it was opened
        doc.closed = datetime.combine(doc.opened.date(), time()) - timedelta(seconds=rng.randint(3600, 5 * 86400))
    doc.defect = defect


def break_documents(docs: Documents, system: str, planned: list[Planned], rng: random.Random,
                    max_party_id: int) -> list[BadRow]:
    """Apply this system's planned document defects; returns their bad_rows.csv rows."""
    bad: list[BadRow] = []
    for entity, defect in DOCUMENT_DEFECTS:
        wanted = sum(1 for p in planned if p.system == system and p.entity == entity and p.defect == defect)
        if not wanted:
            continue
        candidates = _eligible(docs, entity, defect, system)
        for doc in rng.sample(candidates, min(wanted, len(candidates))):
            _apply(doc, defect, rng, max_party_id)
            bad.append(BadRow(system, entity, document_source_id(system, doc), defect))
    return bad


def customer_bad_rows(records_by_system: dict) -> list[BadRow]:
    return [BadRow(system, "customer_record", r.source_id, r.customer.defect)
            for system in SYSTEMS for r in records_by_system[system] if r.customer.defect]
