"""The bad-input catalogue: kinds of bad rows a real ERP sends, each planted in a generated Odoo database
next to thousands of good rows, then one full sync through real Airflow. Every bad row must be held in
quarantine with its reason, nothing else may be held, every row must be accounted for, and the good rows
must reach the CRM as usual.

A planted row is a copy of an ordinary row (a customer without documents, or a document of a healthy
customer) with a new id and one thing broken, so that no planted row drags a good one down with it.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field

import pandas as pd
import pytest
import yaml

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.paths import CONFIG, MAPPINGS
from erp2crm.pipeline import hub_store

TOKEN = "catalogue-secret-9c1e"
ODOO_TIMESTAMPS = {"res_partner": ("create_date", "write_date"),
                   "sale_order": ("date_order", "create_date", "write_date"),
                   "account_move": ("create_date", "write_date"),
                   "helpdesk_ticket": ("create_date", "closed_date", "write_date"),
                   "account_partial_reconcile": ("create_date", "write_date"),
                   "sale_order_line": ("create_date", "write_date")}
TABLES = {"customer_record": "res_partner", "order": "sale_order", "invoice": "account_move",
          "service_ticket": "helpdesk_ticket"}
LONG = "x" * 300


@dataclass(frozen=True)
class Bad:
    kind: str
    entity: str
    reason: str  # the reason code the row must be held with
    set: dict = field(default_factory=dict)  # column -> value on the planted copy
    copies: int = 1  # rows planted with the same new id (2 = a duplicate key)
    null_key: bool = False


CATALOGUE = [
    # customer records (res_partner)
    Bad("null name", "customer_record", "missing_name", {"name": None}),
    Bad("blank name", "customer_record", "missing_name", {"name": "   "}),
    Bad("null key", "customer_record", "missing_key", null_key=True),
    Bad("duplicate key", "customer_record", "duplicate_key", copies=2),
    Bad("e-mail with two @", "customer_record", "malformed_email", {"email": "sales@@acme.example"}),
    Bad("e-mail without a domain", "customer_record", "malformed_email", {"email": "sales@localhost"}),
    Bad("e-mail with a space", "customer_record", "malformed_email", {"email": "anna maria@acme.example"}),
    Bad("overlong name", "customer_record", "overlong_text", {"name": "Acme " + LONG}),
    Bad("overlong street", "customer_record", "overlong_text", {"street": LONG}),
    Bad("mojibake name (UTF-8 read as Latin-1)", "customer_record", "mojibake_text", {"name": "MÃ¼ller Handels GmbH"}),
    Bad("replacement character in city", "customer_record", "mojibake_text", {"city": "K\ufffdln"}),
    Bad("control character in name", "customer_record", "control_characters", {"name": "Acme\x07 Trading"}),
    Bad("escape sequence in street", "customer_record", "control_characters", {"street": "Hauptstr. 1\x1b[31m"}),
    Bad("=HYPERLINK formula in name", "customer_record", "formula_injection",
        {"name": '=HYPERLINK("http://evil.example","Click me")'}),
    Bad("@ formula in city", "customer_record", "formula_injection", {"city": "@SUM(1+1)*cmd|' /C calc'!A0"}),
    Bad("+ formula in name", "customer_record", "formula_injection", {"name": "+cmd|' /C notepad'!A0"}),
    Bad("phone that is words", "customer_record", "malformed_phone", {"phone": "call after 5pm"}),
    Bad("phone too short", "customer_record", "malformed_phone", {"phone": "12"}),
    Bad("unknown country", "customer_record", "unknown_country", {"country_id": 99}),
    Bad("is_company neither yes nor no", "customer_record", "not_a_boolean", {"is_company": "perhaps"}),
    # orders (sale_order)
    Bad("negative amount", "order", "negative_amount", {"amount_total": -250.0}),
    Bad("amount that is text", "order", "not_a_number", {"amount_total": "twelve"}),
    Bad("NaN amount", "order", "not_a_number", {"amount_total": "NaN"}),
    Bad("infinite amount", "order", "not_a_number", {"amount_total": "1e999"}),
    Bad("implausibly large amount", "order", "implausible_amount", {"amount_total": 5e13}),
    Bad("unknown currency", "order", "unknown_currency", {"currency_id": 98}),
    Bad("no currency", "order", "unknown_currency", {"currency_id": None}),
    Bad("status outside the mapping", "order", "invalid_status", {"state": "exploded"}),
    Bad("customer that does not exist", "order", "orphan_customer", {"partner_id": 999999}),
    Bad("no customer", "order", "orphan_customer", {"partner_id": None}),
    Bad("no order date", "order", "missing_date", {"date_order": None}),
    Bad("impossible date (30 February)", "order", "invalid_date", {"date_order": "2026-02-30 10:00:00+00:00"}),
    Bad("date in 1899", "order", "implausible_date", {"date_order": "1899-12-31 10:00:00+00:00"}),
    Bad("date in 2999", "order", "implausible_date", {"date_order": "2999-01-01 10:00:00+00:00"}),
    Bad("time-zone-less timestamp", "order", "missing_utc_offset", {"date_order": "2026-03-01 10:00:00"}),
    Bad("confirmed order without amount", "order", "missing_amount", {"amount_total": None, "state": "sale"}),
    Bad("null key", "order", "missing_key", null_key=True),
    Bad("duplicate key", "order", "duplicate_key", copies=2),
    # invoices (account_move)
    Bad("due before issue", "invoice", "due_before_issue",
        {"invoice_date": "2026-03-10", "invoice_date_due": "2026-03-01"}),
    Bad("negative outstanding amount", "invoice", "negative_outstanding", {"amount_residual": -5.0}),
    Bad("outstanding above the total", "invoice", "outstanding_exceeds_total",
        {"amount_total": 100.0, "amount_residual": 150.0, "payment_state": "partial"}),
    Bad("document type the mapping lets in but does not map", "invoice", "invalid_kind", {"move_type": "out_receipt"}),
    Bad("month 13", "invoice", "invalid_date", {"invoice_date": "2026-13-01"}),
    Bad("no invoice date", "invoice", "missing_date", {"invoice_date": None}),
    Bad("posted invoice without amount", "invoice", "missing_amount", {"amount_total": None, "state": "posted"}),
    # service tickets (helpdesk_ticket)
    Bad("closed before opened", "service_ticket", "closed_before_opened",
        {"create_date": "2026-04-02 10:00:00+00:00", "closed_date": "2026-04-01 10:00:00+00:00"}),
    Bad("rating out of range", "service_ticket", "out_of_range", {"rating_last_value": 9}),
    Bad("unknown priority", "service_ticket", "invalid_priority", {"priority": "7"}),
    Bad("closing time that is text", "service_ticket", "invalid_date", {"closed_date": "yesterday"}),
    Bad("ticket of an unknown customer", "service_ticket", "orphan_customer", {"partner_id": 888888}),
]


def _remove_constraints(con: sqlite3.Connection, table: str) -> None:
    """The same table without its primary key, as a view or a careless export would be (keys may repeat)."""
    con.execute(f"CREATE TABLE {table}_loose AS SELECT * FROM {table}")
    con.execute(f"DROP TABLE {table}")
    con.execute(f"ALTER TABLE {table}_loose RENAME TO {table}")


def _template_ids(con: sqlite3.Connection, bad_ids: dict[str, set[str]]) -> dict[str, list[int]]:
    """Rows to copy (the copy gets a new id, so no document points to a planted customer): good customers, and
    documents of good customers; none of them bad already."""
    good_partners = [r[0] for r in con.execute("SELECT id FROM res_partner ORDER BY id")
                     if str(r[0]) not in bad_ids["customer_record"]]
    out = {"customer_record": good_partners}
    healthy = set(good_partners)
    for entity in ("order", "invoice", "service_ticket"):
        table = TABLES[entity]
        extra = " AND move_type = 'out_invoice' AND state = 'posted'" if entity == "invoice" else ""
        rows = con.execute(f"SELECT id, partner_id FROM {table} WHERE 1=1{extra} ORDER BY id").fetchall()
        out[entity] = [i for i, p in rows if p in healthy and str(i) not in bad_ids[entity]]
    return out


def plant(db, bad_rows: pd.DataFrame) -> dict[tuple[str, str], list[str | None]]:
    """Plant every catalogue row; returns the source ids each one got (None for a null key)."""
    con = sqlite3.connect(db)
    for table, columns in ODOO_TIMESTAMPS.items():  # this Odoo writes UTC offsets (see the mapping copy)
        for column in columns:
            con.execute(f"UPDATE {table} SET {column} = {column} || '+00:00' WHERE {column} IS NOT NULL")
    con.execute("INSERT INTO res_country (id, code, name) VALUES (99, 'XX', 'Nowhere')")
    con.execute("INSERT INTO res_currency (id, name) VALUES (98, 'ABC')")
    for table in TABLES.values():
        _remove_constraints(con, table)
    bad_ids = {e: set(bad_rows.loc[(bad_rows["source_system"] == "odoo") & (bad_rows["entity"] == e), "source_id"])
               for e in TABLES}
    templates = _template_ids(con, bad_ids)
    planted: dict[tuple[str, str], list[str | None]] = {}
    next_id = 10_000_000
    for n, bad in enumerate(CATALOGUE):
        table = TABLES[bad.entity]
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        template = templates[bad.entity][n % len(templates[bad.entity])]
        values = dict(zip(columns, con.execute(f"SELECT * FROM {table} WHERE id = ?", (template,)).fetchone()))
        values.update(bad.set)
        new_id = None if bad.null_key else next_id
        next_id += 1
        values["id"] = new_id
        if table == "sale_order":
            values["name"] = f"SO-CAT-{n}"
        for _ in range(bad.copies):
            con.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [values[c] for c in columns])
        planted[(bad.entity, bad.kind)] = [None if new_id is None else str(new_id)] * bad.copies
    # A vendor bill: not bad, just not a customer document. The mapping's `where` keeps it out of the stream.
    columns = [r[1] for r in con.execute("PRAGMA table_info(account_move)")]
    values = dict(zip(columns, con.execute("SELECT * FROM account_move WHERE id = ?",
                                           (templates["invoice"][0],)).fetchone()))
    values.update(id=next_id, move_type="in_invoice")
    con.execute(f"INSERT INTO account_move ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [values[c] for c in columns])
    planted[("vendor bill", "outside the stream")] = [str(next_id)]
    # A good order the ERP never stamped with a change time: a full refresh reads it all the same.
    columns = [r[1] for r in con.execute("PRAGMA table_info(sale_order)")]
    values = dict(zip(columns, con.execute("SELECT * FROM sale_order WHERE id = ?",
                                           (templates["order"][0],)).fetchone()))
    values.update(id=next_id + 1, name="SO-UNSTAMPED", create_date=None, write_date=None)
    con.execute(f"INSERT INTO sale_order ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [values[c] for c in columns])
    planted[("order", "without a change time")] = [str(next_id + 1)]
    con.commit()
    con.close()
    return planted


@pytest.fixture(scope="module")
def catalogue_run(airflow_db, tmp_path_factory):
    var = tmp_path_factory.mktemp("catalogue")
    erp = var / "erp"
    generate(erp, n_customers=120, seed=17)
    bad_rows = pd.read_csv(erp / "bad_rows.csv", dtype=str)
    planted = plant(erp / "odoo.db", bad_rows)
    mapping = yaml.safe_load((MAPPINGS / "odoo.yaml").read_text())
    mapping["timestamps_with_offset"] = True
    (var / "odoo.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    config = yaml.safe_load((CONFIG / "erp2crm.yaml").read_text())
    config["sources"][0]["mapping"] = str(var / "odoo.yaml")
    config["quality"]["max_quarantine_share"] = 0.25  # the catalogue makes Odoo look unusually bad
    (var / "erp2crm.yaml").write_text(yaml.safe_dump(config))
    previous = os.environ.get("ERP2CRM_CONFIG")
    os.environ["ERP2CRM_CONFIG"] = str(var / "erp2crm.yaml")
    try:
        with SalesforceEmulator(token=TOKEN) as crm:
            local.configure(var, connections(var, erp, crm.url, TOKEN))
            dag_run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True, "as_of": DEMO_AS_OF})
            accounts = crm.records("Account")
    finally:
        if previous is None:
            os.environ.pop("ERP2CRM_CONFIG")
        else:
            os.environ["ERP2CRM_CONFIG"] = previous
    summary = hub_store().run(dag_run.run_id)["summary"]
    return {"dag_run": dag_run, "summary": summary, "planted": planted, "bad_rows": bad_rows, "erp": erp,
            "accounts": accounts, "held": hub_store().held_quarantine(stage="staging")}


def test_the_catalogue_has_at_least_forty_kinds():
    kinds = {(b.entity, b.kind) for b in CATALOGUE}
    assert len(kinds) == len(CATALOGUE) >= 40
    assert len({b.reason for b in CATALOGUE}) >= 25


@pytest.mark.parametrize("bad", CATALOGUE, ids=[f"{b.entity}: {b.kind}" for b in CATALOGUE])
def test_each_bad_row_is_held_with_its_reason(catalogue_run, bad):
    held = catalogue_run["held"]
    held = held[(held["entity"] == bad.entity) & (held["source_system"] == "odoo")]
    ids = catalogue_run["planted"][(bad.entity, bad.kind)]
    if bad.null_key:
        rows = held[held["record_id"].isna()]
    else:
        rows = held[held["record_id"] == ids[0]]
    assert len(rows) == bad.copies, f"{bad.kind}: expected {bad.copies} held row(s), got {len(rows)}"
    for codes, reason in zip(rows["reason_code"], rows["reason"]):
        assert bad.reason in codes.split(";"), f"{bad.kind}: held as {codes} ({reason})"
        assert reason  # a readable sentence, not only a code


def test_rows_outside_a_stream_are_not_read_at_all(catalogue_run):
    bill = catalogue_run["planted"][("vendor bill", "outside the stream")][0]
    assert bill not in set(catalogue_run["held"]["record_id"].dropna())
    assert bill not in set(hub_store().read_entity("invoice")["source_id"])


def test_a_full_refresh_reads_rows_without_a_change_time(catalogue_run):
    order = catalogue_run["planted"][("order", "without a change time")][0]
    current = hub_store().read_entity("order").set_index("source_id")
    assert order in current.index and pd.isna(current.at[order, "updated_at"])  # a warning, not a hold
    assert order not in set(catalogue_run["held"]["record_id"].dropna())


def test_nothing_else_is_held(catalogue_run):
    held = catalogue_run["held"]
    planted = {(entity, i) for (entity, _), ids in catalogue_run["planted"].items() for i in ids if i is not None}
    demo_bad = {(r.entity, r.source_id) for r in catalogue_run["bad_rows"].itertuples() if r.source_system == "odoo"}
    others = {(r.entity, r.source_system, r.record_id) for r in held.itertuples()
              if r.source_system != "odoo" or (pd.notna(r.record_id) and (r.entity, r.record_id) not in planted | demo_bad)}
    other_demo_bad = {(r.entity, r.source_system, r.source_id) for r in catalogue_run["bad_rows"].itertuples()
                      if r.source_system != "odoo"}
    assert others == other_demo_bad
    assert held["record_id"].isna().sum() == sum(b.copies for b in CATALOGUE if b.null_key)


def test_every_row_is_accounted_for_and_the_run_succeeds(catalogue_run):
    summary = catalogue_run["summary"]
    assert str(catalogue_run["dag_run"].state) == "success" and summary["status"] == "success"
    for entity, n in summary["rows_in"].items():
        assert n == summary["rows_passed"][entity] + summary["rows_quarantined"][entity]
    planted_rows = sum(b.copies for b in CATALOGUE)
    assert sum(summary["rows_quarantined"].values()) == planted_rows + len(catalogue_run["bad_rows"])


def test_good_rows_in_the_same_batch_reach_the_crm(catalogue_run):
    truth = pd.read_csv(catalogue_run["erp"] / "ground_truth.csv", dtype=str)
    bad = catalogue_run["bad_rows"].query("entity == 'customer_record'")
    bad_keys = set(bad["source_system"] + ":" + bad["source_id"])
    truth["key"] = truth["source_system"] + ":" + truth["source_id"]
    expected = {frozenset(g) for _, g in truth[~truth["key"].isin(bad_keys)].groupby("true_customer_id")["key"]}
    got = [frozenset(json.loads(a["ERP2CRM_Source_Ids__c"])) for a in catalogue_run["accounts"]]
    assert len(got) == len(set(got)) and set(got) == expected


def test_the_run_report_explains_what_was_held_and_links_the_data_docs(catalogue_run):
    from pathlib import Path

    report = Path(catalogue_run["summary"]["report"])
    page = report.read_text()
    # Each reason is named as a person reads it (formula_injection → "formula injection"), with an example.
    for code in ("formula_injection", "missing_utc_offset", "outstanding_exceeds_total"):
        assert code.replace("_", " ") in page
    for gate in ("staging", "unified_customer", "profile"):
        index = report.parent / "data_docs" / gate / "index.html"
        assert index.exists() and f"data_docs/{gate}/index.html" in page
    assert TOKEN not in page
