"""erpnext.db: Frappe's tab<DocType> tables, keyed by `name`, with docstatus 0 draft / 1 submitted / 2 cancelled."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from pathlib import Path

from . import sqlite_out
from .clock import ds, ts
from .contacts import Contact, party_source_id
from .documents import RATES_TO_CNY, Documents, Invoice, lines_of, payments_of
from .records import Record, source_id

SCHEMA = {
    "tabAddress": ["name TEXT PRIMARY KEY", "address_line1 TEXT", "city TEXT", "pincode TEXT", "country TEXT",
                   "creation TEXT", "modified TEXT"],
    "tabCustomer": ["name TEXT PRIMARY KEY", "customer_name TEXT", "customer_type TEXT", "tax_id TEXT",
                    "email_id TEXT", "mobile_no TEXT", 'customer_primary_address TEXT REFERENCES "tabAddress"(name)',
                    "disabled INTEGER", "creation TEXT", "modified TEXT"],
    "tabSales Order": ["name TEXT PRIMARY KEY", 'customer TEXT REFERENCES "tabCustomer"(name)',
                       "transaction_date TEXT", "status TEXT", "docstatus INTEGER", "currency TEXT",
                       "grand_total REAL", "company TEXT", "creation TEXT", "modified TEXT"],
    "tabSales Invoice": ["name TEXT PRIMARY KEY", 'customer TEXT REFERENCES "tabCustomer"(name)',
                         "posting_date TEXT", "due_date TEXT", "is_return INTEGER", "currency TEXT",
                         "conversion_rate REAL", "grand_total REAL", "outstanding_amount REAL", "status TEXT",
                         "docstatus INTEGER", "creation TEXT", "modified TEXT"],
    "tabSales Order Item": ["name TEXT PRIMARY KEY", 'parent TEXT REFERENCES "tabSales Order"(name)', "idx INTEGER",
                            "item_code TEXT", "item_name TEXT", "item_group TEXT", "qty REAL", "rate REAL",
                            "amount REAL", "creation TEXT", "modified TEXT"],
    "tabPayment Entry": ["name TEXT PRIMARY KEY", "payment_type TEXT", "party_type TEXT",
                         'party TEXT REFERENCES "tabCustomer"(name)', "posting_date TEXT", "paid_amount REAL",
                         "paid_from_account_currency TEXT", "docstatus INTEGER", "creation TEXT", "modified TEXT"],
    "tabPayment Entry Reference": ["name TEXT PRIMARY KEY", 'parent TEXT REFERENCES "tabPayment Entry"(name)',
                                   "reference_doctype TEXT", "reference_name TEXT", "allocated_amount REAL",
                                   "creation TEXT", "modified TEXT"],
    "tabIssue": ["name TEXT PRIMARY KEY", "subject TEXT", 'customer TEXT REFERENCES "tabCustomer"(name)',
                 "raised_by TEXT", "status TEXT", "priority TEXT", "issue_type TEXT", "opening_date TEXT",
                 "resolution_date TEXT", "creation TEXT", "modified TEXT"],
    # Frappe's Contact (frappe/contacts/doctype/contact): a person, linked to customers, suppliers or leads through
    # its `links` child table, whose rows are "tabDynamic Link" rows (no foreign key: link_name may be stale).
    "tabContact": ["name TEXT PRIMARY KEY", "first_name TEXT", "last_name TEXT", "email_id TEXT", "phone TEXT",
                   "mobile_no TEXT", "designation TEXT", "is_primary_contact INTEGER", "creation TEXT",
                   "modified TEXT"],
    "tabDynamic Link": ["name TEXT PRIMARY KEY", 'parent TEXT REFERENCES "tabContact"(name)', "parenttype TEXT",
                        "parentfield TEXT", "link_doctype TEXT", "link_name TEXT", "link_title TEXT", "idx INTEGER",
                        "creation TEXT", "modified TEXT"],
}

COMPANY = "Demo Trading (Shanghai) Co., Ltd."  # company currency CNY: conversion_rate converts to CNY
COUNTRY_NAMES = {"CN": "China", "DE": "Germany", "US": "United States", "GB": "United Kingdom"}
ORDER_STATUS = {"draft": ("Draft", 0), "sent": ("Draft", 0), "confirmed": ("To Deliver and Bill", 1),
                "done": ("Completed", 1), "cancelled": ("Cancelled", 2)}
PRIORITIES = ("Low", "Medium", "High", "Urgent")
ISSUE_TYPES = {"complaint": "Complaint", "question": "Question", "bug": "Bug"}
ISSUE_OPEN_STATUS = {"new": "Open", "progress": "Open", "replied": "Replied", "hold": "Hold"}


def _conversion_rate(currency: str, day: date) -> float:
    """A rate that drifts by date (±2 %) without using randomness: same day, same rate."""
    if currency == "CNY":
        return 1.0
    drift = ((day.toordinal() % 61) - 30) / 1500
    return round(RATES_TO_CNY[currency] * (1 + drift), 4)


def _invoice_status(invoice: Invoice, anchor: date) -> tuple[str, int, float]:
    """(status, docstatus, outstanding_amount) as ERPNext derives them on the anchor date."""
    if invoice.kind == "credit_note":
        return "Return", 1, 0.0
    status = invoice.status
    if status == "draft":
        return "Draft", 0, invoice.amount
    if status == "cancelled":
        return "Cancelled", 2, 0.0
    if status in ("paid", "reversed"):
        return "Paid", 1, 0.0
    if invoice.due_date < anchor:
        return "Overdue", 1, invoice.residual
    return ("Unpaid" if status == "open" else "Partly Paid"), 1, invoice.residual


def _addresses_and_customers(records: list[Record]):
    addresses, customers = [], []
    for r in records:
        address_name = None
        if r.street or r.city:
            address_name = f"ADDR-{len(addresses) + 1:05d}"
            addresses.append((address_name, r.street, r.city, r.postcode, COUNTRY_NAMES[r.customer.address.country],
                              ts(r.created), ts(r.created)))
        customers.append((r.source_id, r.name, "Company" if r.customer.is_company else "Individual", r.tax_id,
                          r.email, r.phone, address_name, int(not r.active), ts(r.created), ts(r.written)))
    return addresses, customers


def _contacts(contacts: list[Contact], records: list[Record]):
    """tabContact rows and their one Dynamic Link each (child rows are named by a hash in Frappe)."""
    title = {r.source_id: r.name for r in records}
    people, links, primary = [], [], set()
    for c in contacts:
        customer = party_source_id("erpnext", c)
        first = customer not in primary  # the first contact entered for a customer is its primary contact
        primary.add(customer)
        people.append((c.source_id, c.first_name, c.last_name, c.email, None, c.phone, c.job_title, int(first),
                       ts(c.created), ts(c.written)))
        digest = hashlib.sha1(f"{c.source_id}/links/1".encode()).hexdigest()[:10]
        links.append((digest, c.source_id, "Contact", "links", "Customer", customer, title.get(customer, customer), 1,
                      ts(c.created), ts(c.written)))
    return people, links


def write(path: Path, records: list[Record], docs: Documents, anchor: date, contacts: list[Contact] = ()) -> None:
    def customer(doc) -> str:
        orphan = getattr(doc, "orphan_party", None)
        return source_id("erpnext", orphan) if orphan else doc.record.source_id

    addresses, customers = _addresses_and_customers(records)
    conn = sqlite_out.create(path, SCHEMA)
    insert = lambda table, rows: sqlite_out.insert(conn, SCHEMA, table, rows)  # noqa: E731
    insert("tabAddress", addresses)
    insert("tabCustomer", customers)
    insert("tabSales Order", ((o.number, o.record.source_id, ds(o.ordered.date()), *ORDER_STATUS[o.status],
                               o.currency, o.amount, COMPANY, ts(o.created), ts(o.written)) for o in docs.orders))
    insert("tabSales Order Item", ((f"{o.number}-{line.n}", o.number, line.n, line.product[0], line.product[1],
                                    line.product[2], line.quantity, line.unit_price, line.amount, ts(o.created),
                                    ts(o.written or o.created))
                                   for o in docs.orders for line in lines_of(o)))
    rows = []
    for i in docs.invoices:
        status, docstatus, outstanding = _invoice_status(i, anchor)
        sign = -1 if i.kind == "credit_note" else 1
        rows.append((i.number, customer(i), ds(i.invoice_date), ds(i.due_date), int(i.kind == "credit_note"),
                     i.currency, _conversion_rate(i.currency, i.invoice_date), sign * i.amount, outstanding, status,
                     docstatus, ts(i.created), ts(i.written)))
    insert("tabSales Invoice", rows)
    entries, references = [], []
    for i in docs.invoices:
        _, docstatus, outstanding = _invoice_status(i, anchor)
        if docstatus != 1:
            continue
        for payment in payments_of(i, i.amount - outstanding):
            name = f"ACC-PAY-{payment.paid.year}-{len(entries) + 1:05d}"
            stamp = ts(datetime.combine(payment.paid, time(11, 0)))
            entries.append((name, "Receive", "Customer", customer(i), ds(payment.paid), payment.amount, i.currency, 1,
                            stamp, stamp))
            references.append((f"{name}-1", name, "Sales Invoice", i.number, payment.amount, stamp, stamp))
    insert("tabPayment Entry", entries)
    insert("tabPayment Entry Reference", references)
    insert("tabIssue", ((t.number, t.subject, customer(t), t.record.email.strip() if t.record.email else None,
                         "Closed" if t.closed else ISSUE_OPEN_STATUS[t.open_state], PRIORITIES[t.priority],
                         ISSUE_TYPES[t.category], ds(t.opened.date()), ts(t.closed), ts(t.opened), ts(t.written))
                        for t in docs.tickets))
    people, links = _contacts(contacts, records)
    insert("tabContact", people)
    insert("tabDynamic Link", links)
    conn.commit()
    conn.close()
