"""Deterministic demo data: three ERP databases (SQLite) with overlapping, messy customers and a ground truth.

`generate(out_dir)` writes

- ``odoo.db``, ``erpnext.db``, ``tryton.db``: realistic subsets of each ERP's tables (see the
  ``SCHEMA`` dicts in `demodata.odoo`, `demodata.erpnext`, `demodata.tryton`);
- ``ground_truth.csv`` (source_system, source_id, true_customer_id): one row per customer record of
  the three databases, naming the real-world customer (``T00001`` ...) behind it;
- ``bad_rows.csv`` (source_system, entity, source_id, defect): every deliberately broken row.

About 85 % of the true customers are Chinese (simplified-Chinese names, +86 numbers, unified social
credit codes), 15 % German, US or British; 60 % are companies. Each appears in 1, 2 or 3 systems
(about 40/35/25 %), sometimes twice in one system, with noise between its records: traditional script,
pinyin (``Zhang Wei`` / ``Wei Zhang``, ``Shanghai Huaxin Trading Co., Ltd.``), e-mail case and spaces,
phone formats, tax-id case and spacing, one-letter typos, street abbreviations, missing fields.
Company customers have 1-3 contact persons, in Odoo (partners with a parent) and ERPNext (Contacts linked through
Dynamic Links): not customer records, not in the ground truth (`demodata.contacts`).

Guarantees (tests/test_demodata.py checks them; entity-resolution tests may rely on them)
-------------------------------------------------------------------------------------------
Strong keys, normalised: tax id = upper case without spaces and hyphens; e-mail = strip + lower;
phone = E.164 from ``phonenumbers.parse(value, "CN")``. Names compare after NFKC, opencc
traditional→simplified, casefold and whitespace collapse; "a typo" is one inserted, deleted or
substituted character.

1. Any two records of the same true customer are connected by a chain of records in which
   consecutive records share a strong key; where a link rests on the phone alone, the two names are
   equal or one typo apart (a pinyin and a Chinese name are never joined by a phone alone).
2. Two different true customers never share a tax id or an e-mail. About 2 % of companies share a
   switchboard phone with another company whose name is clearly different (every name variant at
   least two edits away), so the rule in 1 never joins them.
   Hence union-find over strong keys, ignoring phone links between differently named records,
   reproduces ground_truth.csv exactly.
3. Bad rows are listed in bad_rows.csv, ``max(2, n_customers // 200)`` of each kind, rotated over the
   systems: customer_record ``missing_name`` / ``malformed_email`` (such a record is the only record
   of its own true customer and has no documents); order ``negative_amount`` / ``unknown_currency``
   (``XYZ``; a currency row is added in Odoo and Tryton); invoice ``due_before_issue`` /
   ``orphan_customer``; service_ticket ``closed_before_opened`` (Odoo, ERPNext: Tryton complaints
   have no close time) / ``orphan_customer``; contact ``orphan_customer`` (``orphans_per_system`` in Odoo
   and in ERPNext, listed last). A bad document is otherwise an ordinary document; no other row has any of
   these defects.
4. Documents fall in the 3 years before anchor_date; every create/write/modified timestamp is at
   most anchor_date 23:59:59 UTC and every write is at or after its create. Cancelled documents
   keep their amounts. Some customers are archived (Odoo active=0, ERPNext disabled=1, Tryton
   active=0) and otherwise normal; merged Tryton parties are inactive with replaced_by set.
5. Same arguments, same bytes of content: all randomness comes from ``random.Random`` instances
   seeded with strings derived from ``seed`` (string seeds hash with SHA-512, not ``hash()``);
   no wall clock, no iteration over sets. Each stage has its own stream so changing one stage does
   not reshuffle the others. Work is linear in n_customers apart from sorting documents by date.
"""
from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from . import defects, erpnext, odoo, tryton
from .contacts import CONTACT_SYSTEMS, Contact, contacts_of, make_people, orphans_per_system
from .clock import Clock
from .documents import Documents, make_documents
from .identifiers import KeyFactory
from .people import Customer, make_bad_customer, make_customer, share_switchboards
from .records import SYSTEMS, Record, customer_records

SYSTEM_COUNT_WEIGHTS = (40, 35, 25)  # a customer is in 1, 2 or 3 systems
MIN_CUSTOMERS = 20


def _stream(seed: int, stage: str) -> random.Random:
    return random.Random(f"demodata/{seed}/{stage}")


def _customers(n_customers: int, seed: int, planned: list[defects.Planned]) -> list[Customer]:
    """True customers T00001..; the bad ones sit at random positions, each in its planned system."""
    rng = _stream(seed, "customers")
    keys = KeyFactory(rng)
    bad_plans = [p for p in planned if p.entity == "customer_record"]
    bad_at = dict(zip(sorted(rng.sample(range(n_customers), len(bad_plans))), bad_plans))
    customers = []
    for i in range(n_customers):
        tid = f"T{i + 1:05d}"
        if i in bad_at:
            customer = make_bad_customer(rng, keys, tid, bad_at[i].defect)
            customer.systems = [bad_at[i].system]
        else:
            customer = make_customer(rng, keys, tid)
            k = rng.choices((1, 2, 3), weights=SYSTEM_COUNT_WEIGHTS)[0]
            chosen = rng.sample(SYSTEMS, k)
            customer.systems = [s for s in SYSTEMS if s in chosen]
        customers.append(customer)
    share_switchboards(rng, customers)
    return customers


def _records(customers: list[Customer], seed: int, clock: Clock) -> dict[str, list[Record]]:
    """Records per system, ids assigned in creation order as the ERP would have."""
    rng = _stream(seed, "records")
    by_system: dict[str, list[Record]] = {s: [] for s in SYSTEMS}
    for customer in customers:
        for record in customer_records(customer, rng, clock):
            by_system[record.system].append(record)
    for records in by_system.values():
        records.sort(key=lambda r: r.created)
        for row_id, record in enumerate(records, 1):
            record.id = row_id
    return by_system


def _write_system(out_dir: Path, system: str, records: list[Record], docs: Documents, clock: Clock,
                  contacts: list[Contact]) -> None:
    if system == "odoo":
        odoo.write(out_dir / "odoo.db", records, docs, contacts)
    elif system == "erpnext":
        erpnext.write(out_dir / "erpnext.db", records, docs, clock.anchor_date, contacts)
    else:
        tryton.write(out_dir / "tryton.db", records, docs, clock.end)


def system_contacts(records: list[Record], people: dict, system: str, seed: int, clock: Clock, n_customers: int):
    """One system's contacts and their bad rows, from a stream of their own (demodata.contacts)."""
    return contacts_of(records, people, system, _stream(seed, f"contacts/{system}"), clock,
                       orphans_per_system(n_customers))


def _write_csv(path: Path, header: tuple[str, ...], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate(out_dir: Path, n_customers: int = 300, seed: int = 7,
             anchor_date: date = date(2026, 6, 30)) -> dict:
    """(Re)create the three ERP databases and both CSVs in out_dir; return row counts."""
    if n_customers < MIN_CUSTOMERS:
        raise ValueError(f"n_customers must be at least {MIN_CUSTOMERS} (bad rows need room)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(anchor_date)
    planned = defects.plan(n_customers)
    customers = _customers(n_customers, seed, planned)
    records = _records(customers, seed, clock)
    people = make_people(customers, seed)

    bad_rows = defects.customer_bad_rows(records)
    doc_counts: dict[str, dict[str, int]] = {"orders": {}, "invoices": {}, "service_tickets": {}, "contacts": {}}
    contact_bad_rows = []
    for system in SYSTEMS:  # one system's documents in memory at a time
        docs = make_documents(records[system], system, _stream(seed, f"documents/{system}"), clock)
        bad_rows += defects.break_documents(docs, system, planned, _stream(seed, f"defects/{system}"),
                                            max_party_id=len(records[system]))
        contacts: list[Contact] = []
        if system in CONTACT_SYSTEMS:
            contacts, bad = system_contacts(records[system], people, system, seed, clock, n_customers)
            contact_bad_rows += bad
        _write_system(out_dir, system, records[system], docs, clock, contacts)
        for kind, rows in (("orders", docs.orders), ("invoices", docs.invoices), ("service_tickets", docs.tickets),
                           ("contacts", contacts)):
            doc_counts[kind][system] = len(rows)
    bad_rows += contact_bad_rows  # after the other systems' rows: those keep their place in bad_rows.csv

    _write_csv(out_dir / "ground_truth.csv", ("source_system", "source_id", "true_customer_id"),
               ((s, r.source_id, r.customer.tid) for s in SYSTEMS for r in records[s]))
    _write_csv(out_dir / "bad_rows.csv", ("source_system", "entity", "source_id", "defect"),
               ((b.source_system, b.entity, b.source_id, b.defect) for b in bad_rows))
    return {
        "true_customers": n_customers,
        "customer_records": {s: len(records[s]) for s in SYSTEMS},
        **doc_counts,
        "bad_rows": len(bad_rows),
    }
