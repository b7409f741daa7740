"""The canonical model every connector maps into: one entity name, its table and its typed fields.

Entities are singular (`order`), their hub tables plural (`orders`). Timestamps are UTC and end in
`_at`; calendar dates end in `_date`; money is an amount plus an ISO 4217 currency. Every row keeps the
`source_system` and `source_id` it came from; documents and contacts point to their customer by
`customer_source_id` (the customer record's id in the same source system).
"""
from __future__ import annotations

from dataclasses import dataclass

# Field kinds; the hub store and the mapping engine both coerce by these.
STRING, INTEGER, FLOAT, BOOLEAN, DATE, TIMESTAMP = "string", "integer", "float", "boolean", "date", "timestamp"


@dataclass(frozen=True)
class Entity:
    name: str
    table: str
    fields: dict[str, str]  # field name -> kind, in column order

    @property
    def key(self) -> tuple[str, str]:
        return ("source_system", "source_id")


_KEYS = {"source_system": STRING, "source_id": STRING}

CUSTOMER_RECORD = Entity("customer_record", "customer_records", {
    **_KEYS,
    "name": STRING, "given_name": STRING, "family_name": STRING, "company_name": STRING,
    "is_company": BOOLEAN, "email": STRING, "phone": STRING, "tax_id": STRING,
    "street": STRING, "city": STRING, "postcode": STRING, "region": STRING, "country": STRING,
    "birth_date": DATE, "is_active": BOOLEAN, "updated_at": TIMESTAMP,
})

ORDER = Entity("order", "orders", {
    **_KEYS,
    "customer_source_id": STRING, "order_number": STRING,
    "status": STRING,  # draft | confirmed | done | cancelled
    "ordered_at": TIMESTAMP, "total_amount": FLOAT, "currency": STRING, "channel": STRING,
    "updated_at": TIMESTAMP,
})

INVOICE = Entity("invoice", "invoices", {
    **_KEYS,
    "customer_source_id": STRING, "invoice_number": STRING,
    "kind": STRING,  # invoice | credit_note
    "status": STRING,  # draft | open | paid | cancelled
    "invoice_date": DATE, "due_date": DATE,
    "total_amount": FLOAT, "paid_amount": FLOAT, "outstanding_amount": FLOAT, "currency": STRING,
    "updated_at": TIMESTAMP,
})

SERVICE_TICKET = Entity("service_ticket", "service_tickets", {
    **_KEYS,
    "customer_source_id": STRING, "ticket_number": STRING, "subject": STRING,
    "status": STRING,  # open | closed
    "priority": STRING,  # low | medium | high | urgent
    "is_complaint": BOOLEAN, "opened_at": TIMESTAMP, "closed_at": TIMESTAMP,
    "satisfaction": FLOAT,  # 0..1 where the ERP records one, else null
    "updated_at": TIMESTAMP,
})

ORDER_LINE = Entity("order_line", "order_lines", {
    **_KEYS,
    "customer_source_id": STRING, "order_source_id": STRING,
    "product_code": STRING, "product_name": STRING, "category": STRING,
    "quantity": FLOAT, "line_amount": FLOAT,  # in the order's currency
    "updated_at": TIMESTAMP,
})

PAYMENT = Entity("payment", "payments", {
    **_KEYS,
    # One allocation of a customer payment to one invoice (a payment split over two invoices is two rows).
    "customer_source_id": STRING, "invoice_source_id": STRING, "payment_number": STRING,
    "status": STRING,  # draft | posted | cancelled
    "paid_date": DATE, "amount": FLOAT, "currency": STRING,
    "updated_at": TIMESTAMP,
})

CONTACT = Entity("contact", "contacts", {
    **_KEYS,
    # A contact person of a company customer (the people to call at a B2B customer), not a customer itself:
    # attached to the customer record `customer_source_id` of the same source, never to identity resolution.
    "customer_source_id": STRING,
    "name": STRING, "given_name": STRING, "family_name": STRING, "email": STRING, "phone": STRING,
    "job_title": STRING, "is_active": BOOLEAN, "updated_at": TIMESTAMP,
})

# Staging-only column: why a value the source sent could not be read as its field's kind ("[code] field
# 'value' is not ..."); the staging gate quarantines such rows instead of letting the value become a null.
PARSE_ERRORS = "parse_errors"

ENTITIES: dict[str, Entity] = {e.name: e for e in (CUSTOMER_RECORD, ORDER, ORDER_LINE, INVOICE, SERVICE_TICKET,
                                                   PAYMENT, CONTACT)}
DOCUMENT_ENTITIES = ("order", "order_line", "invoice", "service_ticket", "payment")
# Entities that belong to a customer record of their source (customer_source_id): documents and contacts.
CUSTOMER_LINKED_ENTITIES = (*DOCUMENT_ENTITIES, "contact")

ORDER_STATUSES = {"draft", "confirmed", "done", "cancelled"}
INVOICE_KINDS = {"invoice", "credit_note"}
INVOICE_STATUSES = {"draft", "open", "paid", "cancelled"}
TICKET_STATUSES = {"open", "closed"}
TICKET_PRIORITIES = {"low", "medium", "high", "urgent"}
PAYMENT_STATUSES = {"draft", "posted", "cancelled"}
