"""Data for the end-to-end sync benchmark (bench/sync_bench.py): the demo ERPs at a benchmark scale (cached),
their copy in PostgreSQL, and the 1 % of source changes an incremental run picks up.

- `prepare(scale, seed)`: the three SQLite ERP databases from `demodata.scale.generate_at_scale`, generated once
  under var/bench/data/<scale>-seed<seed>-<generator id>/ (the id is demodata.scale.VERSION plus a hash of the
  demodata sources, so any change to the generator makes a new copy).
- `pg_templates(...)`: each ERP database loaded once into PostgreSQL with COPY, as a template database; every run
  gets fresh databases cloned from them (`CREATE DATABASE ... TEMPLATE`, a file copy). Column types are those a
  real ERP has: timestamps and dates where the demo stores their text, integer and double precision elsewhere,
  the primary keys of the demo schemas.
- `apply_changes(...)`: what the ERPs' users do between two runs, on 1 % of the rows: new orders (copies of
  existing confirmed orders, with their lines, entered now), changed addresses (customer records moved to another
  house on another record's street, in that record's city) and paid invoices (open invoices settled in full, with the payment each ERP records), all
  written with the given current timestamp.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

import _common

_common.ensure_repo_on_path()

from demodata import scale as demoscale  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
SYSTEMS = ("odoo", "erpnext", "tryton")
# The medium shape (10 orders per customer record, a third of an invoice per order, one ticket per record),
# used at every scale so that scales differ in size only.
SHAPE = demoscale.Shape(orders_per_record=10, invoices_per_order=1 / 3, tickets_per_record=1.0)
RECORDS = {"small": 10_000, "medium": 300_000, "large": 1_000_000}


def log(message: str) -> None:
    print(f"[sync_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generator_id() -> str:
    sources = sorted((_common.REPO_ROOT / "demodata").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()[:10]
    return f"v{demoscale.VERSION}-{digest}"


@dataclass
class Dataset:
    scale: str
    folder: Path
    key: str
    counts: dict
    generation_s: float | None  # None when it came from the cache


def prepare(scale: str, seed: int) -> Dataset:
    key = f"{scale}-seed{seed}-{generator_id()}"
    folder = _common.REPO_ROOT / "var" / "bench" / "data" / key
    done = folder / "counts.json"
    if done.exists():
        log(f"data: cached {folder}")
        meta = json.loads(done.read_text())
        return Dataset(scale, folder, key, meta["counts"], None)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    n_customers = demoscale.customers_for_records(RECORDS[scale])
    log(f"data: generating {scale} ({RECORDS[scale]:,} customer records, {n_customers:,} true customers) in {tmp}")
    started = time.perf_counter()
    counts = demoscale.generate_at_scale(tmp, n_customers, seed=seed, shape=SHAPE, progress=lambda m: log(f"data: {m}"))
    elapsed = time.perf_counter() - started
    (tmp / "counts.json").write_text(json.dumps({"counts": counts, "generation_s": round(elapsed, 1),
                                                 "shape": SHAPE.__dict__, "seed": seed}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log(f"data: generated in {elapsed:.0f} s")
    return Dataset(scale, folder, key, counts, round(elapsed, 1))


def totals(counts: dict) -> dict:
    return {k: (sum(v.values()) if isinstance(v, dict) else v) for k, v in counts.items()}


# ---------------------------------------------------------------- PostgreSQL

def _admin():
    from sqlalchemy import create_engine

    return create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


def _database_exists(conn, name: str) -> bool:
    from sqlalchemy import text

    return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None


def _pg_type(declared: str, sample: list) -> str:
    declared = declared.upper()
    if declared.startswith("INT"):
        return "bigint"
    if declared == "REAL":
        return "double precision"
    values = [v for v in sample if v is not None]
    if values and all(isinstance(v, str) and len(v) == 19 and v[4] == "-" and v[10] == " " for v in values):
        return "timestamp"
    if values and all(isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-" for v in values):
        return "date"
    return "text"


def _load_pg(sqlite_path: Path, database: str) -> dict:
    """One demo ERP database into a new PostgreSQL database, table by table with COPY; rows per table."""
    import psycopg

    src = sqlite3.connect(sqlite_path)
    rows = {}
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}", autocommit=True) as pg:
        tables = [r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
        for table in tables:
            info = src.execute(f'PRAGMA table_info("{table}")').fetchall()  # cid, name, type, notnull, default, pk
            names = [c[1] for c in info]
            sample = src.execute(f'SELECT * FROM "{table}" LIMIT 2000').fetchall()
            columns = [f'"{c[1]}" {_pg_type(c[2], [r[i] for r in sample])}' for i, c in enumerate(info)]
            pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]]
            if pk:
                columns.append(f"PRIMARY KEY ({', '.join(chr(34) + p + chr(34) for p in pk)})")
            pg.execute(f'CREATE TABLE "{table}" ({", ".join(columns)})')
            cursor = src.execute(f'SELECT * FROM "{table}"')
            n = 0
            with pg.cursor() as cur, cur.copy(f'COPY "{table}" ({", ".join(chr(34) + c + chr(34) for c in names)}) '
                                              "FROM STDIN") as copy:
                while True:
                    batch = cursor.fetchmany(50_000)
                    if not batch:
                        break
                    for row in batch:
                        copy.write_row(row)
                    n += len(batch)
            rows[table] = n
        pg.execute("ANALYZE")
    src.close()
    return rows


def pg_templates(data: Dataset) -> tuple[dict[str, str], float | None]:
    """Template databases holding the dataset, one per ERP (loaded once); their names and the load time."""
    from sqlalchemy import text

    names = {s: f"e2c_bench_{hashlib.sha256(data.key.encode()).hexdigest()[:12]}_{s}" for s in SYSTEMS}
    admin = _admin()
    started, loaded = time.perf_counter(), False
    for system, name in names.items():
        with admin.connect() as conn:
            ready = _database_exists(conn, name) and conn.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": name}).scalar() == "erp2crm bench: loaded"
            if ready:
                continue
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        log(f"postgres: loading {system} into {name} (COPY)")
        t = time.perf_counter()
        rows = _load_pg(data.folder / f"{system}.db", name)
        with admin.connect() as conn:
            conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS 'erp2crm bench: loaded'"))
        loaded = True
        log(f"postgres: {system}: {sum(rows.values()):,} rows in {time.perf_counter() - t:.0f} s")
    admin.dispose()
    return names, (round(time.perf_counter() - started, 1) if loaded else None)


def pg_fresh(name: str, template: str | None = None) -> str:
    """A new empty database (or a clone of `template`) called `name`; its SQLAlchemy URL."""
    from sqlalchemy import text

    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def pg_drop(name: str) -> None:
    from sqlalchemy import text

    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pg_connection(name: str) -> dict:
    """An Airflow connection (as local.configure takes it) to database `name` on the benchmark's server."""
    return {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}


# ---------------------------------------------------------------- the 1 % of changes

class _Db:
    """Reads and writes one ERP database (SQLite or PostgreSQL), with timestamps in the column's own form."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(url)
        self.pg = self.engine.dialect.name == "postgresql"

    def read(self, sql: str, **params) -> pd.DataFrame:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return pd.read_sql(text(sql), conn, params=params)

    def ts(self, moment: datetime):
        return moment if self.pg else moment.strftime("%Y-%m-%d %H:%M:%S")

    def day(self, moment: datetime):
        return moment.date() if self.pg else moment.strftime("%Y-%m-%d")

    def scalar(self, sql: str):
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def write(self, statements: list[tuple[str, list[dict]]]) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            for sql, rows in statements:
                if rows:
                    conn.execute(text(sql), rows)

    def by_keys(self, sql: str, column: str, keys: list) -> pd.DataFrame:
        """`sql` (ending in WHERE ...) restricted to `column` IN keys, in batches."""
        frames = [self.read(f"{sql} {column} IN ({', '.join(repr(k) if isinstance(k, str) else str(int(k)) for k in keys[i:i + 1000])})")
                  for i in range(0, len(keys), 1000)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _moved(street, rng) -> str | None:
    """Another house on the donor's street: its first number replaced (a copy of someone else's exact address
    would make the matcher merge the two customers, which is not what a move is)."""
    if street is None or (isinstance(street, float) and pd.isna(street)):
        return street
    number = str(int(rng.integers(1, 10_000)))
    return re.sub(r"\d+", number, street, count=1) if re.search(r"\d", street) else f"{street} {number}"


def _insert_sql(table: str, columns: list[str]) -> str:
    return (f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
            f'VALUES ({", ".join(":" + c for c in columns)})')


def _native(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _sample(frame: pd.DataFrame, share_of: int, share: float, rng: np.random.Generator) -> pd.DataFrame:
    n = min(len(frame), max(1, round(share_of * share)))
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))].reset_index(drop=True)


def _odoo(db: _Db, share: float, when: datetime, rng) -> dict:
    out = {}
    # new orders: copies of confirmed orders, entered now, with their lines
    total = db.scalar("SELECT count(*) FROM sale_order")
    pool = db.read("SELECT id, partner_id, amount_total, currency_id FROM sale_order WHERE state IN ('sale', 'done') "
                   "AND amount_total > 0")
    new = _sample(pool, total, share, rng)
    first = int(db.scalar("SELECT max(id) FROM sale_order")) + 1
    new["old_id"], new["id"] = new["id"], np.arange(first, first + len(new))
    orders = new.assign(name=[f"S{i:05d}" for i in new["id"]], date_order=db.ts(when), state="sale",
                        create_date=db.ts(when), write_date=db.ts(when))
    lines = db.by_keys("SELECT id, order_id, product_id, name, product_uom_qty, price_unit, price_subtotal "
                       "FROM sale_order_line WHERE", "order_id", new["old_id"].tolist())
    lines = lines.merge(new[["old_id", "id"]].rename(columns={"id": "new_order"}), left_on="order_id", right_on="old_id")
    lines = lines.assign(id=lines["new_order"] * 10 + lines["id"] % 10, order_id=lines["new_order"],
                         create_date=db.ts(when), write_date=db.ts(when))
    order_cols = ["id", "name", "partner_id", "date_order", "state", "amount_total", "currency_id", "create_date",
                  "write_date"]
    line_cols = ["id", "order_id", "product_id", "name", "product_uom_qty", "price_unit", "price_subtotal", "create_date",
                 "write_date"]
    out["new_orders"], out["new_order_lines"] = len(orders), len(lines)
    out["new_order_customers"] = sorted(set(map(str, orders["partner_id"])))
    statements = [(_insert_sql("sale_order", order_cols), _native(orders[order_cols])),
                  (_insert_sql("sale_order_line", line_cols), _native(lines[line_cols]))]
    # changed addresses: active partners with an address take another partner's address
    total = db.scalar("SELECT count(*) FROM res_partner")
    pool = db.read("SELECT id, street, city, zip, country_id FROM res_partner WHERE active = 1 AND street IS NOT NULL")
    moved = _sample(pool, total, share, rng)
    donors = pool.iloc[rng.choice(len(pool), len(moved))].reset_index(drop=True)
    rows = [{"id": int(i), "street": _moved(s, rng), "city": c, "zip": z, "country_id": int(k) if pd.notna(k) else None, "w": db.ts(when)}
            for i, s, c, z, k in zip(moved["id"], donors["street"], donors["city"], donors["zip"], donors["country_id"])]
    statements.append(("UPDATE res_partner SET street = :street, city = :city, zip = :zip, country_id = :country_id, "
                       "write_date = :w WHERE id = :id", rows))
    out["changed_addresses"], out["address_customers"] = len(rows), sorted(str(r["id"]) for r in rows)
    # paid invoices: open customer invoices settled in full by one payment
    total = db.scalar("SELECT count(*) FROM account_move")
    pool = db.read("SELECT id, partner_id, amount_residual, currency_id, invoice_date FROM account_move "
                   "WHERE move_type = 'out_invoice' AND state = 'posted' AND payment_state IN ('not_paid', 'partial') "
                   "AND amount_residual > 0")
    paid = _sample(pool, total, share, rng)
    # an invoice's receivable line is id * 10, its payments' lines id * 10 + 1, 2, ... (demodata.odoo)
    existing = db.by_keys("SELECT id FROM account_move_line WHERE", "id",
                          [int(i) * 10 + k for i in paid["id"] for k in range(10)])
    existing = existing.assign(move=existing["id"] // 10) if len(existing) else pd.DataFrame({"id": [], "move": []})
    has_receivable = set(existing.loc[existing["id"] % 10 == 0, "move"])
    used = existing.groupby("move")["id"].max().to_dict()
    first_partial = int(db.scalar("SELECT coalesce(max(id), 0) FROM account_partial_reconcile")) + 1
    moves, aml, partials = [], [], []
    for k, inv in enumerate(paid.itertuples(index=False)):
        receivable = int(inv.id) * 10
        if inv.id not in has_receivable:
            aml.append({"id": receivable, "move_id": int(inv.id), "partner_id": int(inv.partner_id),
                        "date": inv.invoice_date if db.pg else str(inv.invoice_date)[:10],
                        "debit": float(inv.amount_residual), "credit": 0.0})
        line = int(used.get(inv.id, receivable)) + 1
        aml.append({"id": line, "move_id": 10_000_000 + line, "partner_id": int(inv.partner_id), "date": db.day(when),
                    "debit": 0.0, "credit": float(inv.amount_residual)})
        partials.append({"id": first_partial + k, "debit_move_id": receivable, "credit_move_id": line,
                         "amount": float(inv.amount_residual), "debit_currency_id": int(inv.currency_id),
                         "max_date": db.day(when), "create_date": db.ts(when), "write_date": db.ts(when)})
        moves.append({"id": int(inv.id), "w": db.ts(when)})
    statements += [
        ("UPDATE account_move SET payment_state = 'paid', amount_residual = 0, write_date = :w WHERE id = :id", moves),
        (_insert_sql("account_move_line", ["id", "move_id", "partner_id", "date", "debit", "credit"]), aml),
        (_insert_sql("account_partial_reconcile", ["id", "debit_move_id", "credit_move_id", "amount", "debit_currency_id",
                                                   "max_date", "create_date", "write_date"]), partials)]
    out["paid_invoices"], out["paid_invoice_customers"] = len(moves), sorted(set(map(str, paid["partner_id"])))
    db.write(statements)
    return out


def _next_number(db: _Db, table: str, prefix: str) -> int:
    """The next counter of an ERPNext naming series `prefix` + digits."""
    last = db.scalar(f"SELECT max(name) FROM \"{table}\" WHERE name LIKE '{prefix}%' AND length(name) = "
                     f"(SELECT max(length(name)) FROM \"{table}\" WHERE name LIKE '{prefix}%')")
    return int(last[len(prefix):].split("-")[0]) + 1 if last else 1


def _erpnext(db: _Db, share: float, when: datetime, rng) -> dict:
    out = {}
    total = db.scalar('SELECT count(*) FROM "tabSales Order"')
    pool = db.read('SELECT name, customer, currency, grand_total, company FROM "tabSales Order" '
                   "WHERE docstatus = 1 AND status IN ('Completed', 'To Deliver and Bill') AND grand_total > 0")
    new = _sample(pool, total, share, rng)
    prefix = f"SAL-ORD-{when.year}-"
    first = _next_number(db, "tabSales Order", prefix)
    new["old"], new["name"] = new["name"], [f"{prefix}{first + i:05d}" for i in range(len(new))]
    orders = new.assign(transaction_date=db.day(when), status="To Deliver and Bill", docstatus=1,
                        creation=db.ts(when), modified=db.ts(when))
    items = db.by_keys('SELECT parent, idx, item_code, item_name, item_group, qty, rate, amount FROM "tabSales Order Item" '
                       "WHERE", "parent", new["old"].tolist())
    items = items.merge(new[["old", "name"]], left_on="parent", right_on="old")
    items = items.assign(parent=items["name"], name=[f"{p}-{i}" for p, i in zip(items["name"], items["idx"])],
                         creation=db.ts(when), modified=db.ts(when))
    order_cols = ["name", "customer", "transaction_date", "status", "docstatus", "currency", "grand_total", "company",
                  "creation", "modified"]
    item_cols = ["name", "parent", "idx", "item_code", "item_name", "item_group", "qty", "rate", "amount", "creation",
                 "modified"]
    statements = [(_insert_sql("tabSales Order", order_cols), _native(orders[order_cols])),
                  (_insert_sql("tabSales Order Item", item_cols), _native(items[item_cols]))]
    out["new_orders"], out["new_order_lines"] = len(orders), len(items)
    out["new_order_customers"] = sorted(set(orders["customer"]))
    # changed addresses: the customer's primary address takes another address's values. The customer's own
    # `modified` moves too: the mapping reads the address through the customer row.
    total = db.scalar('SELECT count(*) FROM "tabCustomer"')
    pool = db.read('SELECT name, customer_primary_address FROM "tabCustomer" WHERE disabled = 0 '
                   "AND customer_primary_address IS NOT NULL")
    moved = _sample(pool, total, share, rng)
    addresses = db.read('SELECT address_line1, city, pincode, country FROM "tabAddress"')
    donors = addresses.iloc[rng.choice(len(addresses), len(moved))].reset_index(drop=True)
    rows = [{"a": a, "s": _moved(s, rng), "c": c, "p": p, "k": k, "w": db.ts(when)}
            for a, s, c, p, k in zip(moved["customer_primary_address"], donors["address_line1"], donors["city"],
                                     donors["pincode"], donors["country"])]
    statements += [('UPDATE "tabAddress" SET address_line1 = :s, city = :c, pincode = :p, country = :k, modified = :w '
                    "WHERE name = :a", rows),
                   ('UPDATE "tabCustomer" SET modified = :w WHERE name = :n',
                    [{"n": n, "w": db.ts(when)} for n in moved["name"]])]
    out["changed_addresses"], out["address_customers"] = len(rows), sorted(moved["name"])
    # paid invoices: a Payment Entry settles the outstanding amount
    total = db.scalar('SELECT count(*) FROM "tabSales Invoice"')
    pool = db.read('SELECT name, customer, currency, outstanding_amount FROM "tabSales Invoice" WHERE docstatus = 1 '
                   "AND is_return = 0 AND status IN ('Unpaid', 'Overdue', 'Partly Paid') AND outstanding_amount > 0")
    paid = _sample(pool, total, share, rng)
    number = _next_number(db, "tabPayment Entry", f"ACC-PAY-{when.year}-")
    all_numbers = db.scalar("SELECT count(*) FROM \"tabPayment Entry\"")
    number = max(number, int(all_numbers) + 1)  # the demo's counter runs over all years
    entries, refs = [], []
    for k, inv in enumerate(paid.itertuples(index=False)):
        name = f"ACC-PAY-{when.year}-{number + k:05d}"
        entries.append({"name": name, "payment_type": "Receive", "party_type": "Customer", "party": inv.customer,
                        "posting_date": db.day(when), "paid_amount": float(inv.outstanding_amount),
                        "paid_from_account_currency": inv.currency, "docstatus": 1, "creation": db.ts(when),
                        "modified": db.ts(when)})
        refs.append({"name": f"{name}-1", "parent": name, "reference_doctype": "Sales Invoice", "reference_name": inv.name,
                     "allocated_amount": float(inv.outstanding_amount), "creation": db.ts(when), "modified": db.ts(when)})
    statements += [
        ('UPDATE "tabSales Invoice" SET status = \'Paid\', outstanding_amount = 0, modified = :w WHERE name = :n',
         [{"n": n, "w": db.ts(when)} for n in paid["name"]]),
        (_insert_sql("tabPayment Entry", list(entries[0]) if entries else []), entries),
        (_insert_sql("tabPayment Entry Reference", list(refs[0]) if refs else []), refs)]
    out["paid_invoices"], out["paid_invoice_customers"] = len(entries), sorted(set(paid["customer"]))
    db.write(statements)
    return out


def _tryton(db: _Db, share: float, when: datetime, rng) -> dict:
    out = {}
    total = db.scalar("SELECT count(*) FROM sale_sale")
    pool = db.read("SELECT id, party, currency, total_amount_cache FROM sale_sale WHERE state IN ('processing', 'done') "
                   "AND total_amount_cache > 0")
    new = _sample(pool, total, share, rng)
    first = int(db.scalar("SELECT max(id) FROM sale_sale")) + 1
    new["old_id"], new["id"] = new["id"], np.arange(first, first + len(new))
    orders = new.assign(number=[f"SO{i:04d}" for i in new["id"]], reference=None, state="processing",
                        sale_date=db.day(when), create_date=db.ts(when), write_date=db.ts(when))
    lines = db.by_keys("SELECT id, sale, sequence, product, description, quantity, unit_price FROM sale_line WHERE",
                       "sale", new["old_id"].tolist())
    lines = lines.merge(new[["old_id", "id"]].rename(columns={"id": "new_sale"}), left_on="sale", right_on="old_id")
    lines = lines.assign(id=lines["new_sale"] * 10 + lines["sequence"], sale=lines["new_sale"], create_date=db.ts(when),
                         write_date=db.ts(when))
    order_cols = ["id", "number", "reference", "party", "state", "sale_date", "currency", "total_amount_cache",
                  "create_date", "write_date"]
    line_cols = ["id", "sale", "sequence", "product", "description", "quantity", "unit_price", "create_date", "write_date"]
    statements = [(_insert_sql("sale_sale", order_cols), _native(orders[order_cols])),
                  (_insert_sql("sale_line", line_cols), _native(lines[line_cols]))]
    out["new_orders"], out["new_order_lines"] = len(orders), len(lines)
    out["new_order_customers"] = sorted(set(map(str, orders["party"])))
    # changed addresses: party_address has no write_date in the demo schema; the party's moves
    total = db.scalar("SELECT count(*) FROM party_party")
    pool = db.read("SELECT a.id, a.party FROM party_address a JOIN party_party p ON p.id = a.party WHERE p.active = 1")
    moved = _sample(pool, total, share, rng)
    addresses = db.read("SELECT street_unstructured, city, postal_code, country FROM party_address")
    donors = addresses.iloc[rng.choice(len(addresses), len(moved))].reset_index(drop=True)
    rows = [{"id": int(i), "s": _moved(s, rng), "c": c, "p": p, "k": int(k) if pd.notna(k) else None}
            for i, s, c, p, k in zip(moved["id"], donors["street_unstructured"], donors["city"], donors["postal_code"],
                                     donors["country"])]
    statements += [("UPDATE party_address SET street_unstructured = :s, city = :c, postal_code = :p, country = :k "
                    "WHERE id = :id", rows),
                   ("UPDATE party_party SET write_date = :w WHERE id = :id",
                    [{"id": int(p), "w": db.ts(when)} for p in moved["party"]])]
    out["changed_addresses"], out["address_customers"] = len(rows), sorted(set(map(str, moved["party"])))
    # paid invoices: a posted payment line settles the whole invoice
    total = db.scalar("SELECT count(*) FROM account_invoice")
    pool = db.read("SELECT id, party, total_amount_cache FROM account_invoice WHERE state = 'posted' AND type = 'out' "
                   "AND total_amount_cache > 0")
    paid = _sample(pool, total, share, rng)
    move0 = int(db.scalar("SELECT coalesce(max(id), 0) FROM account_move")) + 1
    line0 = int(db.scalar("SELECT coalesce(max(id), 0) FROM account_move_line")) + 1
    link0 = int(db.scalar('SELECT coalesce(max(id), 0) FROM "account_invoice-account_move_line"')) + 1
    moves, lines_, links = [], [], []
    for k, inv in enumerate(paid.itertuples(index=False)):
        moves.append({"id": move0 + k, "date": db.day(when), "state": "posted", "create_date": db.ts(when),
                      "write_date": db.ts(when)})
        lines_.append({"id": line0 + k, "move": move0 + k, "party": int(inv.party), "debit": 0.0,
                       "credit": float(inv.total_amount_cache), "create_date": db.ts(when), "write_date": db.ts(when)})
        links.append({"id": link0 + k, "invoice": int(inv.id), "line": line0 + k, "create_date": db.ts(when),
                      "write_date": db.ts(when)})
    statements += [
        ("UPDATE account_invoice SET state = 'paid', write_date = :w WHERE id = :id",
         [{"id": int(i), "w": db.ts(when)} for i in paid["id"]]),
        (_insert_sql("account_move", list(moves[0]) if moves else []), moves),
        (_insert_sql("account_move_line", list(lines_[0]) if lines_ else []), lines_),
        (_insert_sql("account_invoice-account_move_line", list(links[0]) if links else []), links)]
    out["paid_invoices"], out["paid_invoice_customers"] = len(moves), sorted(set(map(str, paid["party"])))
    db.write(statements)
    return out


def apply_changes(urls: dict[str, str], share: float, when: datetime, seed: int) -> dict:
    """Change `share` of the rows in each ERP (see the module's doc); per ERP what changed and whose records."""
    out = {}
    for system in SYSTEMS:
        db = _Db(urls[system])
        rng = np.random.default_rng([seed, SYSTEMS.index(system), 1])
        out[system] = {"odoo": _odoo, "erpnext": _erpnext, "tryton": _tryton}[system](db, share, when, rng)
        db.engine.dispose()
    return out
