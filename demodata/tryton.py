"""tryton.db: Tryton's party, sale, account_invoice and sale_complaint tables.

Tryton specifics kept on purpose: write_date stays NULL on rows never modified; *_amount_cache is
NULL until a sale is confirmed or an invoice posted; drafts have no number yet; merged parties are
inactive and point to the survivor through replaced_by; contact data lives in
party_contact_mechanism and tax ids in party_identifier.
"""
from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

from . import sqlite_out
from .clock import DAY, ds, ts
from .documents import CATEGORIES, PRODUCTS, Documents, currency_table, customer_ref, lines_of, payments_of
from .records import Record

SCHEMA = {
    "country_country": ["id INTEGER PRIMARY KEY", "code TEXT"],
    "currency_currency": ["id INTEGER PRIMARY KEY", "code TEXT"],
    "party_party": ["id INTEGER PRIMARY KEY", "code TEXT", "name TEXT", "active INTEGER",
                    "replaced_by INTEGER REFERENCES party_party(id)", "create_date TEXT", "write_date TEXT"],
    "party_contact_mechanism": ["id INTEGER PRIMARY KEY", "party INTEGER REFERENCES party_party(id)", "type TEXT",
                                "value TEXT"],
    "party_identifier": ["id INTEGER PRIMARY KEY", "party INTEGER REFERENCES party_party(id)", "type TEXT",
                         "code TEXT"],
    "party_address": ["id INTEGER PRIMARY KEY", "party INTEGER REFERENCES party_party(id)", "street_unstructured TEXT",
                      "city TEXT", "postal_code TEXT", "country INTEGER REFERENCES country_country(id)"],
    "sale_sale": ["id INTEGER PRIMARY KEY", "number TEXT", "reference TEXT",
                  "party INTEGER REFERENCES party_party(id)", "state TEXT", "sale_date TEXT",
                  "currency INTEGER REFERENCES currency_currency(id)", "total_amount_cache REAL", "create_date TEXT",
                  "write_date TEXT"],
    "account_invoice": ["id INTEGER PRIMARY KEY", "number TEXT", "type TEXT", "state TEXT",
                        "party INTEGER REFERENCES party_party(id)", "invoice_date TEXT", "payment_term_date TEXT",
                        "total_amount_cache REAL", "currency INTEGER REFERENCES currency_currency(id)",
                        "create_date TEXT", "write_date TEXT"],
    "product_category": ["id INTEGER PRIMARY KEY", "name TEXT"],
    "product_template": ["id INTEGER PRIMARY KEY", "name TEXT"],
    "product_template-product_category": ["id INTEGER PRIMARY KEY",
                                          "template INTEGER REFERENCES product_template(id)",
                                          "category INTEGER REFERENCES product_category(id)"],
    "product_product": ["id INTEGER PRIMARY KEY", "template INTEGER REFERENCES product_template(id)", "code TEXT"],
    "sale_line": ["id INTEGER PRIMARY KEY", "sale INTEGER REFERENCES sale_sale(id)", "sequence INTEGER",
                  "product INTEGER REFERENCES product_product(id)", "description TEXT", "quantity REAL",
                  "unit_price REAL", "create_date TEXT", "write_date TEXT"],
    # Payment lines of invoices: Tryton links them through the relation table of Invoice.payment_lines.
    "account_move": ["id INTEGER PRIMARY KEY", "date TEXT", "state TEXT", "create_date TEXT", "write_date TEXT"],
    "account_move_line": ["id INTEGER PRIMARY KEY", "move INTEGER REFERENCES account_move(id)",
                          "party INTEGER REFERENCES party_party(id)", "debit REAL", "credit REAL", "create_date TEXT",
                          "write_date TEXT"],
    "account_invoice-account_move_line": ["id INTEGER PRIMARY KEY", "invoice INTEGER REFERENCES account_invoice(id)",
                                          "line INTEGER REFERENCES account_move_line(id)", "create_date TEXT",
                                          "write_date TEXT"],
    "sale_complaint": ["id INTEGER PRIMARY KEY", "number TEXT", "customer INTEGER REFERENCES party_party(id)",
                       "origin TEXT", "state TEXT", "date TEXT", "description TEXT", "create_date TEXT",
                       "write_date TEXT"],
}

COUNTRIES = [(1, "CN"), (2, "DE"), (3, "US"), (4, "GB")]
CURRENCIES = [(1, "CNY"), (2, "EUR"), (3, "USD")]
INVOICE_STATE = {"draft": "draft", "validated": "validated", "open": "posted", "partial": "posted",
                 "paid": "paid", "reversed": "paid", "cancelled": "cancelled"}
COMPLAINT_OPEN_STATE = {"new": "draft", "progress": "waiting", "replied": "approved", "hold": "waiting"}


def _sale_state(status: str, ordered: datetime, now: datetime) -> str:
    """Confirmed sales turn 'processing' once shipments start, here after a week."""
    if status == "confirmed":
        return "processing" if now - ordered > 7 * DAY else "confirmed"
    return {"draft": "draft", "sent": "quotation", "done": "done", "cancelled": "cancelled"}[status]


def _complaint_state(ticket) -> str:
    if ticket.outcome == "solved":
        return "done"
    if ticket.outcome == "cancelled":
        return "rejected" if ticket.priority else "cancelled"
    return COMPLAINT_OPEN_STATE[ticket.open_state]


def _description(ticket) -> str:
    sale = ticket.order.number
    if ticket.record.customer.market == "CN":
        return f"{ticket.subject}（销售单 {sale}）" if sale else ticket.subject
    return f"{ticket.subject} (sale {sale})" if sale else ticket.subject


def _party_rows(records: list[Record]):
    """party_party plus its contact mechanisms, identifiers and addresses, ids in party order."""
    country_id = {code: cid for cid, code in COUNTRIES}
    parties, mechanisms, identifiers, addresses = [], [], [], []
    for r in records:
        c = r.customer
        parties.append((r.id, f"P{r.id:04d}", r.name, int(r.active), r.replaced_by.id if r.replaced_by else None,
                        ts(r.created), ts(r.written)))
        if r.email:
            mechanisms.append((len(mechanisms) + 1, r.id, "email", r.email))
        if r.phone:
            mechanisms.append((len(mechanisms) + 1, r.id, "mobile" if c.phone.is_mobile else "phone", r.phone))
        if r.extra_mobile:
            mechanisms.append((len(mechanisms) + 1, r.id, "mobile", r.extra_mobile))
        if r.tax_id:
            identifiers.append((len(identifiers) + 1, r.id, c.tax_type, r.tax_id))
        if r.street or r.city:
            addresses.append((len(addresses) + 1, r.id, r.street, r.city, r.postcode, country_id[c.address.country]))
    return parties, mechanisms, identifiers, addresses


def write(path: Path, records: list[Record], docs: Documents, now: datetime) -> None:
    currencies, currency_id = currency_table(CURRENCIES, docs)
    party = customer_ref

    parties, mechanisms, identifiers, addresses = _party_rows(records)
    conn = sqlite_out.create(path, SCHEMA)
    insert = lambda table, rows: sqlite_out.insert(conn, SCHEMA, table, rows)  # noqa: E731
    insert("country_country", COUNTRIES)
    insert("currency_currency", currencies)
    insert("party_party", parties)
    insert("party_contact_mechanism", mechanisms)
    insert("party_identifier", identifiers)
    insert("party_address", addresses)
    insert("sale_sale", ((o.id, o.number, o.reference, o.record.id, _sale_state(o.status, o.ordered, now),
                          ds(o.ordered.date()), currency_id[o.currency],
                          None if o.status in ("draft", "sent") else o.amount, ts(o.created), ts(o.written))
                         for o in docs.orders))
    insert("account_invoice", ((i.id, i.number, "out", INVOICE_STATE[i.status], party(i), ds(i.invoice_date),
                                ds(i.due_date),
                                None if i.status in ("draft", "validated") else (-i.amount if i.kind == "credit_note" else i.amount),
                                currency_id[i.currency], ts(i.created), ts(i.written)) for i in docs.invoices))
    category_id = {name: n for n, name in enumerate(CATEGORIES, 1)}
    insert("product_category", ((n, name) for name, n in category_id.items()))
    insert("product_template", ((n, p[1]) for n, p in enumerate(PRODUCTS, 1)))
    insert("product_template-product_category", ((n, n, category_id[p[2]]) for n, p in enumerate(PRODUCTS, 1)))
    insert("product_product", ((n, n, p[0]) for n, p in enumerate(PRODUCTS, 1)))
    product_id = {p[0]: n for n, p in enumerate(PRODUCTS, 1)}
    insert("sale_line", ((o.id * 10 + line.n, o.id, line.n, product_id[line.product[0]], line.product[1],
                          line.quantity, line.unit_price, ts(o.created), ts(o.written or o.created))
                         for o in docs.orders for line in lines_of(o)))
    moves, lines, links = [], [], []
    for i in docs.invoices:
        # Tryton's invoice has no residual column here: only fully paid invoices carry payment lines.
        for payment in (payments_of(i, i.amount) if i.status == "paid" else []):
            stamp = ts(datetime.combine(payment.paid, time(9, 45)))
            moves.append((len(moves) + 1, ds(payment.paid), "posted", stamp, stamp))
            lines.append((len(lines) + 1, len(moves), party(i), 0.0, payment.amount, stamp, stamp))
            links.append((len(links) + 1, i.id, len(lines), stamp, stamp))
    insert("account_move", moves)
    insert("account_move_line", lines)
    insert("account_invoice-account_move_line", links)
    insert("sale_complaint", ((t.id, t.number, party(t), f"sale.sale,{t.order.id}", _complaint_state(t),
                               ds(t.opened.date()), _description(t), ts(t.opened), ts(t.written))
                              for t in docs.tickets))
    conn.commit()
    conn.close()
