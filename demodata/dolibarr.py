"""dolibarr.db: a Dolibarr 20.0 database (tables llx_*) holding the ERPNext system's generated records and documents.

Not one of `generate()`'s systems, whose databases and ground truth must stay as they are byte for byte:
`dolibarr_database` re-runs the generator's stages for the ERPNext system with the same seeds (so the rows are
exactly those of erpnext.db) and renders them into Dolibarr's schema, where ids are rowids.

Schema facts come from Dolibarr's install scripts, htdocs/install/mysql/tables/llx_*.sql (columns) and
llx_*.key.sql (keys), as of 20.0: the 19.x files plus migration/19.0.0-20.0.0.sql, or the later files minus
migration/20.0.0-21.0.0.sql. Only the columns read or written here are kept, every NOT NULL one without a default
among them. SCHEMA holds Dolibarr's MySQL definitions, which SQLite takes without its two MySQL-only clauses
(AUTO_INCREMENT, ON UPDATE); `create_table_sql` and KEYS give MariaDB the real thing.

Defects carried (those the ERPNext system was given, see bad_rows.csv): missing_name (nom ''), malformed_email,
negative_amount, unknown_currency (XYZ), due_before_issue, closed_before_opened, and orphan_customer tickets
(llx_ticket.fk_soc has no foreign key). Orphan invoices and contacts are left out: llx_facture.key.sql's
fk_facture_fk_soc and llx_socpeople.key.sql's fk_socpeople_fk_soc refuse a row whose third party does not exist.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from pathlib import Path

from . import defects, sqlite_out
from .clock import Clock, ds, ts
from .documents import (CATEGORIES, PRODUCTS, RATES_TO_CNY, Documents, customer_ref, lines_of, make_documents,
                        payments_of)
from .contacts import Contact, make_people
from .generate import MIN_CUSTOMERS, _customers, _records, _stream, system_contacts
from .records import Record

SOURCE = "erpnext"  # the generated system rendered into Dolibarr
ROWID = "rowid integer AUTO_INCREMENT PRIMARY KEY"
# The row's last change: Dolibarr 20 declares tms so on llx_societe, llx_commande, llx_facture, llx_paiement,
# llx_product and llx_ticket (llx_ticket-ticket.sql; the older llx_ticket.sql had a bare `tms timestamp`).
TMS = "tms timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
MONEY = "double(24,8) DEFAULT 0"

SCHEMA = {
    # llx_c_country.sql; rows of data/llx_00_c_country.sql (rowid 0 is the '-' country).
    "llx_c_country": ["rowid integer PRIMARY KEY", "code varchar(2) NOT NULL", "label varchar(128) NOT NULL"],
    # llx_c_typent.sql (key `id`, not rowid; as in the stored 2011 file, columns unchecked for 20.0 but not read
    # beyond id and code); rows of data/llx_c_typent.sql (4 TE_SMALL, 8 TE_PRIVATE).
    "llx_c_typent": ["id integer PRIMARY KEY", "code varchar(12) UNIQUE NOT NULL", "libelle varchar(30)"],
    # llx_societe.sql. phone_mobile arrived in 20.0 (migration 19→20: varchar(20)); status 1 open, 0 closed;
    # client 0 none, 1 customer, 2 prospect, 3 both.
    "llx_societe": [ROWID, "nom varchar(128)", "entity integer DEFAULT 1 NOT NULL", "status tinyint DEFAULT 1",
                    "address varchar(255)", "zip varchar(25)", "town varchar(50)", "fk_pays integer DEFAULT 0",
                    "phone varchar(30)", "phone_mobile varchar(20)", "email varchar(128)",
                    "fk_typent integer DEFAULT NULL", "tva_intra varchar(20)", "client tinyint DEFAULT 0",
                    "fournisseur tinyint DEFAULT 0", TMS, "datec datetime"],
    # llx_commande.sql (unchanged by migration 19→20; signed_status comes in 21).
    "llx_commande": [ROWID, "ref varchar(30) NOT NULL", "entity integer DEFAULT 1 NOT NULL", "fk_soc integer NOT NULL",
                     TMS, "date_creation datetime", "date_commande date", "fk_statut smallint DEFAULT 0",
                     f"total_ttc {MONEY}", "multicurrency_code varchar(3)", "multicurrency_tx double(24,8) DEFAULT 1",
                     f"multicurrency_total_ttc {MONEY}"],
    # llx_commandedet.sql: no timestamp of its own.
    "llx_commandedet": [ROWID, "fk_commande integer NOT NULL", "fk_product integer NULL",
                        "label varchar(255) DEFAULT NULL", "qty real", f"subprice {MONEY}", f"total_ht {MONEY}",
                        "rang integer DEFAULT 0",
                        "multicurrency_code varchar(3)", f"multicurrency_subprice {MONEY}",
                        f"multicurrency_total_ht {MONEY}"],
    "llx_product": [ROWID, "ref varchar(128) NOT NULL", "entity integer DEFAULT 1 NOT NULL", "datec datetime", TMS,
                    "label varchar(255) NOT NULL"],
    # llx_categorie.sql: type 0 is a product category; llx_categorie_product.sql links products to categories.
    "llx_categorie": [ROWID, "entity integer DEFAULT 1 NOT NULL", "label varchar(180) NOT NULL",
                      "type integer DEFAULT 1 NOT NULL"],
    "llx_categorie_product": ["fk_categorie integer NOT NULL", "fk_product integer NOT NULL"],
    # llx_facture.sql (ref was facnumber before 10.0, total_tva was tva before 14.0); is_also_delivery_note NOT NULL
    # arrived in 20.0 (migration 19→20), payment_reference comes in 21. type 0 standard, 2 credit note; fk_statut
    # 0 draft, 1 validated, 2 paid (closed), 3 abandoned (facture.class.php constants).
    "llx_facture": [ROWID, "ref varchar(30) NOT NULL", "entity integer DEFAULT 1 NOT NULL",
                    "type smallint DEFAULT 0 NOT NULL", "fk_soc integer NOT NULL", "datec datetime", "datef date", TMS,
                    "paye smallint DEFAULT 0 NOT NULL",
                    f"total_ttc {MONEY}", "fk_statut smallint DEFAULT 0 NOT NULL", "date_lim_reglement date",
                    "is_also_delivery_note tinyint DEFAULT 0 NOT NULL", "multicurrency_code varchar(3)",
                    "multicurrency_tx double(24,8) DEFAULT 1", f"multicurrency_total_ttc {MONEY}"],
    # llx_paiement.sql: fk_paiement is the payment mode (llx_c_paiement; 2 is VIR, a bank transfer).
    "llx_paiement": [ROWID, "ref varchar(30) NULL", "entity integer DEFAULT 1 NOT NULL", "datec datetime", TMS,
                     "datep datetime", f"amount {MONEY}", f"multicurrency_amount {MONEY}",
                     "fk_paiement integer NOT NULL"],
    # llx_paiement_facture.sql: one allocation of a payment to an invoice; no timestamp of its own.
    "llx_paiement_facture": [ROWID, "fk_paiement integer", "fk_facture integer", f"amount {MONEY}",
                             "multicurrency_code varchar(3)", "multicurrency_tx double(24,8) DEFAULT 1",
                             f"multicurrency_amount {MONEY}"],
    # llx_socpeople.sql: the contacts (persons) of third parties; poste is the job title, statut 1 active, 0 disabled.
    "llx_socpeople": [ROWID, "datec datetime", TMS, "fk_soc integer", "entity integer DEFAULT 1 NOT NULL",
                      "lastname varchar(50)", "firstname varchar(50)", "poste varchar(255)", "phone varchar(30)",
                      "phone_mobile varchar(30)", "email varchar(255)", "statut tinyint DEFAULT 1 NOT NULL"],
    # llx_ticket-ticket.sql (20.0 adds model_pdf, barcode ... which are not read). fk_statut: ticket.class.php.
    "llx_ticket": [ROWID, "entity integer DEFAULT 1", "ref varchar(128) NOT NULL", "track_id varchar(128) NOT NULL",
                   "fk_soc integer DEFAULT 0", "origin_email varchar(128)", "subject varchar(255)", "fk_statut integer",
                   "type_code varchar(32)", "severity_code varchar(32)", "datec datetime", "date_close datetime", TMS],
}

# From the *.key.sql files; MariaDB only (they check what Dolibarr would refuse, e.g. an orphan invoice).
KEYS = [
    "ALTER TABLE llx_commande ADD UNIQUE INDEX uk_commande_ref (ref, entity)",
    "ALTER TABLE llx_commande ADD CONSTRAINT fk_commande_fk_soc FOREIGN KEY (fk_soc) REFERENCES llx_societe (rowid)",
    "ALTER TABLE llx_facture ADD UNIQUE INDEX uk_facture_ref (ref, entity)",
    "ALTER TABLE llx_facture ADD INDEX idx_facture_tms (tms)",
    "ALTER TABLE llx_facture ADD CONSTRAINT fk_facture_fk_soc FOREIGN KEY (fk_soc) REFERENCES llx_societe (rowid)",
    "ALTER TABLE llx_paiement_facture ADD UNIQUE INDEX uk_paiement_facture (fk_paiement, fk_facture)",
    ("ALTER TABLE llx_paiement_facture ADD CONSTRAINT fk_paiement_facture_fk_facture FOREIGN KEY (fk_facture) "
     "REFERENCES llx_facture (rowid)"),
    ("ALTER TABLE llx_paiement_facture ADD CONSTRAINT fk_paiement_facture_fk_paiement FOREIGN KEY (fk_paiement) "
     "REFERENCES llx_paiement (rowid)"),
    "ALTER TABLE llx_socpeople ADD CONSTRAINT fk_socpeople_fk_soc FOREIGN KEY (fk_soc) REFERENCES llx_societe (rowid)",
    "ALTER TABLE llx_ticket ADD UNIQUE uk_ticket_track_id (track_id)",
    "ALTER TABLE llx_ticket ADD UNIQUE uk_ticket_ref (ref)",
]

COUNTRIES = [(0, "", "-"), (5, "DE", "Germany"), (7, "GB", "United Kingdom"), (9, "CN", "China"),
             (11, "US", "United States")]
TE_UNKNOWN, TE_SMALL, TE_PRIVATE = 0, 4, 8
TYPENT = [(TE_UNKNOWN, "TE_UNKNOWN", "-"), (TE_SMALL, "TE_SMALL", "TPE"), (TE_PRIVATE, "TE_PRIVATE", "Particulier")]
ORDER_STATUS = {"draft": 0, "sent": 0, "confirmed": 1, "done": 3, "cancelled": -1}  # commande.class.php
SHIPMENT_IN_PROGRESS = 2
STANDARD, CREDIT_NOTE = 0, 2
INVOICE_STATUS = {"draft": 0, "open": 1, "partial": 1, "paid": 2, "reversed": 2, "cancelled": 3}
# ticket.class.php: 0 not read, 3 in progress, 5 waiting for the requester (a reply went out), 7 on hold,
# 8 closed (solved), 9 cancelled.
TICKET_OPEN = {"new": 0, "progress": 3, "replied": 5, "hold": 7}
TICKET_CLOSED = {"solved": 8, "cancelled": 9}
SEVERITIES = ("LOW", "NORMAL", "HIGH", "BLOCKING")  # data of llx_c_ticket_severity
# Dolibarr ships COM, ISSUE, REQUEST, PROJECT and OTHER; complaints need a type the admin adds to the dictionary.
TICKET_TYPES = {"question": "COM", "bug": "ISSUE", "complaint": "COMPLAINT"}
TRANSFER = 2  # llx_c_paiement VIR
MAIN_CURRENCY = "CNY"  # the demo company's: total_ttc and amount are in it, multicurrency_* in the document's
SUPPLIER_OFFSET = 501  # the supplier's rowid lies past every orphan_customer id (at most 500 past the last record)


def create_table_sql(table: str) -> str:
    """Dolibarr's own MySQL definition of `table` (columns as in SCHEMA)."""
    return f"CREATE TABLE {table} ({', '.join(SCHEMA[table])}) ENGINE=InnoDB"


def _sqlite_schema() -> dict[str, list[str]]:
    def strip(spec: str) -> str:
        return spec.replace(" AUTO_INCREMENT", "").replace(" ON UPDATE CURRENT_TIMESTAMP", "")

    return {table: [strip(spec) for spec in specs] for table, specs in SCHEMA.items()}


def _rate(currency: str) -> float:
    """Units of the main currency per unit of `currency`; 1 for one the company does not know (the XYZ defect)."""
    return RATES_TO_CNY.get(currency, 1.0) / RATES_TO_CNY[MAIN_CURRENCY]


def _main(amount: float, currency: str) -> float:
    return round(amount * _rate(currency), 2)


def _refs(prefix: str, items) -> dict[int, str]:
    """Dolibarr's default refs for (rowid, day, is_draft) in entry order: PREFIXyymm-nnnn with one counter per
    prefix (numbering modules terre, marbre, cicada); a draft is named (PROVrowid) until validated."""
    refs, n = {}, 0
    for rowid, day, draft in items:
        if draft:
            refs[rowid] = f"(PROV{rowid})"
        else:
            n += 1
            refs[rowid] = f"{prefix}{day:%y%m}-{n:04d}"
    return refs


def _tva_intra(tax_id: str | None) -> str | None:
    """tva_intra holds 20 characters: a longer typed id (a spaced unified social credit code) goes in without spaces."""
    return tax_id if tax_id is None or len(tax_id) <= 20 else tax_id.replace(" ", "")


def _thirdparties(records: list[Record]):
    country_id = {code: rowid for rowid, code, _ in COUNTRIES}
    for r in records:
        mobile = r.phone if r.phone and r.customer.phone.is_mobile else None
        country = country_id[r.customer.address.country] if r.street or r.city else None
        yield (r.id, r.name, 1, int(r.active), r.street, r.postcode, r.city, country, None if mobile else r.phone,
               mobile, r.email, TE_SMALL if r.customer.is_company else TE_PRIVATE, _tva_intra(r.tax_id), 1, 0,
               ts(r.written or r.created), ts(r.created))
    first = min(r.created for r in records)
    yield (len(records) + SUPPLIER_OFFSET, "Demo Carton Supplies Co., Ltd.", 1, 1, None, None, None, None, None, None,
           None, TE_SMALL, None, 0, 1, ts(first), ts(first))  # a supplier only: not a customer record


def _orders(docs: Documents):
    refs = _refs("CO", ((o.id, o.ordered, ORDER_STATUS[o.status] == 0) for o in docs.orders))
    for o in docs.orders:
        status = ORDER_STATUS[o.status]
        if o.status == "confirmed" and o.id % 2 == 0:  # some confirmed orders have a shipment under way
            status = SHIPMENT_IN_PROGRESS
        yield (o.id, refs[o.id], 1, o.record.id, ts(o.written or o.created), ts(o.created), ds(o.ordered.date()),
               status, _main(o.amount, o.currency), o.currency, round(1 / _rate(o.currency), 8), o.amount)


def _catalogue(created: datetime) -> tuple[list, list, list]:
    products = [(n, code, 1, ts(created), ts(created), name) for n, (code, name, _) in enumerate(PRODUCTS, 1)]
    category_id = {name: n for n, name in enumerate(CATEGORIES, 1)}
    categories = [(n, 1, name, 0) for name, n in category_id.items()]
    links = [(category_id[category], n) for n, (_, _, category) in enumerate(PRODUCTS, 1)]
    return products, categories, links


def _order_lines(docs: Documents):
    product_id = {code: n for n, (code, _, _) in enumerate(PRODUCTS, 1)}
    rowid = 0
    for o in docs.orders:
        for line in lines_of(o):
            rowid += 1
            yield (rowid, o.id, product_id[line.product[0]], line.product[1], line.quantity,
                   round(line.unit_price * _rate(o.currency), 8), _main(line.amount, o.currency), line.n, o.currency,
                   line.unit_price, line.amount)


def _invoices(invoices: list):
    refs = {**_refs("FA", ((i.id, i.invoice_date, i.status == "draft") for i in invoices if i.kind == "invoice")),
            **_refs("AV", ((i.id, i.invoice_date, False) for i in invoices if i.kind == "credit_note"))}
    for i in invoices:
        status = INVOICE_STATUS[i.status]
        sign = -1 if i.kind == "credit_note" else 1  # Dolibarr stores credit notes with negative totals
        yield (i.id, refs[i.id], 1, CREDIT_NOTE if i.kind == "credit_note" else STANDARD, i.record.id, ts(i.created),
               ds(i.invoice_date), ts(i.written or i.created), int(status == 2), sign * _main(i.amount, i.currency),
               status, ds(i.due_date), 0, i.currency, round(1 / _rate(i.currency), 8), sign * i.amount)


def _payments(invoices: list) -> tuple[list, list]:
    """llx_paiement and llx_paiement_facture rows, numbered in the order they were entered (by payment date)."""
    paid = sorted((p for i in invoices for p in payments_of(i, i.amount - i.residual)),
                  key=lambda p: (p.paid, p.invoice.id))
    refs = _refs("PAY", ((n, p.paid, False) for n, p in enumerate(paid, 1)))
    payments, allocations = [], []
    for n, p in enumerate(paid, 1):
        currency = p.invoice.currency
        stamp = ts(datetime.combine(p.paid, time(12, 0)))  # Dolibarr's payment form dates a payment at noon
        payments.append((n, refs[n], 1, stamp, stamp, stamp, _main(p.amount, currency), p.amount, TRANSFER))
        allocations.append((n, n, p.invoice.id, _main(p.amount, currency), currency, round(1 / _rate(currency), 8),
                            p.amount))
    return payments, allocations


def _tickets(docs: Documents):
    refs = _refs("TS", ((t.id, t.opened, False) for t in docs.tickets))
    for t in docs.tickets:
        status = TICKET_CLOSED[t.outcome] if t.closed else TICKET_OPEN[t.open_state]
        track_id = hashlib.sha1(refs[t.id].encode()).hexdigest()[:16]
        yield (t.id, 1, refs[t.id], track_id, customer_ref(t), t.record.email.strip() if t.record.email else None,
               t.subject, status, TICKET_TYPES[t.category], SEVERITIES[t.priority], ts(t.opened), ts(t.closed),
               ts(t.written or t.opened))


def _socpeople(contacts: list[Contact]):
    """The ERPNext system's contacts as Dolibarr contacts (rowids in entry order); orphans are left out, as
    llx_socpeople.key.sql's fk_socpeople_fk_soc refuses a contact whose third party does not exist."""
    rowid = 0
    for c in contacts:
        if c.record is None:
            continue
        rowid += 1
        mobile = c.phone if c.person.mobile.is_mobile else None
        yield (rowid, ts(c.created), ts(c.written), c.record.id, 1, c.last_name, c.first_name, c.job_title,
               None if mobile else c.phone, mobile, c.email, int(c.active))


def write(path: Path, records: list[Record], docs: Documents, contacts: list[Contact] = ()) -> None:
    invoices = [i for i in docs.invoices if not i.orphan_party]
    products, categories, links = _catalogue(min(r.created for r in records))
    payments, allocations = _payments(invoices)
    conn = sqlite_out.create(path, _sqlite_schema())
    for table, rows in (("llx_c_country", COUNTRIES), ("llx_c_typent", TYPENT), ("llx_societe", _thirdparties(records)),
                        ("llx_product", products), ("llx_categorie", categories), ("llx_categorie_product", links),
                        ("llx_commande", _orders(docs)), ("llx_commandedet", _order_lines(docs)),
                        ("llx_facture", _invoices(invoices)), ("llx_paiement", payments),
                        ("llx_paiement_facture", allocations), ("llx_ticket", _tickets(docs)),
                        ("llx_socpeople", _socpeople(contacts))):
        sqlite_out.insert(conn, SCHEMA, table, rows)
    conn.commit()
    conn.close()


def erpnext_system(n_customers: int, seed: int,
                   anchor_date: date = date(2026, 6, 30)) -> tuple[list[Record], Documents]:
    """The ERPNext system's records and documents as `generate()` makes them: same stages, same seeded streams."""
    return _erpnext_system(n_customers, seed, anchor_date)[:2]


def erpnext_contacts(n_customers: int, seed: int, anchor_date: date = date(2026, 6, 30)) -> list[Contact]:
    """The ERPNext system's contacts as `generate()` makes them (orphans among them)."""
    return _erpnext_system(n_customers, seed, anchor_date)[2]


def _erpnext_system(n_customers: int, seed: int, anchor_date: date) -> tuple[list[Record], Documents, list[Contact]]:
    if n_customers < MIN_CUSTOMERS:
        raise ValueError(f"n_customers must be at least {MIN_CUSTOMERS} (bad rows need room)")
    clock = Clock(anchor_date)
    planned = defects.plan(n_customers)
    customers = _customers(n_customers, seed, planned)
    records = _records(customers, seed, clock)[SOURCE]
    docs = make_documents(records, SOURCE, _stream(seed, f"documents/{SOURCE}"), clock)
    defects.break_documents(docs, SOURCE, planned, _stream(seed, f"defects/{SOURCE}"), max_party_id=len(records))
    contacts, _ = system_contacts(records, make_people(customers, seed), SOURCE, seed, clock, n_customers)
    return records, docs, contacts


def dolibarr_database(out_dir: Path, n_customers: int, seed: int, anchor_date: date = date(2026, 6, 30)) -> Path:
    """Write out_dir/dolibarr.db from the ERPNext system generated with these arguments; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "dolibarr.db"
    write(path, *_erpnext_system(n_customers, seed, anchor_date))
    return path


def load_mariadb(sqlite_path: Path, engine) -> None:
    """dolibarr.db into a MariaDB database through Dolibarr's CREATE TABLE and key definitions (pandas would
    make every column TEXT, and tms would not be a real timestamp)."""
    import sqlite3

    with sqlite3.connect(sqlite_path) as source, engine.begin() as conn:
        for table in SCHEMA:
            conn.exec_driver_sql(create_table_sql(table))
            columns = sqlite_out.columns(SCHEMA, table)
            rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            placeholders = ", ".join(["%s"] * len(columns))
            conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
        for statement in KEYS:
            conn.exec_driver_sql(statement)
