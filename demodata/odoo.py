"""odoo.db: the Odoo tables an SQL connector reads (res_partner, sale_order, account_move, OCA helpdesk)."""
from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

from . import sqlite_out
from .clock import ds, ts
from .contacts import Contact
from .documents import CATEGORIES, PRODUCTS, Documents, currency_table, customer_ref, lines_of, payments_of
from .records import Record

SCHEMA = {
    "res_country": ["id INTEGER PRIMARY KEY", "code TEXT", "name TEXT"],
    "res_currency": ["id INTEGER PRIMARY KEY", "name TEXT"],
    "res_partner": [
        "id INTEGER PRIMARY KEY", "name TEXT", "email TEXT", "phone TEXT", "vat TEXT", "ref TEXT",
        "is_company INTEGER", "parent_id INTEGER REFERENCES res_partner(id)",
        "commercial_partner_id INTEGER REFERENCES res_partner(id)", "type TEXT", "function TEXT", "street TEXT",
        "city TEXT", "zip TEXT", "country_id INTEGER REFERENCES res_country(id)", "active INTEGER", "create_date TEXT",
        "write_date TEXT"],
    "sale_order": [
        "id INTEGER PRIMARY KEY", "name TEXT", "partner_id INTEGER REFERENCES res_partner(id)", "date_order TEXT",
        "state TEXT", "amount_total REAL", "currency_id INTEGER REFERENCES res_currency(id)", "create_date TEXT",
        "write_date TEXT"],
    "account_move": [
        "id INTEGER PRIMARY KEY", "name TEXT", "move_type TEXT", "state TEXT", "payment_state TEXT",
        "partner_id INTEGER REFERENCES res_partner(id)", "invoice_date TEXT", "invoice_date_due TEXT",
        "amount_total REAL", "amount_residual REAL", "currency_id INTEGER REFERENCES res_currency(id)",
        "create_date TEXT", "write_date TEXT"],
    # Receivable lines of invoices and the lines of the payments that settle them, matched by partial
    # reconciliations (Odoo 16+). The payments' own journal entries are left out of account_move here.
    "account_move_line": ["id INTEGER PRIMARY KEY", "move_id INTEGER", "partner_id INTEGER REFERENCES res_partner(id)",
                          "date TEXT", "debit REAL", "credit REAL"],
    "account_partial_reconcile": [
        "id INTEGER PRIMARY KEY", "debit_move_id INTEGER REFERENCES account_move_line(id)",
        "credit_move_id INTEGER REFERENCES account_move_line(id)", "amount REAL",
        "debit_currency_id INTEGER REFERENCES res_currency(id)", "max_date TEXT", "create_date TEXT", "write_date TEXT"],
    "product_category": ["id INTEGER PRIMARY KEY", "name TEXT"],
    "product_template": ["id INTEGER PRIMARY KEY", "name TEXT", "categ_id INTEGER REFERENCES product_category(id)"],
    "product_product": ["id INTEGER PRIMARY KEY", "product_tmpl_id INTEGER REFERENCES product_template(id)",
                        "default_code TEXT"],
    "sale_order_line": ["id INTEGER PRIMARY KEY", "order_id INTEGER REFERENCES sale_order(id)",
                        "product_id INTEGER REFERENCES product_product(id)", "name TEXT", "product_uom_qty REAL",
                        "price_unit REAL", "price_subtotal REAL", "create_date TEXT", "write_date TEXT"],
    "helpdesk_ticket_stage": ["id INTEGER PRIMARY KEY", "name TEXT", "is_close INTEGER"],
    "helpdesk_ticket": [
        "id INTEGER PRIMARY KEY", "number TEXT", "name TEXT", "partner_id INTEGER REFERENCES res_partner(id)",
        "partner_email TEXT", "stage_id INTEGER REFERENCES helpdesk_ticket_stage(id)", "priority TEXT",
        "rating_last_value REAL", "create_date TEXT", "closed_date TEXT", "write_date TEXT"],
}

PAYMENT_MOVES = 10_000_000  # ids of the payments' journal entries (not written; see account_move_line)
COUNTRIES = [(1, "CN", "China"), (2, "DE", "Germany"), (3, "US", "United States"), (4, "GB", "United Kingdom")]
CURRENCIES = [(1, "CNY"), (2, "USD"), (3, "EUR")]
STAGES = [(1, "New", 0), (2, "In Progress", 0), (3, "Solved", 1), (4, "Cancelled", 1)]

ORDER_STATE = {"draft": "draft", "sent": "sent", "confirmed": "sale", "done": "done", "cancelled": "cancel"}
# neutral invoice status -> (state, payment_state)
MOVE_STATE = {"draft": ("draft", "not_paid"), "open": ("posted", "not_paid"), "partial": ("posted", "partial"),
              "paid": ("posted", "paid"), "reversed": ("posted", "reversed"), "cancelled": ("cancel", "not_paid")}


def _stage(ticket) -> int:
    if ticket.outcome == "solved":
        return 3
    if ticket.outcome == "cancelled":
        return 4
    return 1 if ticket.open_state == "new" else 2


def _partners(records: list[Record]):
    country_id = {code: cid for cid, code, _ in COUNTRIES}
    for r in records:
        yield (r.id, r.name, r.email, r.phone, r.tax_id, r.ref, int(r.customer.is_company), None, r.id, "contact",
               None, r.street, r.city, r.postcode, country_id[r.customer.address.country] if r.city else None,
               int(r.active), ts(r.created), ts(r.written))


def _contacts(contacts: list[Contact]):
    """Contact persons are partners too: individuals (type contact) whose parent_id is their company."""
    for c in contacts:
        parent = c.orphan_party if c.orphan_party is not None else c.record.id
        yield (c.id, c.name, c.email, c.phone, None, None, 0, parent, parent, "contact", c.job_title, None, None, None,
               None, int(c.active), ts(c.created), ts(c.written))


def _reconciliations(docs: Documents, currency_id: dict[str, int]) -> tuple[list[tuple], list[tuple]]:
    """account_move_line and account_partial_reconcile rows for the payments of paid and partly paid invoices."""
    lines, partials = [], []
    for invoice in docs.invoices:
        payments = payments_of(invoice, invoice.amount - invoice.residual)
        if not payments:
            continue
        receivable = invoice.id * 10
        lines.append((receivable, invoice.id, invoice.record.id, ds(invoice.invoice_date), invoice.amount, 0.0))
        for k, payment in enumerate(payments, 1):
            line = receivable + k
            lines.append((line, PAYMENT_MOVES + line, invoice.record.id, ds(payment.paid), 0.0, payment.amount))
            stamp = ts(datetime.combine(payment.paid, time(15, 30)))
            partials.append((len(partials) + 1, receivable, line, payment.amount, currency_id[invoice.currency],
                             ds(payment.paid), stamp, stamp))
    return lines, partials


def write(path: Path, records: list[Record], docs: Documents, contacts: list[Contact] = ()) -> None:
    currencies, currency_id = currency_table(CURRENCIES, docs)
    partner = customer_ref

    conn = sqlite_out.create(path, SCHEMA)
    insert = lambda table, rows: sqlite_out.insert(conn, SCHEMA, table, rows)  # noqa: E731
    insert("res_country", COUNTRIES)
    insert("res_currency", currencies)
    insert("helpdesk_ticket_stage", STAGES)
    insert("res_partner", _partners(records))
    insert("res_partner", _contacts(contacts))
    insert("sale_order", ((o.id, o.number, o.record.id, ts(o.ordered), ORDER_STATE[o.status], o.amount,
                           currency_id[o.currency], ts(o.created), ts(o.written)) for o in docs.orders))
    insert("account_move", ((i.id, i.number, "out_invoice" if i.kind == "invoice" else "out_refund",
                             *MOVE_STATE[i.status], partner(i), ds(i.invoice_date), ds(i.due_date), i.amount,
                             i.residual, currency_id[i.currency], ts(i.created), ts(i.written))
                            for i in docs.invoices))
    category_id = {name: n for n, name in enumerate(CATEGORIES, 1)}
    insert("product_category", ((n, name) for name, n in category_id.items()))
    insert("product_template", ((n, p[1], category_id[p[2]]) for n, p in enumerate(PRODUCTS, 1)))
    insert("product_product", ((n, n, p[0]) for n, p in enumerate(PRODUCTS, 1)))
    product_id = {p[0]: n for n, p in enumerate(PRODUCTS, 1)}
    insert("sale_order_line", ((o.id * 10 + line.n, o.id, product_id[line.product[0]], line.product[1], line.quantity,
                                line.unit_price, line.amount, ts(o.created), ts(o.written or o.created))
                               for o in docs.orders for line in lines_of(o)))
    lines, partials = _reconciliations(docs, currency_id)
    insert("account_move_line", lines)
    insert("account_partial_reconcile", partials)
    insert("helpdesk_ticket", ((t.id, t.number, t.subject, partner(t), t.record.email, _stage(t), str(t.priority),
                                t.rating, ts(t.opened), ts(t.closed), ts(t.written)) for t in docs.tickets))
    conn.commit()
    conn.close()
