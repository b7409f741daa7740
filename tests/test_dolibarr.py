"""Dolibarr 20 on a real MariaDB: dolibarr.db (demodata.dolibarr) is loaded with Dolibarr's own table definitions
and keys, read through mappings/dolibarr.yaml by the generic SQL source, and every value compared with the generated
records and documents it was rendered from (the ERPNext system of generate(n_customers=60, seed=5))."""
from __future__ import annotations

import os
import re
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from connectors.mapping import load_mapping
from connectors.sql import SqlSource
from connectors.window import Window
from demodata import generate
from demodata.dolibarr import SCHEMA, dolibarr_database, erpnext_contacts, erpnext_system, load_mariadb, write
from erp2crm.paths import MAPPINGS
from servers.database import admin_engine_or_skip

MARIADB = os.environ.get("ERP2CRM_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
N_CUSTOMERS, SEED = 60, 5
UTC = timezone.utc
# Canonical values of the generator's neutral statuses, written out here rather than taken from the renderer.
ORDER_STATUS = {"draft": "draft", "sent": "draft", "confirmed": "confirmed", "done": "done", "cancelled": "cancelled"}
INVOICE_STATUS = {"draft": "draft", "open": "open", "partial": "open", "paid": "paid", "reversed": "paid",
                  "cancelled": "cancelled"}
PRIORITIES = ("low", "medium", "high", "urgent")
# MariaDB's DATA_TYPE for the type names Dolibarr's scripts use.
MARIADB_TYPES = {"integer": "int", "real": "double", "varchar": "varchar", "tinyint": "tinyint", "smallint": "smallint",
                 "double": "double", "date": "date", "datetime": "datetime", "timestamp": "timestamp"}


@pytest.fixture(scope="module")
def truth():
    records, docs = erpnext_system(N_CUSTOMERS, SEED)
    return records, docs, [i for i in docs.invoices if not i.orphan_party]


@pytest.fixture(scope="module")
def dolibarr(tmp_path_factory):
    sqlite_path = dolibarr_database(tmp_path_factory.mktemp("dolibarr"), N_CUSTOMERS, SEED)
    server = MARIADB.rsplit("/", 1)[0]
    admin = admin_engine_or_skip(server + "/", "MariaDB")
    name = f"erp2crm_dolibarr_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    # Sessions in UTC: MariaDB returns a TIMESTAMP (tms) in the session's time zone, and the mapping reads UTC.
    engine = create_engine(f"{server}/{name}?charset=utf8mb4",
                           connect_args={"init_command": "SET time_zone = '+00:00'"})
    try:
        load_mariadb(sqlite_path, engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE `{name}`"))


@pytest.fixture(scope="module")
def source(dolibarr):
    return SqlSource("dolibarr", load_mapping(MAPPINGS / "dolibarr.yaml"), dolibarr)


def _read(source, entity: str, window: Window | None = None) -> pd.DataFrame:
    frame = pd.concat(list(source.extract(entity, window)), ignore_index=True)
    assert frame["parse_errors"].isna().all(), frame["parse_errors"].dropna().tolist()
    return frame.set_index("source_id")


def _utc(moment) -> pd.Timestamp | None:
    return None if moment is None else pd.Timestamp(moment).tz_localize("UTC")


def _day(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def _mismatches(frame: pd.DataFrame, expected: dict[str, dict]) -> list[tuple]:
    """Every (source_id, field, read, generated) that differs; amounts to the cent."""
    assert sorted(frame.index) == sorted(expected), "the stream holds other rows than the generated ones"
    out = []
    for source_id, fields in expected.items():
        row = frame.loc[source_id]
        for field, wanted in fields.items():
            got = None if pd.isna(row[field]) else row[field]
            same = (got is not None and abs(got - wanted) < 0.005) if isinstance(wanted, float) else got == wanted
            if not same:
                out.append((source_id, field, got, wanted))
    return out


def test_mariadb_tables_have_dolibarr_20_types(dolibarr):
    with dolibarr.connect() as conn:
        found = {(t, c): (kind, nullable, default, extra) for t, c, kind, nullable, default, extra in conn.execute(text(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"))}
    for table, specs in SCHEMA.items():
        for spec in specs:
            column, kind = spec.split()[:2]
            assert found[(table, column)][0] == MARIADB_TYPES[kind.split("(")[0]], (table, column)
            assert (found[(table, column)][1] == "NO") == ("NOT NULL" in spec or "PRIMARY KEY" in spec), (table, column)
    stamped = {t for (t, c) in found if c == "tms"}
    assert stamped == {"llx_societe", "llx_commande", "llx_facture", "llx_paiement", "llx_product", "llx_ticket",
                       "llx_socpeople"}
    for table in stamped:  # a real last-modification timestamp, as Dolibarr declares it
        kind, _, default, extra = found[(table, "tms")]
        assert kind == "timestamp" and default.lower().startswith("current_timestamp"), table
        assert "on update current_timestamp" in extra.lower(), table
    # Order lines and payment allocations have no time of their own: their streams take their parent's tms.
    for table in ("llx_commandedet", "llx_paiement_facture"):
        assert not [c for (t, c), v in found.items() if t == table and v[0] in ("timestamp", "datetime", "date")]


def test_erpnext_system_is_the_one_generate_writes(tmp_path, truth):
    records, docs, _ = truth
    generate(tmp_path, n_customers=N_CUSTOMERS, seed=SEED)
    with sqlite3.connect(tmp_path / "erpnext.db") as conn:
        customers = conn.execute('SELECT name, customer_name, modified FROM "tabCustomer" ORDER BY name').fetchall()
        orders = conn.execute('SELECT name, grand_total, currency FROM "tabSales Order" ORDER BY name').fetchall()
        tickets = conn.execute('SELECT count(*) FROM "tabIssue"').fetchone()[0]
    assert customers == sorted((r.source_id, r.name, str(r.written or r.created)) for r in records)
    assert orders == sorted((o.number, o.amount, o.currency) for o in docs.orders)
    assert tickets == len(docs.tickets)


def test_customer_records(source, truth):
    records, _, _ = truth
    frame = _read(source, "customer_record")  # the supplier-only third party is not among them
    expected = {}
    for r in records:
        addressed = bool(r.street or r.city)
        expected[str(r.id)] = {
            "name": r.name.strip() or None, "is_company": r.customer.is_company, "email": r.email, "phone": r.phone,
            "street": r.street, "city": r.city, "postcode": r.postcode,
            "country": r.customer.address.country if addressed else None, "is_active": r.active,
            "updated_at": _utc(r.written or r.created)}
    assert _mismatches(frame, expected) == []
    assert not frame.loc[[str(r.id) for r in records if not r.active], "is_active"].any()
    assert any(not r.active for r in records), "the demo should hold archived customers"
    # tva_intra is varchar(20): a tax id typed longer (spaced) is kept without its spaces.
    for r in records:
        got = frame.loc[str(r.id), "tax_id"]
        if r.tax_id is None or len(r.tax_id) <= 20:
            assert (None if pd.isna(got) else got) == r.tax_id, r.id
        else:
            assert got == r.tax_id.replace(" ", ""), r.id


def test_orders(source, truth):
    _, docs, _ = truth
    frame = _read(source, "order")
    expected = {str(o.id): {
        "customer_source_id": str(o.record.id), "status": ORDER_STATUS[o.status], "ordered_at": _utc(o.ordered.date()),
        "total_amount": o.amount, "currency": o.currency, "channel": "erp", "updated_at": _utc(o.written or o.created)}
        for o in docs.orders}
    assert _mismatches(frame, expected) == []
    assert set(frame["status"]) == {"draft", "confirmed", "done", "cancelled"}
    for o in docs.orders:  # Dolibarr names a draft (PROV<rowid>), a validated order CO<yymm>-<counter>
        number = frame.loc[str(o.id), "order_number"]
        if o.status in ("draft", "sent"):
            assert number == f"(PROV{o.id})"
        else:
            assert re.fullmatch(rf"CO{o.ordered:%y%m}-\d{{4}}", number), number
    assert frame["order_number"].is_unique


def test_invoices_and_credit_notes(source, truth):
    _, _, invoices = truth
    frame = _read(source, "invoice")
    expected = {}
    for i in invoices:
        status = INVOICE_STATUS[i.status]
        total = -i.amount if i.kind == "credit_note" else i.amount
        # Dolibarr stores no remainder: an open invoice owes its total, also when partly paid (see the mapping).
        outstanding = 0.0 if status in ("paid", "cancelled", "draft") else total
        expected[str(i.id)] = {
            "customer_source_id": str(i.record.id), "kind": i.kind, "status": status,
            "invoice_date": _day(i.invoice_date), "due_date": _day(i.due_date), "total_amount": total,
            "outstanding_amount": outstanding, "currency": i.currency, "updated_at": _utc(i.written or i.created)}
    assert _mismatches(frame, expected) == []
    credit_notes = frame[frame["kind"] == "credit_note"]
    assert len(credit_notes) and (credit_notes["total_amount"] < 0).all()
    assert credit_notes["invoice_number"].str.fullmatch(r"AV\d{4}-\d{4}").all()


def test_orphan_invoices_are_left_out(tmp_path):
    """Dolibarr's foreign key fk_facture_fk_soc refuses an invoice whose third party does not exist (these
    arguments give the ERPNext system no orphan invoice, so one is made here)."""
    records, docs = erpnext_system(N_CUSTOMERS, SEED)
    orphan = docs.invoices[0]
    orphan.orphan_party = len(records) + 7
    write(tmp_path / "dolibarr.db", records, docs)
    with sqlite3.connect(tmp_path / "dolibarr.db") as conn:
        ids = {row[0] for row in conn.execute("SELECT rowid FROM llx_facture")}
    assert ids == {i.id for i in docs.invoices} - {orphan.id}


def test_service_tickets(source, truth):
    _, docs, _ = truth
    frame = _read(source, "service_ticket")
    expected = {str(t.id): {
        "customer_source_id": str(t.orphan_party or t.record.id), "subject": t.subject,
        "status": "closed" if t.closed else "open", "priority": PRIORITIES[t.priority],
        "is_complaint": t.category == "complaint", "opened_at": _utc(t.opened), "closed_at": _utc(t.closed),
        "updated_at": _utc(t.written or t.opened)} for t in docs.tickets}
    assert _mismatches(frame, expected) == []
    assert frame["is_complaint"].any() and not frame["is_complaint"].all()


def test_window_selects_rows_by_tms(source, truth):
    records, docs, invoices = truth
    changed = {"customer_record": {str(r.id): r.written or r.created for r in records},
               "order": {str(o.id): o.written or o.created for o in docs.orders},
               "invoice": {str(i.id): i.written or i.created for i in invoices},
               "service_ticket": {str(t.id): t.written or t.opened for t in docs.tickets}}
    cut, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    for entity, last_change in changed.items():
        recent = set(_read(source, entity, Window(cut, end)).index)
        older = set(_read(source, entity, Window(None, cut)).index)
        assert recent == {k for k, v in last_change.items() if v >= cut.replace(tzinfo=None)}, entity
        assert older == set(last_change) - recent and recent, entity


def test_an_update_moves_tms(source, dolibarr):
    """tms is MariaDB's: changing a row stamps it with the server's time, and the next window picks the row up."""
    with dolibarr.begin() as conn:
        email, tms = conn.execute(text("SELECT email, tms FROM llx_societe WHERE rowid = 1")).one()
        conn.execute(text("UPDATE llx_societe SET email = 'new.address@example.com' WHERE rowid = 1"))
        now = conn.execute(text("SELECT UTC_TIMESTAMP()")).scalar()
    try:
        moment = now.replace(tzinfo=UTC)
        frame = _read(source, "customer_record", Window(moment - timedelta(minutes=1), moment + timedelta(minutes=1)))
        assert frame.loc["1", "email"] == "new.address@example.com"
        assert abs(frame.loc["1", "updated_at"] - pd.Timestamp(moment)) <= pd.Timedelta(seconds=5)
    finally:  # put the row back as generated, for the other tests
        with dolibarr.begin() as conn:
            conn.execute(text("UPDATE llx_societe SET email = :e, tms = :t WHERE rowid = 1"), {"e": email, "t": tms})


def test_check_counts_every_stream(source, dolibarr, truth):
    records, docs, invoices = truth
    with dolibarr.connect() as conn:
        lines, allocations = (conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                              for t in ("llx_commandedet", "llx_paiement_facture"))
    contacts = [c for c in erpnext_contacts(N_CUSTOMERS, SEED) if c.record is not None]
    assert source.check() == {"customer_record": len(records), "contact": len(contacts), "order": len(docs.orders),
                              "order_line": lines, "invoice": len(invoices), "service_ticket": len(docs.tickets),
                              "payment": allocations}


def test_contacts_of_customers_only(source, dolibarr):
    """Contacts come from llx_socpeople with their third party; an orphan cannot exist (fk_socpeople_fk_soc), and
    the contacts of a supplier or without a third party are not read."""
    contacts = erpnext_contacts(N_CUSTOMERS, SEED)
    assert any(c.record is None for c in contacts)  # the ERPNext system's orphan: left out here
    linked = [c for c in contacts if c.record is not None]
    frame = _read(source, "contact")
    expected = {str(n): {"customer_source_id": str(c.record.id), "given_name": c.first_name, "family_name": c.last_name,
                         "email": c.email.strip() if c.email and c.email.strip() else c.email, "job_title": c.job_title,
                         "is_active": c.active, "updated_at": _utc(c.written)} for n, c in enumerate(linked, 1)}
    assert _mismatches(frame.assign(email=frame["email"].str.strip()), expected) == []
    assert frame["phone"].notna().any() and not frame["is_active"].all()
    with dolibarr.begin() as conn:
        supplier = conn.execute(text("SELECT rowid FROM llx_societe WHERE client = 0")).scalar()
        conn.execute(text("INSERT INTO llx_socpeople (rowid, fk_soc, lastname, entity, statut) VALUES "
                          "(9001, :s, 'Supplier Person', 1, 1), (9002, NULL, 'Nobody''s Person', 1, 1)"), {"s": supplier})
    try:
        assert set(_read(source, "contact").index) == set(expected)
    finally:
        with dolibarr.begin() as conn:
            conn.execute(text("DELETE FROM llx_socpeople WHERE rowid IN (9001, 9002)"))


def test_order_lines_and_payments_add_up_and_take_their_parents_time(source, truth):
    """Order lines and payment allocations sum to the generated amounts, and a window selects them by the
    tms of their order or payment (they have none of their own)."""
    _, docs, invoices = truth
    lines, payments = _read(source, "order_line"), _read(source, "payment")
    line_totals = lines.groupby("order_source_id")["line_amount"].sum()
    for o in docs.orders:
        expected = o.amount if not o.defect and o.amount > 0 else 0
        assert abs(line_totals.get(str(o.id), 0) - expected) < 0.02, o.id
    paid = payments.groupby("invoice_source_id")["amount"].sum()
    for i in invoices:
        payable = i.kind == "invoice" and i.status in ("paid", "partial") and not i.defect
        assert abs(paid.get(str(i.id), 0) - (i.amount - i.residual if payable else 0)) < 0.005, i.id
    orders = _read(source, "order")
    assert (lines["updated_at"] == orders.loc[lines["order_source_id"], "updated_at"].to_numpy()).all()
    assert (payments["status"] == "posted").all() and payments["paid_date"].notna().all()
    cut, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    recent_orders = set(_read(source, "order", Window(cut, end)).index)
    recent_lines = _read(source, "order_line", Window(cut, end))
    assert set(recent_lines["order_source_id"]) == recent_orders & set(lines["order_source_id"])
