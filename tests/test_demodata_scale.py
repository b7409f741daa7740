"""The benchmark's scaled demo ERPs: the same databases, tables and columns as the demo's, the document shape
asked for, and deterministic for the same arguments."""
from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from demodata import generate
from demodata.scale import Shape, generate_at_scale


def _schema(folder) -> dict:
    out = {}
    for db in sorted(folder.glob("*.db")):
        with sqlite3.connect(db) as con:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                out[(db.name, table)] = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")')]
    return out


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaled")
    return folder, generate_at_scale(folder, 150, shape=Shape(orders_per_record=10, tickets_per_record=2))


def test_same_tables_and_columns_as_the_demo(scaled, tmp_path):
    generate(tmp_path, n_customers=150)
    assert _schema(scaled[0]) == _schema(tmp_path)
    for name in ("ground_truth.csv", "bad_rows.csv"):
        assert list(pd.read_csv(scaled[0] / name).columns) == list(pd.read_csv(tmp_path / name).columns)


def test_the_shape_asked_for(scaled):
    folder, _ = scaled
    with sqlite3.connect(folder / "odoo.db") as con:
        partners = con.execute("SELECT count(*) FROM res_partner").fetchone()[0]
        orders = con.execute("SELECT count(*) FROM sale_order").fetchone()[0]
    assert 7 <= orders / partners <= 13  # a mean of 10 orders per customer record, drawn at random


def test_same_arguments_same_data(scaled, tmp_path):
    again = generate_at_scale(tmp_path, 150, shape=Shape(orders_per_record=10, tickets_per_record=2))
    assert again == scaled[1]
    for db in ("odoo.db", "erpnext.db", "tryton.db"):
        with sqlite3.connect(scaled[0] / db) as a, sqlite3.connect(tmp_path / db) as b:
            for (table,) in a.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                rows = f'SELECT * FROM "{table}" ORDER BY 1'
                assert a.execute(rows).fetchall() == b.execute(rows).fetchall(), (db, table)
