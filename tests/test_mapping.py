"""Mapping files: invalid ones fail on load with the file, the field and what is wrong; valid ones map
source rows to canonical rows through the generic SQL source."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest
import yaml
from sqlalchemy import create_engine

from connectors.mapping import load_mapping
from connectors.outbound import load_outbound
from connectors.sql import SqlSource
from connectors.window import Window
from erp2crm.canonical import PARSE_ERRORS
from erp2crm.errors import ConfigError
from erp2crm.paths import MAPPINGS

VALID = """
source: shop
streams:
  customer_record:
    table: partners
    primary_key: id
    updated_at: [write_date, create_date]
    fields:
      name: {column: name, transform: strip}
      email: {column: email, transform: lower}
      country: {column: country_id, lookup: {table: countries, key: id, value: code}}
      phone: {column: id, lookup: {table: contacts, key: partner, value: value, where: {type: [phone, mobile]}}}
      is_active: {column: archived, transform: not}
  order:
    table: orders
    primary_key: id
    updated_at: write_date
    fields:
      customer_source_id: partner_id
      status:
        column: state
        values: {s: confirmed, c: cancelled}
        when: [{column: locked, equals: [1], value: done}]
      total_amount: {column: amount, negate_when: {column: kind, equals: [refund]}}
      currency: {column: currency, default: CNY}
      ordered_at: created
    where: {kind: [sale, refund]}
"""

INVALID = [
    ("source: shop\nstreams: {}\n", "a source needs a customer_record stream"),
    (VALID.replace("customer_record:", "customer:", 1), "streams.customer: unknown entity"),
    (VALID.replace("      name: {column: name, transform: strip}", "      nickname: name"), "unknown canonical field(s) nickname"),
    (VALID.replace("      customer_source_id: partner_id\n", ""), "customer_source_id is required"),
    (VALID.replace("transform: strip", "transform: eval"), "streams.customer_record.fields.name.transform: Input should be 'strip'"),
    (VALID.replace("table: partners", "table: \"partners; DROP TABLE x\""), "is not a plain table or column name"),
    (VALID.replace("primary_key: id\n    updated_at: [write", "primary_key: id\n    updated_at: [\"a--b\", write", 1), "is not a plain table or column name"),
    (VALID.replace("{column: email, transform: lower}", "{transform: lower}"), "needs a `column` or a constant `default`"),
    (VALID.replace("source: shop", "source: other"), "must match the file name 'shop'"),
    (VALID.replace("      currency: {column: currency, default: CNY}", "      currency: {column: currency, colour: red}"), "Extra inputs are not permitted"),
    (VALID.replace("where: {kind: [sale, refund]}", "where: {kind: []}"), "where.kind: an empty list would select no rows"),
    (VALID.replace("where: {kind: [sale, refund]}", "where: {\"kind; --\": sale}"), "is not a plain table or column name"),
    (VALID.replace("source: shop\n", "source: shop\nconnector: soap_erp\n"), "no module connectors/soap_erp.py"),
    (VALID.replace("source: shop\n", "source: shop\nconnector: odoo_rpc\n").replace(
        "    updated_at: write_date\n", "    updated_at: write_date\n    updated_from: {table: t, key: id, column: parent}\n"),
     "only the sql connector reads a parent's timestamp"),
    (VALID.replace("    updated_at: write_date\n", "    updated_at: write_date\n    updated_from: {table: t, key: id}\n"),
     "updated_from.column: Field required"),
    (VALID.replace("    where: {kind: [sale, refund]}", "    present: [kind]\n    absent: [kind]"),
     "kind cannot be both present and absent"),
    (VALID.replace("source: shop\n", "source: shop\nconnector: odoo_rpc\n").replace(
        "    where: {kind: [sale, refund]}", "    exists: {table: partners, key: id, column: partner_id}"),
     "only the sql connector filters on another table"),
    (VALID.replace("    where: {kind: [sale, refund]}", "    exists: {table: partners, key: id}"),
     "exists.column: Field required"),
    ("streams: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping at the top level"),
]


@pytest.mark.parametrize("snippet,expected", INVALID, ids=[e for _, e in INVALID])
def test_invalid_mapping_names_file_field_and_problem(tmp_path, snippet, expected):
    path = tmp_path / "shop.yaml"
    path.write_text(snippet)
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(MAPPINGS.glob("*.yaml"))}


@pytest.mark.parametrize("name", [name for name, body in SHIPPED.items() if "source" in body])
def test_shipped_mappings_are_valid(name):
    assert load_mapping(MAPPINGS / f"{name}.yaml").source == name


@pytest.mark.parametrize("name", [name for name, body in SHIPPED.items() if "target" in body])
def test_shipped_outbound_mappings_are_valid(name):
    assert load_outbound(MAPPINGS / f"{name}.yaml").target == name


@pytest.fixture
def shop(tmp_path):
    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.executescript("""
        create table countries(id integer primary key, code text);
        insert into countries values (1, 'CN'), (2, 'DE');
        create table partners(id integer primary key, name text, email text, country_id integer, archived integer,
                              create_date text, write_date text);
        insert into partners values
          (1, '  Acme ', ' Info@ACME.cn', 1, 0, '2026-01-01 08:00:00', '2026-03-01 09:00:00'),
          (2, 'Beta', null, 2, 1, '2026-02-01 08:00:00', null),
          (3, 'Gamma', 'g@x.de', 9, 0, '2026-04-01 08:00:00', null);
        create table contacts(id integer primary key, partner integer, type text, value text);
        insert into contacts values (1, 1, 'email', 'x@y.cn'), (2, 1, 'mobile', '138 0013 8000'),
                                    (3, 1, 'phone', '021 1234'), (4, 2, 'fax', '999');
        create table orders(id integer primary key, partner_id integer, state text, locked integer, amount real,
                            kind text, currency text, created text, write_date text);
        insert into orders values
          (10, 1, 's', 0, 100.0, 'sale', 'USD', '2026-01-05 10:00:00', '2026-01-05 10:00:00'),
          (11, 1, 'c', 0, 50.0, 'refund', null, '2026-02-05 10:00:00', '2026-02-06 10:00:00'),
          (12, 2, 's', 1, 70.0, 'sale', 'EUR', '2026-03-05 10:00:00', '2026-03-05 10:00:00'),
          (13, 3, 'x', 0, 10.0, 'sale', 'CNY', '2026-03-06 10:00:00', '2026-03-06 10:00:00'),
          (14, 1, 's', 0, 99.0, 'purchase', 'CNY', '2026-03-07 10:00:00', '2026-03-07 10:00:00');
    """)
    con.commit()
    con.close()
    path = tmp_path / "shop.yaml"
    path.write_text(VALID)
    return SqlSource("shop", load_mapping(path), create_engine(f"sqlite:///{db}"))


def _all(source, entity, window=None):
    import pandas as pd
    return pd.concat(list(source.extract(entity, window, chunk_size=2)), ignore_index=True)


def test_sql_source_maps_every_step(shop):
    customers = _all(shop, "customer_record").set_index("source_id")
    assert list(customers.index) == ["1", "2", "3"]
    assert customers.at["1", "name"] == "Acme" and customers.at["1", "email"] == "info@acme.cn"
    assert customers.at["1", "country"] == "CN" and customers.at["3", "country"] is None  # unknown lookup key
    # lookup with a list in `where`: the first matching row by primary key; a fax is not a phone
    assert customers.at["1", "phone"] == "138 0013 8000" and customers.at["2", "phone"] is None
    assert customers.at["2", "is_active"] is False and customers.at["1", "is_active"] is True
    # updated_at is the first non-null of write_date, create_date, in UTC
    assert customers.at["2", "updated_at"] == datetime(2026, 2, 1, 8, tzinfo=timezone.utc)
    assert (customers["source_system"] == "shop").all()

    orders = _all(shop, "order").set_index("source_id")
    assert orders.at["10", "status"] == "confirmed"
    assert orders.at["11", "status"] == "cancelled" and orders.at["11", "total_amount"] == -50.0  # negate_when
    assert orders.at["11", "currency"] == "CNY"  # default
    assert orders.at["12", "status"] == "done"  # when: locked = 1
    assert orders.at["13", "status"] == "x"  # unmapped values pass through for the quality gate to flag
    assert orders.at["10", "customer_source_id"] == "1"
    assert "14" not in orders.index  # a purchase is not in the stream (where: kind)


def test_sql_source_window_uses_first_non_null_update_column(shop):
    window = Window(datetime(2026, 2, 15, tzinfo=timezone.utc), datetime(2026, 3, 31, tzinfo=timezone.utc))
    assert list(_all(shop, "customer_record", window)["source_id"]) == ["1"]  # write_date 03-01; 3 is in April
    assert list(_all(shop, "order", window)["source_id"]) == ["12", "13"]


def test_a_sqlite_source_reads_through_arrow_what_sqlalchemy_reads(shop, monkeypatch, caplog):
    """A SQLite source is read through ADBC into Arrow; mapped, its rows equal those read through SQLAlchemy. A value
    of another type than its column's (SQLite keeps text in a REAL column) stops the Arrow read part-way: the rest
    of the rows come through SQLAlchemy, each row once, and the mapping reports the value."""
    import pandas as pd

    import connectors.sql as sql_source
    from hub import bulk

    con = sqlite3.connect(shop.engine.url.database)
    con.executemany("insert into orders values (?, 1, 's', 0, ?, 'sale', 'EUR', '2026-03-08 10:00:00', null)",
                    [(20 + i, i * 1.5) for i in range(6)])
    con.commit()
    arrow_reads = []
    batches = bulk.sqlite_batches
    monkeypatch.setattr(bulk, "sqlite_batches", lambda *a, **k: arrow_reads.append(a[1]) or batches(*a, **k))

    def both(entity):
        through_arrow = _all(shop, entity)
        with monkeypatch.context() as m:
            m.setattr(sql_source, "_arrow_read", lambda conn, query: None)
            return through_arrow, _all(shop, entity)

    for entity in ("customer_record", "order"):
        pd.testing.assert_frame_equal(*both(entity))
    assert len(arrow_reads) >= 4 and "instead of Arrow" not in caplog.text  # streams and lookups through Arrow

    con.execute("update orders set amount = 'n/a' where id = 22")  # in the 4th chunk of 2 rows
    con.commit()
    con.close()
    through_arrow, through_sqlalchemy = both("order")
    pd.testing.assert_frame_equal(through_arrow, through_sqlalchemy)
    assert "instead of Arrow" in caplog.text
    assert through_arrow["source_id"].tolist() == ["10", "11", "12", "13", "20", "21", "22", "23", "24", "25"]
    assert "[not_a_number] total_amount 'n/a'" in through_arrow.set_index("source_id").at["22", PARSE_ERRORS]

    caplog.clear()  # the driver cannot open the file: SQLAlchemy reads it (and would report what is wrong)
    monkeypatch.setattr(bulk, "sqlite_file", lambda url: "/nonexistent-erp2crm/shop.db")
    pd.testing.assert_frame_equal(_all(shop, "order"), through_sqlalchemy)
    assert "failed to open" in caplog.text


def test_unknown_table_or_column_is_a_config_error_naming_mapping_and_field(tmp_path, shop):
    broken = shop.mapping.model_copy(deep=True)
    broken.streams["order"].fields["total_amount"].column = "amount_total"
    source = SqlSource("shop", broken, shop.engine)
    with pytest.raises(ConfigError, match=r"mappings/shop.yaml: streams.order.fields: column 'amount_total' does not exist in table 'orders'"):
        source.check()
    broken.streams["order"].fields["total_amount"].column = "amount"
    broken.streams["order"].where = {"doc_kind": "sale"}
    with pytest.raises(ConfigError, match=r"streams.order.where: column 'doc_kind' does not exist in table 'orders'"):
        SqlSource("shop", broken, shop.engine).check()
    broken.streams["order"].table = "sale_orders"
    with pytest.raises(ConfigError, match="table 'sale_orders' does not exist"):
        SqlSource("shop", broken, shop.engine).check()


def test_check_counts_rows_per_stream(shop):
    assert shop.check() == {"customer_record": 3, "order": 4}  # the purchase is outside the stream


def test_lookup_keys_match_when_the_key_column_reads_as_floats(tmp_path, shop):
    """A key column with a null (a view, a careless export) reads as floats: 1.0 must still find "1"."""
    import sqlite3

    con = sqlite3.connect(shop.engine.url.database)
    con.executescript("create table countries2 as select * from countries; insert into countries2 values (null, 'XX');"
                      "drop table countries; alter table countries2 rename to countries;")
    con.commit()
    con.close()
    customers = _all(SqlSource("shop", shop.mapping, shop.engine), "customer_record").set_index("source_id")
    assert customers.at["1", "country"] == "CN" and customers.at["2", "country"] == "DE"


def test_absent_and_exists_select_rows(shop, tmp_path):
    """`absent` keeps rows whose column holds no value; `exists` keeps rows with a matching row in another table
    (here: partners never written since created, and the orders of partners not archived)."""
    mapping = yaml.safe_load(VALID)
    mapping["streams"]["customer_record"]["absent"] = ["write_date"]
    mapping["streams"]["order"]["exists"] = {"table": "partners", "key": "id", "column": "partner_id",
                                             "where": {"archived": 0}}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(mapping))
    source = SqlSource("shop", load_mapping(path), shop.engine)
    assert list(_all(source, "customer_record")["source_id"]) == ["2", "3"]  # 1 has a write_date
    assert list(_all(source, "order")["source_id"]) == ["10", "11", "13"]  # 12 is of archived partner 2
    assert source.check() == {"customer_record": 2, "order": 3}
    mapping["streams"]["order"]["exists"]["column"] = "partner"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(ConfigError, match="streams.order.exists: column 'partner' does not exist in table 'orders'"):
        SqlSource("shop", load_mapping(path), shop.engine).check()


@pytest.mark.parametrize("table", [
    {}, {"1": 10, "2": 20}, {"1": "CN", "2": None, "3": "DE"}, {"1": 1.5, "2": float("nan")},
    {"1": True, "2": False}, {"7": "x", "8": 3},
], ids=["empty", "integers", "text with null", "floats with nan", "booleans", "mixed"])
def test_a_lookup_built_once_maps_exactly_as_the_dict_it_came_from(table):
    """Lookups are turned into a Series once per extraction; mapping through it must give what mapping through the
    dict gives (values, missing keys, dtype)."""
    import pandas as pd

    from connectors.transform import lookup_series

    keys = pd.Series(["1", "2", None, "3", "7", "404"], dtype=object)
    pd.testing.assert_series_equal(keys.map(lookup_series(table)), keys.map(table))


@pytest.mark.parametrize(("values", "dtype"), [
    ([1, 22, -3, 0, 2 ** 62], None), ([1, 22, -3, 0, 2 ** 62], "Int64"), ([1, None, -3], "Int64"),
    ([1.0, None, -7.0, 2.5, 1e20, 2.0 ** 53 - 1], None), ([True, False], None), ([True, None, False], "boolean"),
    (["a", None, "7"], None),
], ids=["integers", "nullable integers", "nullable integers with nulls", "floats with nulls", "booleans",
        "nullable booleans", "text"])
def test_keys_read_as_numbers_give_the_text_python_gives(values, dtype):
    """Keys and codes compare as text: an integral number without '.0' (ids read as floats when the column has
    a null), other numbers as Python writes them, booleans as 1/0, nulls as None; always an object column."""
    import numpy as np
    import pandas as pd

    from connectors.mapping import _as_text
    from connectors.transform import _text

    series = pd.Series(values, dtype=dtype)
    expected = [None if pd.isna(v) else _as_text(int(v) if isinstance(v, float) and v == int(v) else v)
                for v in series.astype(object)]
    got = _text(series)
    assert got.tolist() == expected and got.dtype == np.dtype(object)
