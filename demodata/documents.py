"""Orders, invoices and service tickets, first in a system-neutral form.

Documents are drawn per customer record (0-15 orders over the 3 years before the anchor, invoices for
most confirmed orders, a few credit notes, 0-4 tickets), then sorted by creation time so ids and
document numbers grow with time as in a real ERP. The system writers translate the neutral statuses
into each ERP's vocabulary; `demodata.defects` breaks a few of them on purpose.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from . import vocab
from .clock import DAY, HOUR, Clock
from .records import Record

RATES_TO_CNY = {"CNY": 1.0, "USD": 7.2, "EUR": 7.8}
# Neutral order statuses; recent orders are more often still open.
ORDER_STATES = ("draft", "sent", "confirmed", "done", "cancelled")
RECENT_ORDER_WEIGHTS = (15, 15, 45, 10, 15)
OLD_ORDER_WEIGHTS = (2, 2, 6, 80, 10)
INVOICED_SHARE = {"done": 0.95, "confirmed": 0.5}
PAYMENT_TERMS_DAYS = (0, 15, 30, 30, 30, 45, 60)
CREDIT_NOTE_SHARE = 0.04
ORDER_COUNT_WEIGHTS = tuple(24 - k for k in range(16))  # 0..15 orders per record, mean about 6
TICKET_COUNT_WEIGHTS = (40, 25, 15, 12, 8)  # 0..4 tickets per record
PRIORITY_WEIGHTS = (45, 30, 17, 8)  # 0 low .. 3 urgent


@dataclass(slots=True)
class Order:
    record: Record
    ordered: datetime
    created: datetime
    written: datetime | None
    status: str  # draft | sent | confirmed | done | cancelled
    amount: float
    currency: str
    reference: str | None
    id: int = 0
    number: str | None = None
    defect: str | None = None


@dataclass(slots=True)
class Invoice:
    record: Record
    kind: str  # invoice | credit_note
    status: str  # draft | validated (Tryton) | open | partial | paid | reversed | cancelled
    invoice_date: date
    due_date: date
    amount: float  # positive, also for credit notes; writers sign it where the ERP does
    residual: float
    currency: str
    created: datetime
    written: datetime | None
    id: int = 0
    number: str | None = None
    defect: str | None = None
    orphan_party: int | None = None  # set by defects: a customer id that does not exist


@dataclass(slots=True)
class Ticket:
    record: Record
    opened: datetime
    closed: datetime | None
    outcome: str  # open | solved | cancelled
    open_state: str  # new | progress | replied | hold (meaningful while open)
    priority: int  # 0 low .. 3 urgent
    subject: str
    category: str  # complaint | question | bug
    rating: float | None  # Odoo customer rating 1/3/5 on some solved tickets
    order: Order | None  # Tryton complaints originate from a sale
    written: datetime | None
    id: int = 0
    number: str | None = None
    defect: str | None = None
    orphan_party: int | None = None


@dataclass(slots=True)
class Documents:
    orders: list[Order]
    invoices: list[Invoice]
    tickets: list[Ticket]


def make_documents(records: list[Record], system: str, rng: random.Random, clock: Clock) -> Documents:
    """All documents of one system, numbered in creation order."""
    docs = Documents([], [], [])
    for record in records:
        if record.docs_until is not None:
            _record_documents(record, system, rng, clock, docs)
    _number(docs, system)
    return docs


def _record_documents(record: Record, system: str, rng: random.Random, clock: Clock, docs: Documents) -> None:
    start, end = max(record.created, clock.years_ago(3)), record.docs_until
    if end <= start:
        return
    n_orders = rng.choices(range(16), weights=ORDER_COUNT_WEIGHTS)[0]
    orders = [_order(record, rng, clock, start, end) for _ in range(n_orders)]
    docs.orders.extend(orders)
    for order in orders:
        if order.status in INVOICED_SHARE and rng.random() < INVOICED_SHARE[order.status]:
            invoice = _invoice(order, system, rng, clock, end)
            if invoice:
                docs.invoices.append(invoice)
                if invoice.status in ("open", "partial", "paid") and rng.random() < CREDIT_NOTE_SHARE:
                    credit = _credit_note(invoice, rng, clock)
                    if credit:
                        docs.invoices.append(credit)
    n_tickets = rng.choices(range(5), weights=TICKET_COUNT_WEIGHTS)[0]
    if system == "tryton" and not orders:
        return  # a Tryton complaint must originate from a sale
    for _ in range(n_tickets):
        docs.tickets.append(_ticket(record, system, rng, clock, start, end, orders))


# ---------------------------------------------------------------- orders and invoices

def _amount(record: Record, currency: str, rng: random.Random) -> float:
    """Log-normal around the customer's typical order, 200-50,000 CNY, converted to the order currency."""
    cny = min(50_000.0, max(200.0, rng.lognormvariate(math.log(record.customer.typical_amount), 0.7)))
    return round(cny / RATES_TO_CNY[currency], 2)


def _order(record: Record, rng: random.Random, clock: Clock, start: datetime, end: datetime) -> Order:
    ordered = clock.between(rng, start, end)
    recent = clock.end - ordered < 21 * DAY
    status = rng.choices(ORDER_STATES, weights=RECENT_ORDER_WEIGHTS if recent else OLD_ORDER_WEIGHTS)[0]
    created = clock.between(rng, max(start, ordered - 2 * DAY), ordered)
    max_edit = {"draft": 3, "sent": 5, "confirmed": 10, "done": 40, "cancelled": 20}[status]
    written = clock.after(rng, ordered, max_edit * DAY)
    if record.system == "tryton" and status == "draft" and rng.random() < 0.7:
        written = None  # never touched since it was keyed in
    reference = f"PO-{ordered.year}-{rng.randint(100, 9999)}" if rng.random() < 0.4 else None
    return Order(record, ordered, created, written, status, _amount(record, record.currency, rng),
                 record.currency, reference)


def _invoice_status(rng: random.Random, invoice_date: date, due: date, anchor: date, system: str) -> str:
    """Most old invoices are paid; some are overdue; the latest ones may still be drafts."""
    if (anchor - invoice_date).days < 20 and rng.random() < 0.15:
        return "validated" if system == "tryton" and rng.random() < 0.3 else "draft"
    if rng.random() < 0.015:
        return "cancelled"
    weights = (88, 4, 8) if due < anchor else (30, 5, 65)
    return rng.choices(("paid", "partial", "open"), weights=weights)[0]


def _invoice(order: Order, system: str, rng: random.Random, clock: Clock, end: datetime) -> Invoice | None:
    """The invoice of a confirmed order, 0-20 days later; None if that is still in the future."""
    issued = order.ordered + rng.randint(0, 20) * DAY
    if issued > end:
        return None
    invoice_date = issued.date()
    due = invoice_date + timedelta(days=rng.choice(PAYMENT_TERMS_DAYS))
    status = _invoice_status(rng, invoice_date, due, clock.anchor_date, system)
    created = max(order.ordered, clock.office_hours(rng, invoice_date))
    residual = {"paid": 0.0, "cancelled": 0.0, "partial": round(order.amount * rng.uniform(0.2, 0.8), 2)}.get(
        status, order.amount)
    if status in ("paid", "partial"):
        written = clock.after(rng, created, (due - invoice_date).days * DAY + 25 * DAY)
    elif status == "cancelled":
        written = clock.after(rng, created, 10 * DAY)
    else:
        written = clock.after(rng, created, 2 * DAY)
    if system == "tryton" and status == "draft" and rng.random() < 0.5:
        written = None
    return Invoice(order.record, "invoice", status, invoice_date, due, order.amount, residual, order.currency,
                   created, written)


def _credit_note(invoice: Invoice, rng: random.Random, clock: Clock) -> Invoice | None:
    """A refund of all or part of an invoice; a full refund reverses the original."""
    credit_date = invoice.invoice_date + timedelta(days=rng.randint(3, 60))
    if credit_date > clock.anchor_date:
        return None
    share = rng.choice((1.0, 1.0, 0.5, 0.3, 0.1))
    amount = round(invoice.amount * share, 2)
    if share == 1.0:
        invoice.status, invoice.residual = "reversed", 0.0
    elif invoice.residual > 0:
        invoice.residual = max(0.0, round(invoice.residual - amount, 2))
        invoice.status = "paid" if invoice.residual == 0 else "partial"
    created = clock.office_hours(rng, credit_date)
    invoice.written = max(invoice.written or created, created)
    return Invoice(invoice.record, "credit_note", "paid", credit_date, credit_date, amount, 0.0, invoice.currency,
                   created, clock.after(rng, created, 3 * DAY))


# ---------------------------------------------------------------- tickets

def _ticket(record: Record, system: str, rng: random.Random, clock: Clock, start: datetime, end: datetime,
            orders: list[Order]) -> Ticket:
    """A service request; closed after an exponential resolution time unless that is still ahead."""
    order = rng.choice(orders) if system == "tryton" else None
    opened = clock.between(rng, order.ordered if order else start, end)
    subjects = [s for s in vocab.TICKET_SUBJECTS if s[2] == "complaint"] if system == "tryton" else vocab.TICKET_SUBJECTS
    subject_zh, subject_en, category = rng.choice(subjects)
    # resolution time: 1 h plus an exponential with a 3-day mean, in whole seconds
    closed = opened + HOUR + timedelta(seconds=round(rng.expovariate(1 / (72 * 3600))))
    if closed > clock.end or rng.random() < 0.1:
        closed, outcome = None, "open"
    else:
        outcome = "solved" if rng.random() < 0.9 else "cancelled"
    rating = None
    if system == "odoo" and outcome == "solved" and rng.random() < 0.4:
        rating = rng.choice((5.0, 5.0, 5.0, 3.0, 3.0, 1.0))
    open_state = rng.choices(("new", "progress", "replied", "hold"), weights=(35, 35, 20, 10))[0]
    written = clock.after(rng, closed, 2 * DAY) if closed else clock.after(rng, opened, 10 * DAY)
    if system == "tryton" and outcome == "open" and open_state == "new" and rng.random() < 0.7:
        written = None
    return Ticket(record, opened, closed, outcome, open_state,
                  rng.choices(range(4), weights=PRIORITY_WEIGHTS)[0],
                  subject_zh if record.customer.market == "CN" else subject_en, category, rating, order, written)


# ---------------------------------------------------------------- numbering

# Document number patterns: {id} is the row id, {year}/{n} a per-year counter, {seq} a plain counter
# of numbered documents (Tryton numbers a sale only once it is quoted, an invoice once it is posted).
NUMBERS = {
    "odoo": {"order": "S{id:05d}", "invoice": "INV/{year}/{n:05d}", "credit_note": "RINV/{year}/{n:05d}",
             "ticket": "HT{id:05d}"},
    "erpnext": {"order": "SAL-ORD-{year}-{n:05d}", "invoice": "ACC-SINV-{year}-{n:05d}",
                "credit_note": "ACC-SINV-{year}-{n:05d}", "ticket": "ISS-{year}-{n:05d}"},
    "tryton": {"order": "SO{seq:04d}", "invoice": "INV-{year}-{n:05d}", "credit_note": "CN-{year}-{n:05d}",
               "ticket": "CMP{id:04d}"},
}
UNNUMBERED = {"tryton": {"draft", "validated"}}  # Tryton drafts have no number yet


def _number(docs: Documents, system: str) -> None:
    """Ids and numbers in creation order; the sort is stable, so ties keep generation order."""
    patterns = NUMBERS[system]
    for kind, items in (("order", docs.orders), ("invoice", docs.invoices), ("ticket", docs.tickets)):
        items.sort(key=lambda d: d.opened if kind == "ticket" else d.created)
        counters: dict[tuple[str, int], int] = {}
        seq = 0
        for row_id, doc in enumerate(items, 1):
            doc.id = row_id
            doc_kind = doc.kind if kind == "invoice" else kind
            if kind != "ticket" and doc.status in UNNUMBERED.get(system, ()):
                continue
            year = (doc.opened if kind == "ticket" else doc.created).year
            pattern = patterns[doc_kind]
            series = pattern.split("{")[0]
            counters[(series, year)] = n = counters.get((series, year), 0) + 1
            seq += 1
            doc.number = pattern.format(id=row_id, year=year, n=n, seq=seq)


def currency_table(base: list[tuple[int, str]], docs: "Documents") -> tuple[list[tuple[int, str]], dict[str, int]]:
    """An ERP's currency rows, plus the unknown currency when a defect uses it, and code → id."""
    from .defects import UNKNOWN_CURRENCY

    rows = list(base)
    if any(o.currency == UNKNOWN_CURRENCY for o in docs.orders):
        rows.append((len(rows) + 1, UNKNOWN_CURRENCY))
    return rows, {code: cid for cid, code in rows}


def customer_ref(doc) -> int:
    """The customer id a document points to: its record's, or a missing one for an orphan defect."""
    return doc.orphan_party if getattr(doc, "orphan_party", None) else doc.record.id


# ---------------------------------------------------------------- payments

@dataclass(slots=True)
class Payment:
    invoice: Invoice
    paid: date
    amount: float


def payments_of(invoice: Invoice, paid_amount: float) -> list[Payment]:
    """The customer payments that settled `paid_amount` of an invoice: one, or two for a quarter of them, most
    on time, some late (a few very late), never before the invoice date nor after its last change.

    Drawn from a generator seeded by the invoice number, so adding payments leaves every other generated row
    as it was. Credit notes, bad rows and invoices with nothing paid have none."""
    if (invoice.kind != "invoice" or invoice.status not in ("paid", "partial") or invoice.defect
            or not invoice.number or paid_amount <= 0.005):
        return []
    rng = random.Random(f"payment:{invoice.number}")
    r = rng.random()
    delay = -rng.randint(0, 10) if r < 0.65 else rng.randint(1, 30) if r < 0.9 else rng.randint(31, 90)
    latest = invoice.written.date() if invoice.written else invoice.invoice_date + timedelta(days=120)
    last = max(invoice.invoice_date, min(invoice.due_date + timedelta(days=delay), latest))
    if rng.random() < 0.25 and paid_amount >= 1.0:
        first = round(paid_amount / 2, 2)
        earlier = max(invoice.invoice_date, last - timedelta(days=rng.randint(5, 20)))
        return [Payment(invoice, earlier, first), Payment(invoice, last, round(paid_amount - first, 2))]
    return [Payment(invoice, last, round(paid_amount, 2))]


# ---------------------------------------------------------------- order lines

# (code, name, category): what the demo companies sell.
PRODUCTS = [
    ("TEA-001", "Longjing green tea 250 g", "Tea"), ("TEA-002", "Pu'er tea cake 357 g", "Tea"),
    ("TEA-003", "Jasmine tea 500 g", "Tea"), ("ELE-001", "USB-C charger 65 W", "Electronics"),
    ("ELE-002", "Bluetooth headset", "Electronics"), ("ELE-003", "LED panel 60x60", "Electronics"),
    ("FUR-001", "Office chair", "Furniture"), ("FUR-002", "Standing desk", "Furniture"),
    ("PAC-001", "Carton box 40x30x30", "Packaging"), ("PAC-002", "Stretch film 500 mm", "Packaging"),
    ("MAC-001", "Bench drill", "Machinery"), ("MAC-002", "Air compressor 50 l", "Machinery"),
    ("TEX-001", "Cotton fabric roll", "Textiles"), ("TEX-002", "Work gloves (12 pairs)", "Textiles"),
]
CATEGORIES = sorted({p[2] for p in PRODUCTS})


@dataclass(slots=True)
class OrderLine:
    order: Order
    n: int  # 1-based position in the order
    product: tuple[str, str, str]
    quantity: int
    unit_price: float

    @property
    def amount(self) -> float:
        return round(self.quantity * self.unit_price, 2)


def lines_of(order: Order) -> list[OrderLine]:
    """One to three lines whose amounts add up to the order's total (to the cent, give or take rounding of the
    unit price), mostly from the customer's two favourite categories. Seeded by the customer and the order's
    creation time, so that other generated rows stay as they were. Bad orders have none."""
    if order.defect or order.amount <= 0:
        return []
    favourite = random.Random(f"taste:{order.record.source_id}").sample(CATEGORIES, 2)
    rng = random.Random(f"lines:{order.record.source_id}:{order.created.isoformat()}")
    weights = [rng.uniform(0.2, 1.0) for _ in range(rng.choice((1, 1, 2, 3)))]
    parts = [round(order.amount * w / sum(weights), 2) for w in weights]
    parts[-1] = round(order.amount - sum(parts[:-1]), 2)
    lines = []
    for n, part in enumerate(parts, 1):
        category = rng.choice(favourite) if rng.random() < 0.75 else rng.choice(CATEGORIES)
        product = rng.choice([p for p in PRODUCTS if p[2] == category])
        quantity = rng.randint(1, 12)
        lines.append(OrderLine(order, n, product, quantity, round(part / quantity, 4)))
    return lines
