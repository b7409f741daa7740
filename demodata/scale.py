"""The demo ERPs at benchmark scale: the demo's customers, with their documents drawn vectorised (NumPy).

`generate_at_scale(out_dir, n_customers, shape=Shape(...))` writes the same files as `demodata.generate`
(odoo.db, erpnext.db, tryton.db, ground_truth.csv, bad_rows.csv, the same tables and columns), for millions of
documents in minutes instead of hours:

- True customers and their customer records are the demo's own (`generate._customers`, `generate._records`,
  the same code, seed streams and noise), so identity resolution faces exactly the demo's kind of mess, and the
  customer tables are written by the system modules' own row builders.
- Documents (orders, order lines, invoices and credit notes, payments, service tickets) follow the rules of
  `demodata.documents` — the same statuses and their weights, amount model, invoice timing, payment terms,
  credit notes, ticket resolution times, ratings, line splits and payment delays, the same numbering patterns and
  the same defects planned by `demodata.defects` — but drawn with NumPy per system, so the rows differ from the
  pure-Python generator's at the same seed. `demodata.generate` (the demo's output) is untouched by this module.
- `Shape` sets how many documents there are: orders and tickets per customer record and invoices per order, as
  means over all customer records (archived and merged records have none, as in the demo). The default shape is
  the demo's own (about 6 orders per record with documents, 0.79 invoices per order, 1.2 tickets per record).

Guarantees 1-4 of `demodata.generate` hold here too (the customer side is the demo's; documents keep their dates
in the 3 years before the anchor, writes at or after creates and at most the anchor's end, one defect per bad row,
listed in bad_rows.csv). Same arguments, same bytes: every random draw comes from a NumPy generator seeded with
a SHA-256 of (seed, stage).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from . import defects, erpnext, odoo, sqlite_out, tryton, vocab
from .clock import Clock
from .documents import (CATEGORIES, CREDIT_NOTE_SHARE, INVOICED_SHARE, NUMBERS, OLD_ORDER_WEIGHTS, ORDER_COUNT_WEIGHTS,
                        ORDER_STATES, PAYMENT_TERMS_DAYS, PRIORITY_WEIGHTS, PRODUCTS, RATES_TO_CNY,
                        RECENT_ORDER_WEIGHTS, TICKET_COUNT_WEIGHTS)
from .generate import MIN_CUSTOMERS, _customers, _records, _write_csv
from .records import SYSTEMS, Record

VERSION = "1"  # bump when the output for the same arguments changes (benchmark caches key on it)
# Customer records per true customer the demo's customer generator makes (measured: 9,485 records for 5,000
# customers at seed 7, 18,954 for 10,000): to ask for a number of records, ask for records / this many customers.
RECORDS_PER_CUSTOMER = 1.897
DAY_S, HOUR_S = 86_400, 3_600
CURRENCIES = ("CNY", "USD", "EUR", defects.UNKNOWN_CURRENCY)
MAX_EDIT_DAYS = {"draft": 3, "sent": 5, "confirmed": 10, "done": 40, "cancelled": 20}
INVOICE_STATUSES = ("draft", "validated", "open", "partial", "paid", "reversed", "cancelled")
TICKET_OUTCOMES = ("open", "solved", "cancelled")
OPEN_STATES = ("new", "progress", "replied", "hold")
CHUNK = 200_000  # rows per executemany


@dataclass(frozen=True)
class Shape:
    """Documents per customer record (means over all records) and invoices per order; None keeps the demo's."""
    orders_per_record: float | None = None
    invoices_per_order: float | None = None  # invoices and credit notes together
    tickets_per_record: float | None = None


def customers_for_records(records: int) -> int:
    """How many true customers give about `records` customer records."""
    return max(MIN_CUSTOMERS, round(records / RECORDS_PER_CUSTOMER))


def _rng(seed: int, stage: str) -> np.random.Generator:
    digest = hashlib.sha256(f"demodata-scale/{seed}/{stage}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _pick(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    """n indexes drawn with the given weights (rng.choices' meaning)."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whole seconds uniform in [lo, hi] (epoch seconds); hi < lo collapses to lo, as Clock.between."""
    span = np.maximum(hi - lo, 0)
    return lo + np.floor(rng.random(len(lo)) * (span + 1)).astype(np.int64)


def _scaled_counts(rng: np.random.Generator, base: np.ndarray, target: float | None) -> np.ndarray:
    """Counts drawn from the demo's distribution, stretched so that they add up to about `target`."""
    if target is None or base.sum() == 0:
        return base
    factor = target / base.sum()
    return np.floor(base * factor + rng.random(len(base))).astype(np.int64)


# ---------------------------------------------------------------- timestamps as the writers store them

def _ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> list:
    """'YYYY-MM-DD HH:MM:SS' per epoch second; None where not valid."""
    text = np.char.replace(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "T", " ").astype(object)
    if valid is not None:
        text[~valid] = None
    return text.tolist()


def _ds(days: np.ndarray) -> list:
    """'YYYY-MM-DD' per epoch day."""
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object).tolist()


def _epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


# ---------------------------------------------------------------- documents of one system

@dataclass
class _Records:
    """The customer records of one system as arrays, in id order (ids are 1..n)."""
    id: np.ndarray
    created: np.ndarray  # epoch seconds
    docs_until: np.ndarray  # epoch seconds, -1: no documents
    currency: np.ndarray  # index into CURRENCIES
    typical: np.ndarray
    cn: np.ndarray  # Chinese market: Chinese ticket subjects
    source_id: list[str]
    email: list[str | None]

    @classmethod
    def of(cls, records: list[Record]) -> "_Records":
        return cls(
            id=np.array([r.id for r in records], dtype=np.int64),
            created=np.array([_epoch(r.created) for r in records], dtype=np.int64),
            docs_until=np.array([_epoch(r.docs_until) if r.docs_until is not None else -1 for r in records],
                                dtype=np.int64),
            currency=np.array([CURRENCIES.index(r.currency) for r in records], dtype=np.int64),
            typical=np.array([r.customer.typical_amount for r in records], dtype=float),
            cn=np.array([r.customer.market == "CN" for r in records], dtype=bool),
            source_id=[r.source_id for r in records], email=[r.email for r in records])


def _orders(rng, recs: _Records, system: str, clock: Clock, target: float | None) -> pd.DataFrame:
    end_s = _epoch(clock.end)
    start = np.maximum(recs.created, _epoch(clock.years_ago(3)))
    eligible = (recs.docs_until >= 0) & (recs.docs_until > start)
    base = np.where(eligible, _pick(rng, len(recs.id), ORDER_COUNT_WEIGHTS), 0)
    counts = _scaled_counts(rng, base, target)
    rec = np.repeat(np.arange(len(recs.id)), counts)
    n = len(rec)
    lo, hi = start[rec], recs.docs_until[rec]
    ordered = _between(rng, lo, hi)
    recent = (end_s - ordered) < 21 * DAY_S
    status = np.where(recent, _pick(rng, n, RECENT_ORDER_WEIGHTS), _pick(rng, n, OLD_ORDER_WEIGHTS))
    created = _between(rng, np.maximum(lo, ordered - 2 * DAY_S), ordered)
    max_edit = np.array([MAX_EDIT_DAYS[s] for s in ORDER_STATES])[status] * DAY_S
    written = np.minimum(end_s, _between(rng, ordered, ordered + max_edit))
    has_written = np.ones(n, dtype=bool)
    if system == "tryton":
        has_written &= ~((status == ORDER_STATES.index("draft")) & (rng.random(n) < 0.7))
    with_ref = rng.random(n) < 0.4
    ref_no = rng.integers(100, 10_000, n)
    currency = recs.currency[rec]
    cny = np.clip(np.exp(rng.normal(np.log(recs.typical[rec]), 0.7)), 200.0, 50_000.0)
    rates = np.array([RATES_TO_CNY.get(c, 1.0) for c in CURRENCIES])
    amount = np.round(cny / rates[currency], 2)
    return pd.DataFrame({"rec": rec, "ordered": ordered, "created": created, "written": written,
                         "has_written": has_written, "status": status, "amount": amount, "currency": currency,
                         "with_ref": with_ref, "ref_no": ref_no, "defect": None})


def _office_hours(rng, days: np.ndarray) -> np.ndarray:
    return days * DAY_S + HOUR_S + rng.integers(0, 9 * HOUR_S + 1, len(days))


def _invoices(rng, recs: _Records, orders: pd.DataFrame, system: str, clock: Clock, target: float | None) -> pd.DataFrame:
    anchor_day = (clock.anchor_date - date(1970, 1, 1)).days
    end_s = _epoch(clock.end)
    share = np.array([INVOICED_SHARE.get(s, 0.0) for s in ORDER_STATES])[orders["status"].to_numpy()]
    if target is not None and share.sum() > 0:
        share = np.minimum(1.0, share * target / share.sum())
    n_orders = len(orders)
    chosen = rng.random(n_orders) < share
    issued = orders["ordered"].to_numpy() + rng.integers(0, 21, n_orders) * DAY_S
    chosen &= issued <= recs.docs_until[orders["rec"].to_numpy()]
    o = orders[chosen]
    n = len(o)
    inv_day = issued[chosen] // DAY_S
    due_day = inv_day + np.array(PAYMENT_TERMS_DAYS)[rng.integers(0, len(PAYMENT_TERMS_DAYS), n)]
    # status as _invoice_status draws it
    st = np.empty(n, dtype=np.int64)
    young_draft = ((anchor_day - inv_day) < 20) & (rng.random(n) < 0.15)
    validated = young_draft & (system == "tryton") & (rng.random(n) < 0.3)
    cancelled = ~young_draft & (rng.random(n) < 0.015)
    overdue = due_day < anchor_day
    late = np.array([INVOICE_STATUSES.index(s) for s in ("paid", "partial", "open")])
    st[:] = np.where(overdue, late[_pick(rng, n, (88, 4, 8))], late[_pick(rng, n, (30, 5, 65))])
    st[cancelled] = INVOICE_STATUSES.index("cancelled")
    st[young_draft] = INVOICE_STATUSES.index("draft")
    st[validated] = INVOICE_STATUSES.index("validated")
    created = np.maximum(o["ordered"].to_numpy(), _office_hours(rng, inv_day))
    amount = o["amount"].to_numpy()
    partial_share = rng.uniform(0.2, 0.8, n)
    residual = np.where(np.isin(st, [INVOICE_STATUSES.index("paid"), INVOICE_STATUSES.index("cancelled")]), 0.0,
                        np.where(st == INVOICE_STATUSES.index("partial"), np.round(amount * partial_share, 2), amount))
    paid_like = np.isin(st, [INVOICE_STATUSES.index("paid"), INVOICE_STATUSES.index("partial")])
    max_delta = np.where(paid_like, (due_day - inv_day) * DAY_S + 25 * DAY_S,
                         np.where(st == INVOICE_STATUSES.index("cancelled"), 10 * DAY_S, 2 * DAY_S))
    written = np.minimum(end_s, _between(rng, created, created + max_delta))
    has_written = np.ones(n, dtype=bool)
    if system == "tryton":
        has_written &= ~((st == INVOICE_STATUSES.index("draft")) & (rng.random(n) < 0.5))
    inv = pd.DataFrame({"rec": o["rec"].to_numpy(), "kind": "invoice", "status": st, "inv_day": inv_day,
                        "due_day": due_day, "amount": amount, "residual": residual,
                        "currency": o["currency"].to_numpy(), "created": created, "written": written,
                        "has_written": has_written, "defect": None, "orphan": 0})
    # credit notes, as _credit_note: they change the invoice they refund
    can = np.isin(st, [INVOICE_STATUSES.index(s) for s in ("open", "partial", "paid")]) & (rng.random(n) < CREDIT_NOTE_SHARE)
    credit_day = inv_day + rng.integers(3, 61, n)
    can &= credit_day <= anchor_day
    idx = np.flatnonzero(can)
    share_c = np.array([1.0, 1.0, 0.5, 0.3, 0.1])[rng.integers(0, 5, len(idx))]
    c_amount = np.round(amount[idx] * share_c, 2)
    c_created = _office_hours(rng, credit_day[idx])
    full = share_c == 1.0
    res = inv["residual"].to_numpy().copy()
    stc = st.copy()
    stc[idx[full]] = INVOICE_STATUSES.index("reversed")
    res[idx[full]] = 0.0
    part = idx[~full & (res[idx] > 0)]
    part_amount = c_amount[~full & (res[idx] > 0)]
    res[part] = np.maximum(0.0, np.round(res[part] - part_amount, 2))
    stc[part] = np.where(res[part] == 0, INVOICE_STATUSES.index("paid"), INVOICE_STATUSES.index("partial"))
    wr = inv["written"].to_numpy().copy()
    hw = has_written.copy()
    wr[idx] = np.where(hw[idx], np.maximum(wr[idx], c_created), c_created)
    hw[idx] = True
    inv["residual"], inv["status"], inv["written"], inv["has_written"] = res, stc, wr, hw
    credits = pd.DataFrame({"rec": inv["rec"].to_numpy()[idx], "kind": "credit_note",
                            "status": INVOICE_STATUSES.index("paid"), "inv_day": credit_day[idx],
                            "due_day": credit_day[idx], "amount": c_amount, "residual": 0.0,
                            "currency": inv["currency"].to_numpy()[idx], "created": c_created,
                            "written": np.minimum(end_s, _between(rng, c_created, c_created + 3 * DAY_S)),
                            "has_written": True, "defect": None, "orphan": 0})
    return pd.concat([inv, credits], ignore_index=True)


def _tickets(rng, recs: _Records, orders: pd.DataFrame, system: str, clock: Clock, target: float | None) -> pd.DataFrame:
    end_s = _epoch(clock.end)
    start = np.maximum(recs.created, _epoch(clock.years_ago(3)))
    eligible = (recs.docs_until >= 0) & (recs.docs_until > start)
    order_counts = np.bincount(orders["rec"].to_numpy(), minlength=len(recs.id))
    if system == "tryton":  # a Tryton complaint must originate from a sale
        eligible &= order_counts > 0
    base = np.where(eligible, _pick(rng, len(recs.id), TICKET_COUNT_WEIGHTS), 0)
    counts = _scaled_counts(rng, base, target)
    rec = np.repeat(np.arange(len(recs.id)), counts)
    n = len(rec)
    order_row = np.full(n, -1, dtype=np.int64)
    lo = start[rec]
    if system == "tryton":
        first = np.concatenate([[0], np.cumsum(order_counts)[:-1]])  # orders are generated grouped by record
        order_row = first[rec] + np.floor(rng.random(n) * order_counts[rec]).astype(np.int64)
        lo = orders["ordered"].to_numpy()[order_row]
    opened = _between(rng, lo, recs.docs_until[rec])
    subjects = [s for s in vocab.TICKET_SUBJECTS if s[2] == "complaint"] if system == "tryton" else vocab.TICKET_SUBJECTS
    subject = rng.integers(0, len(subjects), n)
    closed = opened + HOUR_S + np.round(rng.exponential(72 * 3600, n)).astype(np.int64)
    is_open = (closed > end_s) | (rng.random(n) < 0.1)
    outcome = np.where(is_open, 0, np.where(rng.random(n) < 0.9, 1, 2))
    rating = np.full(n, np.nan)
    if system == "odoo":
        rated = (outcome == 1) & (rng.random(n) < 0.4)
        rating[rated] = np.array([5.0, 5.0, 5.0, 3.0, 3.0, 1.0])[rng.integers(0, 6, rated.sum())]
    open_state = _pick(rng, n, (35, 35, 20, 10))
    written = np.where(is_open, np.minimum(end_s, _between(rng, opened, opened + 10 * DAY_S)),
                       np.minimum(end_s, _between(rng, closed, closed + 2 * DAY_S)))
    has_written = np.ones(n, dtype=bool)
    if system == "tryton":
        has_written &= ~(is_open & (open_state == 0) & (rng.random(n) < 0.7))
    priority = _pick(rng, n, PRIORITY_WEIGHTS)
    return pd.DataFrame({"rec": rec, "opened": opened, "closed": closed, "is_open": is_open, "outcome": outcome,
                         "open_state": open_state, "priority": priority, "subject": subject, "rating": rating,
                         "order_row": order_row, "written": written, "has_written": has_written, "defect": None,
                         "orphan": 0}), subjects


def _number(frame: pd.DataFrame, system: str, kind: str, time_col: str, status_col: str | None = None) -> pd.DataFrame:
    """Sort in creation order (stable), ids 1..n, numbers by the demo's patterns (documents._number)."""
    frame = frame.iloc[np.argsort(frame[time_col].to_numpy(), kind="stable")].reset_index(drop=True)
    n = len(frame)
    frame["id"] = np.arange(1, n + 1)
    patterns = NUMBERS[system]
    doc_kind = frame["kind"].to_numpy() if kind == "invoice" else np.full(n, kind, dtype=object)
    numbered = np.ones(n, dtype=bool)
    if kind != "ticket" and system == "tryton":
        names = (np.array(INVOICE_STATUSES) if kind == "invoice" else np.array(ORDER_STATES))[frame[status_col].to_numpy()]
        numbered = ~np.isin(names, ["draft", "validated"])
    year = frame[time_col].to_numpy().astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970
    series = np.array([patterns[k].split("{")[0] for k in doc_kind], dtype=object)
    key = pd.DataFrame({"s": series, "y": year})[numbered]
    counter = np.zeros(n, dtype=np.int64)
    counter[numbered] = key.groupby(["s", "y"], sort=False).cumcount().to_numpy() + 1
    seq = np.cumsum(numbered)
    ids, pats = frame["id"].to_numpy(), [patterns[k] for k in doc_kind]
    frame["number"] = [p.format(id=i, year=y, n=c, seq=s) if ok else None
                       for p, i, y, c, s, ok in zip(pats, ids.tolist(), year.tolist(), counter.tolist(), seq.tolist(),
                                                    numbered.tolist())]
    return frame


def _break(rng, system: str, planned: list[defects.Planned], orders, invoices, tickets, max_party_id: int) -> list:
    """The planned document defects of this system (defects.break_documents' rules), on the numbered documents."""
    bad = []
    frames = {"order": orders, "invoice": invoices, "service_ticket": tickets}
    for entity, defect in defects.DOCUMENT_DEFECTS:
        wanted = sum(1 for p in planned if p.system == system and p.entity == entity and p.defect == defect)
        if not wanted:
            continue
        f = frames[entity]
        ok = f["defect"].isna().to_numpy().copy()
        if entity == "order" and defect == "negative_amount" and system == "tryton":
            ok &= ~np.isin(f["status"].to_numpy(), [ORDER_STATES.index("draft"), ORDER_STATES.index("sent")])
        if entity == "invoice" and defect == "due_before_issue":
            ok &= (f["kind"] == "invoice").to_numpy()
        if defect == "closed_before_opened":
            ok &= ~f["is_open"].to_numpy()
        candidates = np.flatnonzero(ok)
        chosen = np.sort(rng.choice(candidates, size=min(wanted, len(candidates)), replace=False))
        if defect == "negative_amount":
            f.loc[chosen, "amount"] = -f.loc[chosen, "amount"]
        elif defect == "unknown_currency":
            f.loc[chosen, "currency"] = CURRENCIES.index(defects.UNKNOWN_CURRENCY)
        elif defect == "due_before_issue":
            f.loc[chosen, "due_day"] = f.loc[chosen, "inv_day"] - rng.integers(1, 31, len(chosen))
        elif defect == "orphan_customer":
            f.loc[chosen, "orphan"] = max_party_id + rng.integers(1, 501, len(chosen))
        elif defect == "closed_before_opened":
            f.loc[chosen, "closed"] = (f.loc[chosen, "opened"] // DAY_S) * DAY_S - rng.integers(3600, 5 * 86400 + 1, len(chosen))
        f.loc[chosen, "defect"] = defect
        ids = f.loc[chosen, "number" if system == "erpnext" else "id"].tolist()
        bad += [defects.BadRow(system, entity, str(i), defect) for i in ids]
    return bad


def _lines(rng, orders: pd.DataFrame, n_records: int) -> pd.DataFrame:
    """One to three lines per good order, adding up to its amount, mostly of the customer's two favourite
    categories (documents.lines_of)."""
    keep = orders["defect"].isna().to_numpy() & (orders["amount"].to_numpy() > 0)
    o = np.flatnonzero(keep)
    k = np.array([1, 1, 2, 3])[rng.integers(0, 4, len(o))]
    row = np.repeat(o, k)
    starts, ends = np.cumsum(k) - k, np.cumsum(k) - 1
    pos = np.arange(len(row)) - np.repeat(starts, k)  # 0-based position within the order
    w = rng.uniform(0.2, 1.0, len(row))
    amount = orders["amount"].to_numpy()[row]
    if len(o):
        part = np.round(amount * w / np.repeat(np.add.reduceat(w, starts), k), 2)
        # the last line takes what the others leave, to the cent
        before_last = np.add.reduceat(part, starts) - part[ends]
        part[ends] = np.round(orders["amount"].to_numpy()[o] - before_last, 2)
    else:
        part = amount
    n_cat = len(CATEGORIES)
    fav1 = rng.integers(0, n_cat, n_records)
    fav2 = (fav1 + 1 + rng.integers(0, n_cat - 1, n_records)) % n_cat
    rec = orders["rec"].to_numpy()[row]
    use_fav = rng.random(len(row)) < 0.75
    cat = np.where(use_fav, np.where(rng.random(len(row)) < 0.5, fav1[rec], fav2[rec]), rng.integers(0, n_cat, len(row)))
    by_cat = [[i for i, p in enumerate(PRODUCTS) if p[2] == c] for c in CATEGORIES]
    size = np.array([len(b) for b in by_cat])
    grouped = np.array([i for b in by_cat for i in b])  # product indexes grouped by category
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    product = grouped[offset[cat] + np.floor(rng.random(len(row)) * size[cat]).astype(np.int64)]
    qty = rng.integers(1, 13, len(row))
    unit = np.round(part / qty, 4)
    return pd.DataFrame({"order": row, "n": pos + 1, "product": product, "qty": qty, "unit": unit,
                         "amount": np.round(qty * unit, 2)})


def _payments(rng, invoices: pd.DataFrame, paid_amount: np.ndarray) -> pd.DataFrame:
    """Customer payments of each paid or partly paid invoice (documents.payments_of): one, or two for a quarter."""
    status = invoices["status"].to_numpy()
    ok = ((invoices["kind"] == "invoice").to_numpy() & np.isin(status, [INVOICE_STATUSES.index("paid"),
                                                                        INVOICE_STATUSES.index("partial")])
          & invoices["defect"].isna().to_numpy() & invoices["number"].notna().to_numpy() & (paid_amount > 0.005))
    i = np.flatnonzero(ok)
    n = len(i)
    r = rng.random(n)
    delay = np.where(r < 0.65, -rng.integers(0, 11, n), np.where(r < 0.9, rng.integers(1, 31, n), rng.integers(31, 91, n)))
    inv_day, due_day = invoices["inv_day"].to_numpy()[i], invoices["due_day"].to_numpy()[i]
    written = invoices["written"].to_numpy()[i]
    latest = np.where(invoices["has_written"].to_numpy()[i], written // DAY_S, inv_day + 120)
    last = np.maximum(inv_day, np.minimum(due_day + delay, latest))
    paid = paid_amount[i]
    two = (rng.random(n) < 0.25) & (paid >= 1.0)
    earlier = np.maximum(inv_day, last - rng.integers(5, 21, n))
    first = np.round(paid / 2, 2)
    one = pd.DataFrame({"invoice": i, "k": 1, "day": np.where(two, earlier, last),
                        "amount": np.where(two, first, np.round(paid, 2))})
    second = pd.DataFrame({"invoice": i[two], "k": 2, "day": last[two], "amount": np.round(paid[two] - first[two], 2)})
    return pd.concat([one, second], ignore_index=True).sort_values(["invoice", "k"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- writers (the system modules' schemas)

def _insert(conn, schema, table: str, columns: list) -> None:
    """Rows given column-wise (lists of Python values), written in chunks."""
    n = len(columns[0]) if columns else 0
    for start in range(0, n, CHUNK):
        sqlite_out.insert(conn, schema, table, zip(*(c[start:start + CHUNK] for c in columns)))


def _currency_rows(base, orders) -> tuple[list, dict]:
    rows = list(base)
    if (orders["currency"] == CURRENCIES.index(defects.UNKNOWN_CURRENCY)).any():
        rows.append((len(rows) + 1, defects.UNKNOWN_CURRENCY))
    return rows, {code: cid for cid, code in rows}


def _party(frame: pd.DataFrame, recs: _Records) -> np.ndarray:
    """The customer id a document points to: its record's, or a missing one for an orphan defect."""
    orphan = frame["orphan"].to_numpy()
    return np.where(orphan > 0, orphan, recs.id[frame["rec"].to_numpy()])


def _product_maps():
    category_id = {name: n for n, name in enumerate(CATEGORIES, 1)}
    return category_id, {p[0]: n for n, p in enumerate(PRODUCTS, 1)}


def _write_odoo(path: Path, records: list[Record], recs: _Records, orders, lines, invoices, payments, tickets) -> None:
    schema = odoo.SCHEMA
    currencies, currency_id = _currency_rows(odoo.CURRENCIES, orders)
    cur = np.array([currency_id.get(c, 0) for c in CURRENCIES])
    conn = sqlite_out.create(path, schema)
    sqlite_out.insert(conn, schema, "res_country", odoo.COUNTRIES)
    sqlite_out.insert(conn, schema, "res_currency", currencies)
    sqlite_out.insert(conn, schema, "helpdesk_ticket_stage", odoo.STAGES)
    sqlite_out.insert(conn, schema, "res_partner", odoo._partners(records))
    o_state = np.array([odoo.ORDER_STATE[s] for s in ORDER_STATES], dtype=object)
    _insert(conn, schema, "sale_order", [
        orders["id"].tolist(), orders["number"].tolist(), recs.id[orders["rec"]].tolist(), _ts(orders["ordered"].to_numpy()),
        o_state[orders["status"]].tolist(), orders["amount"].tolist(), cur[orders["currency"]].tolist(),
        _ts(orders["created"].to_numpy()), _ts(orders["written"].to_numpy(), orders["has_written"].to_numpy())])
    move = np.array([odoo.MOVE_STATE.get(s, ("posted", "not_paid")) for s in INVOICE_STATUSES], dtype=object)
    st = invoices["status"].to_numpy()
    _insert(conn, schema, "account_move", [
        invoices["id"].tolist(), invoices["number"].tolist(),
        np.where(invoices["kind"] == "invoice", "out_invoice", "out_refund").astype(object).tolist(),
        move[st, 0].tolist(), move[st, 1].tolist(), _party(invoices, recs).tolist(), _ds(invoices["inv_day"].to_numpy()),
        _ds(invoices["due_day"].to_numpy()), invoices["amount"].tolist(), invoices["residual"].tolist(),
        cur[invoices["currency"]].tolist(), _ts(invoices["created"].to_numpy()),
        _ts(invoices["written"].to_numpy(), invoices["has_written"].to_numpy())])
    category_id, product_id = _product_maps()
    sqlite_out.insert(conn, schema, "product_category", ((n, name) for name, n in category_id.items()))
    sqlite_out.insert(conn, schema, "product_template", ((n, p[1], category_id[p[2]]) for n, p in enumerate(PRODUCTS, 1)))
    sqlite_out.insert(conn, schema, "product_product", ((n, n, p[0]) for n, p in enumerate(PRODUCTS, 1)))
    _insert(conn, schema, "sale_order_line", _line_columns(lines, orders, "odoo"))
    # account_move_line and account_partial_reconcile, as odoo._reconciliations
    inv_ids = invoices["id"].to_numpy()
    pay_inv = payments["invoice"].to_numpy()
    firsts = payments["k"].to_numpy() == 1
    receivable = inv_ids[pay_inv[firsts]] * 10
    rec_of = recs.id[invoices["rec"].to_numpy()]
    receivable_rows = pd.DataFrame({"id": receivable, "move": inv_ids[pay_inv[firsts]], "partner": rec_of[pay_inv[firsts]],
                                    "day": invoices["inv_day"].to_numpy()[pay_inv[firsts]],
                                    "debit": invoices["amount"].to_numpy()[pay_inv[firsts]], "credit": 0.0, "o": 0})
    line_id = inv_ids[pay_inv] * 10 + payments["k"].to_numpy()
    payment_rows = pd.DataFrame({"id": line_id, "move": odoo.PAYMENT_MOVES + line_id, "partner": rec_of[pay_inv],
                                 "day": payments["day"].to_numpy(), "debit": 0.0, "credit": payments["amount"].to_numpy(),
                                 "o": payments["k"].to_numpy()})
    aml = pd.concat([receivable_rows, payment_rows]).sort_values(["id"], kind="stable")
    _insert(conn, schema, "account_move_line", [aml["id"].tolist(), aml["move"].tolist(), aml["partner"].tolist(),
                                                _ds(aml["day"].to_numpy()), aml["debit"].tolist(), aml["credit"].tolist()])
    stamp = _ts(payments["day"].to_numpy() * DAY_S + 15 * HOUR_S + 30 * 60)
    _insert(conn, schema, "account_partial_reconcile", [
        list(range(1, len(payments) + 1)), (inv_ids[pay_inv] * 10).tolist(), line_id.tolist(), payments["amount"].tolist(),
        cur[invoices["currency"].to_numpy()[pay_inv]].tolist(), _ds(payments["day"].to_numpy()), stamp, stamp])
    stage = np.where(tickets["outcome"] == 1, 3, np.where(tickets["outcome"] == 2, 4,
                                                         np.where(tickets["open_state"] == 0, 1, 2)))
    subjects = _subjects(tickets, recs)
    rating = tickets["rating"].to_numpy().astype(object)
    rating[np.isnan(tickets["rating"].to_numpy())] = None
    _insert(conn, schema, "helpdesk_ticket", [
        tickets["id"].tolist(), tickets["number"].tolist(), subjects, _party(tickets, recs).tolist(),
        [recs.email[r] for r in tickets["rec"].tolist()], stage.tolist(), tickets["priority"].astype(str).tolist(),
        rating.tolist(), _ts(tickets["opened"].to_numpy()), _ts(tickets["closed"].to_numpy(), ~tickets["is_open"].to_numpy()),
        _ts(tickets["written"].to_numpy(), tickets["has_written"].to_numpy())])
    conn.commit()
    conn.close()


def _subjects(tickets: pd.DataFrame, recs: _Records) -> list[str]:
    subjects = tickets.attrs["subjects"]
    zh = np.array([s[0] for s in subjects], dtype=object)
    en = np.array([s[1] for s in subjects], dtype=object)
    idx = tickets["subject"].to_numpy()
    return np.where(recs.cn[tickets["rec"].to_numpy()], zh[idx], en[idx]).tolist()


def _line_columns(lines: pd.DataFrame, orders: pd.DataFrame, system: str) -> list:
    o = lines["order"].to_numpy()
    order_ids = orders["id"].to_numpy()[o]
    created = _ts(orders["created"].to_numpy()[o])
    has_w = orders["has_written"].to_numpy()[o]
    modified = _ts(np.where(has_w, orders["written"].to_numpy()[o], orders["created"].to_numpy()[o]))
    names = np.array([p[1] for p in PRODUCTS], dtype=object)[lines["product"].to_numpy()].tolist()
    product_id = (lines["product"].to_numpy() + 1).tolist()
    n = lines["n"].to_numpy()
    if system == "odoo":
        return [(order_ids * 10 + n).tolist(), order_ids.tolist(), product_id, names, lines["qty"].astype(float).tolist(),
                lines["unit"].tolist(), lines["amount"].tolist(), created, modified]
    if system == "tryton":
        return [(order_ids * 10 + n).tolist(), order_ids.tolist(), n.tolist(), product_id, names,
                lines["qty"].astype(float).tolist(), lines["unit"].tolist(), created, modified]
    numbers = orders["number"].to_numpy()[o]
    codes = np.array([p[0] for p in PRODUCTS], dtype=object)[lines["product"].to_numpy()].tolist()
    groups = np.array([p[2] for p in PRODUCTS], dtype=object)[lines["product"].to_numpy()].tolist()
    return [[f"{num}-{k}" for num, k in zip(numbers.tolist(), n.tolist())], numbers.tolist(), n.tolist(), codes, names,
            groups, lines["qty"].astype(float).tolist(), lines["unit"].tolist(), lines["amount"].tolist(), created, modified]


def _write_erpnext(path: Path, records: list[Record], recs: _Records, orders, lines, invoices, tickets, rng,
                   clock: Clock) -> pd.DataFrame:
    schema = erpnext.SCHEMA
    anchor_day = (clock.anchor_date - date(1970, 1, 1)).days
    addresses, customers = erpnext._addresses_and_customers(records)
    conn = sqlite_out.create(path, schema)
    sqlite_out.insert(conn, schema, "tabAddress", addresses)
    sqlite_out.insert(conn, schema, "tabCustomer", customers)

    def customer(frame):
        orphan = frame["orphan"].to_numpy() if "orphan" in frame else np.zeros(len(frame), dtype=np.int64)
        own = np.array(recs.source_id, dtype=object)[frame["rec"].to_numpy()]
        return np.where(orphan > 0, np.array([f"CUST-{x:05d}" for x in orphan], dtype=object), own).tolist()

    status = np.array([erpnext.ORDER_STATUS[s] for s in ORDER_STATES], dtype=object)
    cur = np.array(CURRENCIES, dtype=object)
    _insert(conn, schema, "tabSales Order", [
        orders["number"].tolist(), np.array(recs.source_id, dtype=object)[orders["rec"].to_numpy()].tolist(),
        _ds(orders["ordered"].to_numpy() // DAY_S), status[orders["status"], 0].tolist(),
        status[orders["status"], 1].astype(int).tolist(), cur[orders["currency"]].tolist(), orders["amount"].tolist(),
        [erpnext.COMPANY] * len(orders), _ts(orders["created"].to_numpy()),
        _ts(orders["written"].to_numpy(), orders["has_written"].to_numpy())])
    _insert(conn, schema, "tabSales Order Item", _line_columns(lines, orders, "erpnext"))
    # status, docstatus and outstanding as erpnext._invoice_status derives them
    st = np.array(INVOICE_STATUSES)[invoices["status"].to_numpy()]
    credit = (invoices["kind"] == "credit_note").to_numpy()
    residual, amount = invoices["residual"].to_numpy(), invoices["amount"].to_numpy()
    overdue = invoices["due_day"].to_numpy() < anchor_day
    e_status = np.select(
        [credit, st == "draft", st == "cancelled", np.isin(st, ["paid", "reversed"]), overdue, st == "open"],
        ["Return", "Draft", "Cancelled", "Paid", "Overdue", "Unpaid"], "Partly Paid").astype(object)
    docstatus = np.select([credit, st == "draft", st == "cancelled"], [1, 0, 2], 1)
    outstanding = np.select([credit, st == "draft", st == "cancelled", np.isin(st, ["paid", "reversed"])],
                            [0.0, amount, 0.0, 0.0], residual)
    inv_day = invoices["inv_day"].to_numpy()
    ordinal = inv_day + date(1970, 1, 1).toordinal()
    drift = ((ordinal % 61) - 30) / 1500
    base_rate = np.array([RATES_TO_CNY.get(c, 1.0) for c in CURRENCIES])[invoices["currency"].to_numpy()]
    is_cny = invoices["currency"].to_numpy() == CURRENCIES.index("CNY")
    rate = np.where(is_cny, 1.0, np.round(base_rate * (1 + drift), 4))
    unknown = invoices["currency"].to_numpy() == CURRENCIES.index(defects.UNKNOWN_CURRENCY)
    rate[unknown] = 1.0  # cannot happen (only orders get the unknown currency); kept defined
    _insert(conn, schema, "tabSales Invoice", [
        invoices["number"].tolist(), customer(invoices), _ds(inv_day), _ds(invoices["due_day"].to_numpy()),
        credit.astype(int).tolist(), cur[invoices["currency"]].tolist(), rate.tolist(),
        np.where(credit, -amount, amount).tolist(), outstanding.tolist(), e_status.tolist(), docstatus.tolist(),
        _ts(invoices["created"].to_numpy()), _ts(invoices["written"].to_numpy(), invoices["has_written"].to_numpy())])
    paid_amount = np.where(docstatus == 1, amount - outstanding, 0.0)
    payments = _payments(rng, invoices, paid_amount)
    pi = payments["invoice"].to_numpy()
    year = payments["day"].to_numpy().astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    names = [f"ACC-PAY-{y}-{k:05d}" for y, k in zip(year.tolist(), range(1, len(payments) + 1))]
    stamp = _ts(payments["day"].to_numpy() * DAY_S + 11 * HOUR_S)
    _insert(conn, schema, "tabPayment Entry", [
        names, ["Receive"] * len(names), ["Customer"] * len(names), np.array(customer(invoices), dtype=object)[pi].tolist(),
        _ds(payments["day"].to_numpy()), payments["amount"].tolist(), cur[invoices["currency"].to_numpy()[pi]].tolist(),
        [1] * len(names), stamp, stamp])
    _insert(conn, schema, "tabPayment Entry Reference", [
        [f"{x}-1" for x in names], names, ["Sales Invoice"] * len(names), invoices["number"].to_numpy()[pi].tolist(),
        payments["amount"].tolist(), stamp, stamp])
    open_status = np.array([erpnext.ISSUE_OPEN_STATUS[s] for s in OPEN_STATES], dtype=object)
    subjects = tickets.attrs["subjects"]
    issue_type = np.array([erpnext.ISSUE_TYPES[s[2]] for s in subjects], dtype=object)
    is_open = tickets["is_open"].to_numpy()
    _insert(conn, schema, "tabIssue", [
        tickets["number"].tolist(), _subjects(tickets, recs), customer(tickets),
        [recs.email[r].strip() if recs.email[r] else None for r in tickets["rec"].tolist()],
        np.where(is_open, open_status[tickets["open_state"]], "Closed").tolist(),
        np.array(erpnext.PRIORITIES, dtype=object)[tickets["priority"]].tolist(),
        issue_type[tickets["subject"]].tolist(), _ds(tickets["opened"].to_numpy() // DAY_S),
        _ts(tickets["closed"].to_numpy(), ~is_open), _ts(tickets["opened"].to_numpy()),
        _ts(tickets["written"].to_numpy(), tickets["has_written"].to_numpy())])
    conn.commit()
    conn.close()
    return payments


def _write_tryton(path: Path, records: list[Record], recs: _Records, orders, lines, invoices, payments, tickets,
                  clock: Clock) -> None:
    schema = tryton.SCHEMA
    end_s = _epoch(clock.end)
    currencies, currency_id = _currency_rows(tryton.CURRENCIES, orders)
    cur = np.array([currency_id.get(c, 0) for c in CURRENCIES])
    parties, mechanisms, identifiers, addresses = tryton._party_rows(records)
    conn = sqlite_out.create(path, schema)
    for table, rows in (("country_country", tryton.COUNTRIES), ("currency_currency", currencies),
                        ("party_party", parties), ("party_contact_mechanism", mechanisms),
                        ("party_identifier", identifiers), ("party_address", addresses)):
        sqlite_out.insert(conn, schema, table, rows)
    st = orders["status"].to_numpy()
    confirmed = st == ORDER_STATES.index("confirmed")
    sale_state = np.array(["draft", "quotation", "confirmed", "done", "cancelled"], dtype=object)[st]
    sale_state[confirmed & (end_s - orders["ordered"].to_numpy() > 7 * DAY_S)] = "processing"
    no_total = np.isin(st, [ORDER_STATES.index("draft"), ORDER_STATES.index("sent")])
    total = orders["amount"].to_numpy().astype(object)
    total[no_total] = None
    refs = np.full(len(orders), None, dtype=object)
    year = orders["ordered"].to_numpy().astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970
    with_ref = orders["with_ref"].to_numpy()
    refs[with_ref] = [f"PO-{y}-{k}" for y, k in zip(year[with_ref].tolist(), orders["ref_no"].to_numpy()[with_ref].tolist())]
    _insert(conn, schema, "sale_sale", [
        orders["id"].tolist(), orders["number"].tolist(), refs.tolist(), recs.id[orders["rec"]].tolist(),
        sale_state.tolist(), _ds(orders["ordered"].to_numpy() // DAY_S), cur[orders["currency"]].tolist(), total.tolist(),
        _ts(orders["created"].to_numpy()), _ts(orders["written"].to_numpy(), orders["has_written"].to_numpy())])
    ist = np.array(INVOICE_STATUSES)[invoices["status"].to_numpy()]
    state = np.array([tryton.INVOICE_STATE[s] for s in INVOICE_STATUSES], dtype=object)[invoices["status"].to_numpy()]
    credit = (invoices["kind"] == "credit_note").to_numpy()
    amount = invoices["amount"].to_numpy()
    itotal = np.where(credit, -amount, amount).astype(object)
    itotal[np.isin(ist, ["draft", "validated"])] = None
    _insert(conn, schema, "account_invoice", [
        invoices["id"].tolist(), invoices["number"].tolist(), ["out"] * len(invoices), state.tolist(),
        _party(invoices, recs).tolist(), _ds(invoices["inv_day"].to_numpy()), _ds(invoices["due_day"].to_numpy()),
        itotal.tolist(), cur[invoices["currency"]].tolist(), _ts(invoices["created"].to_numpy()),
        _ts(invoices["written"].to_numpy(), invoices["has_written"].to_numpy())])
    category_id, product_id = _product_maps()
    sqlite_out.insert(conn, schema, "product_category", ((n, name) for name, n in category_id.items()))
    sqlite_out.insert(conn, schema, "product_template", ((n, p[1]) for n, p in enumerate(PRODUCTS, 1)))
    sqlite_out.insert(conn, schema, "product_template-product_category",
                      ((n, n, category_id[p[2]]) for n, p in enumerate(PRODUCTS, 1)))
    sqlite_out.insert(conn, schema, "product_product", ((n, n, p[0]) for n, p in enumerate(PRODUCTS, 1)))
    _insert(conn, schema, "sale_line", _line_columns(lines, orders, "tryton"))
    # only fully paid invoices carry payment lines (tryton.write)
    pi = payments["invoice"].to_numpy()
    ids = list(range(1, len(payments) + 1))
    stamp = _ts(payments["day"].to_numpy() * DAY_S + 9 * HOUR_S + 45 * 60)
    _insert(conn, schema, "account_move", [ids, _ds(payments["day"].to_numpy()), ["posted"] * len(ids), stamp, stamp])
    _insert(conn, schema, "account_move_line", [ids, ids, _party(invoices, recs)[pi].tolist(), [0.0] * len(ids),
                                                payments["amount"].tolist(), stamp, stamp])
    _insert(conn, schema, "account_invoice-account_move_line", [ids, invoices["id"].to_numpy()[pi].tolist(), ids,
                                                                stamp, stamp])
    outcome, open_state = tickets["outcome"].to_numpy(), tickets["open_state"].to_numpy()
    complaint_open = np.array([tryton.COMPLAINT_OPEN_STATE[s] for s in OPEN_STATES], dtype=object)
    cstate = np.where(outcome == 1, "done", np.where(outcome == 2, np.where(tickets["priority"] > 0, "rejected", "cancelled"),
                                                     complaint_open[open_state])).astype(object)
    order_row = tickets["order_row"].to_numpy()
    sale_number = orders["number"].to_numpy()[order_row]
    sale_id = orders["id"].to_numpy()[order_row]
    subj = _subjects(tickets, recs)
    cn = recs.cn[tickets["rec"].to_numpy()]
    desc = [(f"{s}（销售单 {num}）" if c else f"{s} (sale {num})") if num else s
            for s, num, c in zip(subj, sale_number.tolist(), cn.tolist())]
    _insert(conn, schema, "sale_complaint", [
        tickets["id"].tolist(), tickets["number"].tolist(), _party(tickets, recs).tolist(),
        [f"sale.sale,{i}" for i in sale_id.tolist()], cstate.tolist(), _ds(tickets["opened"].to_numpy() // DAY_S), desc,
        _ts(tickets["opened"].to_numpy()), _ts(tickets["written"].to_numpy(), tickets["has_written"].to_numpy())])
    conn.commit()
    conn.close()


# ---------------------------------------------------------------- entry point

def generate_at_scale(out_dir: Path, n_customers: int, seed: int = 7, anchor_date: date = date(2026, 6, 30),
                      shape: Shape = Shape(), progress=None) -> dict:
    """(Re)create the three ERP databases and both CSVs in out_dir at any size; return row counts.

    `shape` gives documents per customer record (see `Shape`); `progress(message)` is called between steps."""
    say = progress or (lambda message: None)
    if n_customers < MIN_CUSTOMERS:
        raise ValueError(f"n_customers must be at least {MIN_CUSTOMERS} (bad rows need room)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(anchor_date)
    planned = defects.plan(n_customers)
    say(f"{n_customers:,} true customers and their records")
    records = _records(_customers(n_customers, seed, planned), seed, clock)
    total_records = sum(len(r) for r in records.values())
    bad_rows = defects.customer_bad_rows(records)
    counts: dict[str, dict[str, int]] = {k: {} for k in ("orders", "order_lines", "invoices", "payments", "service_tickets")}
    for system in SYSTEMS:  # one system's documents in memory at a time
        rng = _rng(seed, f"documents/{system}")
        recs = _Records.of(records[system])
        share = len(recs.id) / total_records
        per = (lambda v: None if v is None else v * total_records * share)
        orders = _orders(rng, recs, system, clock, per(shape.orders_per_record))
        tickets, subjects = _tickets(rng, recs, orders, system, clock, per(shape.tickets_per_record))
        invoices = _invoices(rng, recs, orders, system, clock,
                             None if shape.invoices_per_order is None else shape.invoices_per_order * len(orders))
        orders["row"] = np.arange(len(orders))
        orders = _number(orders, system, "order", "created", "status")
        remap = np.empty(len(orders), dtype=np.int64)  # tickets point to their sale by row: follow the sort
        remap[orders["row"].to_numpy()] = np.arange(len(orders))
        tickets["order_row"] = np.where(tickets["order_row"] >= 0, remap[tickets["order_row"].clip(lower=0)], -1)
        invoices = _number(invoices, system, "invoice", "created", "status")
        tickets = _number(tickets, system, "ticket", "opened")
        tickets.attrs["subjects"] = subjects
        bad_rows += _break(_rng(seed, f"defects/{system}"), system, planned, orders, invoices, tickets, len(recs.id))
        say(f"{system}: {len(orders):,} orders, {len(invoices):,} invoices, {len(tickets):,} tickets; writing")
        lines = _lines(rng, orders, len(recs.id))
        if system == "odoo":
            paid = np.where(np.isin(invoices["status"], [INVOICE_STATUSES.index("paid"), INVOICE_STATUSES.index("partial")]),
                            invoices["amount"] - invoices["residual"], 0.0)
            payments = _payments(rng, invoices, paid)
            _write_odoo(out_dir / "odoo.db", records[system], recs, orders, lines, invoices, payments, tickets)
        elif system == "erpnext":
            payments = _write_erpnext(out_dir / "erpnext.db", records[system], recs, orders, lines, invoices, tickets, rng, clock)
        else:
            full = np.where(invoices["status"] == INVOICE_STATUSES.index("paid"), invoices["amount"], 0.0)
            payments = _payments(rng, invoices, full)
            _write_tryton(out_dir / "tryton.db", records[system], recs, orders, lines, invoices, payments, tickets, clock)
        for kind, n in (("orders", len(orders)), ("order_lines", len(lines)), ("invoices", len(invoices)),
                        ("service_tickets", len(tickets))):
            counts[kind][system] = n
        counts["payments"][system] = len(payments)
    _write_csv(out_dir / "ground_truth.csv", ("source_system", "source_id", "true_customer_id"),
               ((s, r.source_id, r.customer.tid) for s in SYSTEMS for r in records[s]))
    _write_csv(out_dir / "bad_rows.csv", ("source_system", "entity", "source_id", "defect"),
               ((b.source_system, b.entity, b.source_id, b.defect) for b in bad_rows))
    return {"true_customers": n_customers, "customer_records": {s: len(records[s]) for s in SYSTEMS}, **counts,
            "bad_rows": len(bad_rows), "generator": f"demodata.scale v{VERSION}"}
