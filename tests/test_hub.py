"""The hub store on SQLite and on a real PostgreSQL server: schema migrations, staged partitions that a
re-run replaces, upserts of current rows, and quarantine release."""
from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from hub import HubStore
from hub.migrations import LATEST

PG_ADMIN = os.environ.get("ERP2CRM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_url():
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"erp2crm_test_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - any failure means the server is not usable here
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN} is required in CI and not reachable: {e}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {e}")
    return admin, name


@pytest.fixture(params=["sqlite", "sqlite+landing_files", "postgresql"])
def hub(request, tmp_path):
    """The hub on SQLite and on PostgreSQL with landing partitions in stg_ tables, and on SQLite with landing
    partitions as Parquet files (the shipped configuration's `landing_dir`)."""
    if request.param.startswith("sqlite"):
        files = tmp_path / "landing" if request.param.endswith("files") else None
        yield HubStore(f"sqlite:///{tmp_path / 'hub.db'}", landing_dir=files)
        return
    admin, name = _postgres_url()
    store = HubStore(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    yield store
    store.engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def orders(*rows):
    return pd.DataFrame([{**dict(source_system="odoo", customer_source_id="1", status="confirmed", currency="CNY",
                                 ordered_at="2026-01-01 10:00:00+00:00", updated_at="2026-01-02 00:00:00+00:00"), **r}
                         for r in rows])


def test_migrations_are_recorded_and_idempotent(hub):
    assert hub.migrate() == list(range(1, LATEST + 1))
    assert hub.migrate() == []


def test_rerun_replaces_the_staged_partition(hub):
    hub.migrate()
    hub.write_staged("order", "run1", "odoo", [orders(dict(source_id="1", total_amount=10.0)),
                                               orders(dict(source_id="2", total_amount=20.0))])
    assert len(hub.read_staged("order", "run1")) == 2
    hub.write_staged("order", "run1", "odoo", [orders(dict(source_id="1", total_amount=11.0))])  # retry
    staged = hub.read_staged("order", "run1")
    assert list(staged["total_amount"]) == [11.0]
    assert str(staged["ordered_at"].dt.tz) == "UTC"


def test_failed_extraction_leaves_the_previous_partition(hub):
    hub.migrate()
    hub.write_staged("order", "run1", "odoo", [orders(dict(source_id="1", total_amount=10.0))])

    def broken():
        yield orders(dict(source_id="9", total_amount=1.0))
        raise ConnectionError("source went away")

    with pytest.raises(ConnectionError):
        hub.write_staged("order", "run1", "odoo", broken())
    assert list(hub.read_staged("order", "run1")["source_id"]) == ["1"]


def test_upsert_keeps_one_current_version_and_quarantine_release(hub):
    hub.migrate()
    hub.upsert_entity("order", orders(dict(source_id="1", total_amount=10.0), dict(source_id="2", total_amount=5.0)), "r1")
    hub.upsert_entity("order", orders(dict(source_id="1", total_amount=12.5)), "r2")
    current = hub.read_entity("order").set_index("source_id")
    assert len(current) == 2 and current.at["1", "total_amount"] == 12.5

    def bad(*ids):
        return orders(*(dict(source_id=i, total_amount=-1.0) for i in ids)).assign(
            reason_code="negative_amount", expectation="x", reason="total_amount is negative")

    key = ("source_system", "source_id")
    assert hub.settle_quarantine("r2", "staging", "order", bad("3", "4"), key, checked=bad("3", "4"))["held"] == 2
    assert sorted(hub.held_quarantine("order")["record_id"]) == ["3", "4"]
    # Re-checked: 3 is fixed, 4 fails again (one entry holds it, not two), 5 is new; unchecked rows stay held.
    checked = pd.concat([orders(dict(source_id="3", total_amount=1.0)), bad("4", "5")], ignore_index=True)
    outcome = hub.settle_quarantine("r3", "staging", "order", bad("4", "5"), key, checked=checked)
    assert outcome == {"held": 2, "released": 1, "superseded": 1, "gone": 0}
    held = hub.held_quarantine("order", stage="staging")
    assert sorted(held["record_id"]) == ["4", "5"] and set(held["run_id"]) == {"r3"}
    # A whole-population check: rows no longer present are resolved as gone.
    outcome = hub.settle_quarantine("r4", "staging", "order", bad("5"), key, checked=bad("5"), whole=True)
    assert outcome == {"held": 1, "released": 0, "superseded": 1, "gone": 1}
    resolutions = hub.read_table("quarantine").set_index("id")["resolution"].value_counts().to_dict()
    assert resolutions == {"superseded": 2, "passed": 1, "gone": 1}


def test_quarantine_release_matches_the_whole_key_whatever_the_id_type(hub):
    """A held row is released only by a check of the same (system, id): the same id from another system does not
    count, and ids checked as numbers match ids held as text."""
    hub.migrate()
    key = ("source_system", "source_id")
    held = orders(dict(source_id="3", total_amount=-1.0), dict(source_id="4", total_amount=-1.0)).assign(
        reason_code="negative_amount", expectation="x", reason="total_amount is negative")
    hub.settle_quarantine("r1", "staging", "order", held, key, checked=held)
    other_system = orders(dict(source_id="3", total_amount=1.0)).assign(source_system="erpnext")
    as_numbers = orders(dict(source_id="x", total_amount=1.0), dict(source_id="y", total_amount=1.0))
    checked = pd.concat([other_system, as_numbers], ignore_index=True)
    checked["source_id"] = pd.Series(["3", 4, None], dtype=object)
    assert checked["source_id"].map(type).tolist() == [str, int, type(None)]
    outcome = hub.settle_quarantine("r2", "staging", "order", checked.iloc[:0].assign(
        reason_code=[], expectation=[], reason=[]), key, checked=checked)
    assert outcome == {"held": 0, "released": 1, "superseded": 0, "gone": 0}
    assert hub.held_quarantine("order")["record_id"].tolist() == ["3"]


def test_upsert_rows_replaces_by_key_in_batches(hub):
    """More keys than one IN list may bind on SQLite: the keyed delete must batch."""
    hub.migrate()
    rows = [{"target": "sf", "customer_id": f"C{i}", "payload_hash": "a"} for i in range(20_000)]
    hub.upsert_rows("push_state", rows, ("target", "customer_id"))
    hub.upsert_rows("push_state", [{**r, "payload_hash": "b"} for r in rows], ("target", "customer_id"))
    state = hub.read_table("push_state")
    assert len(state) == 20_000 and set(state["payload_hash"]) == {"b"}


def test_state_tables_read_back_as_read_sql_gives_them(hub, monkeypatch, caplog):
    """`read_table`, `read_keyed` and the row writes behind them (`insert_rows`, `upsert_rows`, in bulk) on every
    backend: each kind comes back as `pd.read_sql` gives it (text as pandas' str; booleans as bool, or
    True/False/None; timestamps as datetime64; dates as date objects; integers with a missing one as floats). Over
    several slices, with a column NULL in the first one, and a column NULL in every row as objects); on SQLite through
    Arrow, without falling back."""
    import datetime as dt

    from hub import bulk, schema

    monkeypatch.setattr(bulk, "SLICE_ROWS", 2)
    arrow_reads, batches = [], bulk.sqlite_batches
    monkeypatch.setattr(bulk, "sqlite_batches", lambda *a: arrow_reads.append(a[1]) or batches(*a))
    hub.migrate()
    stamp = dt.datetime(2026, 3, 1, 10, 11, 12, 345678)
    rows = [dict(customer_id=f"C{i}", name=None if i < 3 else f"Zhang Wei 张伟 '{i}'", is_company=None if i < 2 else i % 2 == 0,
                 birth_date=None if i < 3 else dt.date(1980, 2, 29), source_count=None if i == 4 else i,
                 held=i == 5, updated_at=None if i < 3 else stamp, created_at=None if i == 1 else stamp,
                 email="" if i == 3 else None) for i in range(6)]
    hub.insert_rows("customers", rows[:3])
    hub.upsert_rows("customers", [{**rows[1], "email": "x@y.example"}, *rows[3:]], ("customer_id",))
    with hub.engine.connect() as conn:
        expected = pd.read_sql(schema.customers.select().order_by(schema.customers.c.customer_id), conn)
    got = hub.read_table("customers").sort_values("customer_id", ignore_index=True)
    assert "instead of Arrow" not in caplog.text
    assert bool(arrow_reads) == hub.engine.url.drivername.startswith("sqlite")
    assert got.loc[1, "email"] == "x@y.example" and got.loc[3, "email"] == "" and pd.isna(got.loc[0, "email"])
    assert got.loc[5, "name"] == "Zhang Wei 张伟 '5'" and pd.isna(got.loc[0, "name"])
    assert got["is_company"].tolist() == [None, None, True, False, True, False]
    assert got["held"].dtype == bool and got["held"].tolist() == [False] * 5 + [True]
    assert got.loc[3, "birth_date"] == dt.date(1980, 2, 29) and got.loc[0, "birth_date"] is None
    assert got.loc[3, "updated_at"] == pd.Timestamp(stamp) and pd.isna(got.loc[0, "updated_at"])
    assert got["source_count"].tolist()[:4] == [0, 1, 2, 3] and pd.isna(got.loc[4, "source_count"])
    assert got["given_name"].tolist() == [None] * 6  # NULL in every row
    pd.testing.assert_frame_equal(got, expected)
    assert (hub.read_table("push_state").dtypes == object).all()  # no row: objects, as pd.read_sql gives them
    keyed = hub.read_keyed("customers", ["customer_id", "held"], "customer_id", ["C5", "C1"], batch=1)
    assert sorted(zip(keyed["customer_id"], keyed["held"])) == [("C1", False), ("C5", True)]


def test_a_hub_created_by_the_first_release_is_migrated_in_place(hub):
    """A database made by schema v1 lacks the columns later versions added; migrating adds them, keeps the
    rows, and the store works on it."""
    from hub import schema

    hub.migrate()
    hub.write_staged("order", "r1", "odoo", [orders(dict(source_id="1", total_amount=3.0))])
    added_later = [(t.name, "parse_errors") for e, t in schema.STAGING_TABLES.items()
                   if e not in ("order_line", "payment")] + [
        ("quarantine", "resolution"), ("push_state", "payload")]
    with hub.engine.begin() as conn:  # back to what v1 created
        for table, column in added_later:
            conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))
        for entity in ("order_line", "payment"):  # entities added later
            conn.execute(text(f'DROP TABLE "{schema.ENTITY_TABLES[entity].name}"'))
            conn.execute(text(f'DROP TABLE "{schema.STAGING_TABLES[entity].name}"'))
        conn.execute(text("DELETE FROM schema_migrations WHERE version > 1"))

    assert hub.migrate() == list(range(2, LATEST + 1))
    assert hub.migrate() == []
    staged = hub.read_staged("order", "r1")
    assert list(staged["source_id"]) == ["1"] and staged["parse_errors"].isna().all()
    hub.write_staged("order", "r2", "odoo", [orders(dict(source_id="2", total_amount=1.0)).assign(
        parse_errors="[not_a_number] total_amount 'x' is not a finite number")])
    assert hub.read_staged("order", "r2")["parse_errors"].str.contains("not_a_number").all()
    assert hub.read_entity("payment").empty and hub.read_staged("order_line", "r2").empty


def test_landing_files_read_back_as_the_staging_tables_do(tmp_path):
    """A run's landing partitions, several sources and chunks, read back the same from Parquet files as from the
    hub's stg_ tables: values, kinds and parse errors."""
    chunks = {"odoo": [orders(dict(source_id="1", total_amount=10.0, channel="web"),
                              dict(source_id="2", total_amount=None, channel=None)),
                       orders(dict(source_id="3", total_amount=1e12, channel="shop")).assign(
                           parse_errors="[not_a_number] total_amount 'x' is not a finite number")],
              "erpnext": [orders(dict(source_id="SO-1", total_amount=5.5, ordered_at=None))]}
    read = []
    for landing in (None, tmp_path / "landing"):
        hub = HubStore(f"sqlite:///{tmp_path / f'hub_{landing is None}.db'}", landing_dir=landing)
        hub.migrate()
        for source, frames in chunks.items():
            assert hub.write_staged("order", "run1", source, frames) == sum(map(len, frames))
        read.append(hub.read_staged("order", "run1").sort_values("source_id", ignore_index=True))
        assert hub.read_staged("order", "other_run").empty and hub.read_staged("invoice", "run1").empty
    pd.testing.assert_frame_equal(read[0], read[1])
    assert read[1]["parse_errors"].tolist() == [None, None, "[not_a_number] total_amount 'x' is not a finite number",
                                                None]


def test_landing_of_older_runs_is_pruned(hub):
    hub.migrate()
    for i in range(1, 5):
        hub.start_run(f"scheduled__2026-01-0{i}T00:00:00+00:00", "dag", pd.Timestamp("2026-01-01"),
                      pd.Timestamp("2026-01-02"), False)
        hub.write_staged("order", f"scheduled__2026-01-0{i}T00:00:00+00:00", "odoo",
                         [orders(dict(source_id=str(i), total_amount=1.0))])
    hub.prune_landing(keep_runs=2)
    kept = [len(hub.read_staged("order", f"scheduled__2026-01-0{i}T00:00:00+00:00")) for i in range(1, 5)]
    assert kept == [0, 0, 1, 1]


def test_bulk_writes_round_trip_every_kind(hub):
    """The bulk paths (SQLite executemany, PostgreSQL COPY) store what the frame holds: timestamps to the
    microsecond in UTC, dates, booleans, integers, floats, missing values and awkward text."""
    hub.migrate()
    records = pd.DataFrame([
        dict(source_system="odoo", source_id="1", name="Zhang Wei\t张伟\\n \"quoted\"\nnext line", is_company=True,
             birth_date="1980-02-29", updated_at="2026-03-01 10:11:12.345678+08:00", email=None),
        dict(source_system="odoo", source_id="2", name="", is_company=False, birth_date=None, updated_at=None,
             email="a@b.example"),
        dict(source_system="odoo", source_id="3", name=None, is_company=None, birth_date="2000-01-01",
             updated_at="2026-01-01T00:00:00Z", email="\\N"),
    ])
    hub.write_staged("customer_record", "run1", "odoo", [records])
    hub.upsert_entity("customer_record", records, "run1")
    for frame in (hub.read_staged("customer_record", "run1"), hub.read_entity("customer_record")):
        got = frame.set_index("source_id")
        assert got.at["1", "name"] == records.at[0, "name"] and got.at["2", "name"] == "" and got.at["3", "name"] is None
        assert [got.at[k, "is_company"] for k in "123"] == [True, False, None]
        assert got.at["1", "updated_at"] == pd.Timestamp("2026-03-01 02:11:12.345678", tz="UTC")
        assert pd.isna(got.at["2", "updated_at"])
        assert got.at["1", "birth_date"] == pd.Timestamp("1980-02-29") and pd.isna(got.at["2", "birth_date"])
        assert got.at["3", "email"] == "\\N" and got.at["1", "email"] is None
    some = hub.read_entity("customer_record", ["is_company", "source_id", "birth_date"])
    assert list(some.columns) == ["is_company", "source_id", "birth_date"]
    pd.testing.assert_frame_equal(some, hub.read_entity("customer_record")[list(some.columns)])
    order = orders(dict(source_id="7", total_amount=12.5))
    hub.upsert_entity("order", order, "run1")
    hub.upsert_entity("order", orders(dict(source_id="7", total_amount=13.0)), "run2")  # the newer version wins
    current = hub.read_entity("order")
    assert list(current["total_amount"]) == [13.0]


def test_normal_forms_are_kept_per_normaliser_and_forgotten_when_gone(hub):
    hub.migrate()
    forms = pd.DataFrame({"unique_id": ["odoo:1", "odoo:2", "tryton:7"], "fingerprint": ["a1", "b2", "c3"],
                          "n_name": ["zhang wei", "müller", None], "n_name_key": ["wei zhang", "müller", None],
                          "n_birth_date": ["1980-02-01", None, None]})
    for column in ("n_email", "n_phone", "n_tax_id", "n_street", "n_city", "n_postcode"):
        forms[column] = None
    hub.save_normal_forms(forms, gone=[], normaliser="v1")
    stored = hub.normal_forms("v1").set_index("unique_id")
    assert stored.loc["odoo:1", "n_name_key"] == "wei zhang" and stored.loc["odoo:1", "n_birth_date"] == "1980-02-01"
    assert stored.loc["tryton:7", "n_name"] is None
    # A later run: one record normalised again, one gone.
    hub.save_normal_forms(forms.iloc[[0]].assign(fingerprint="a9", n_name="zhang wei 2"), gone=["odoo:2"], normaliser="v1")
    stored = hub.normal_forms("v1").set_index("unique_id")
    assert sorted(stored.index) == ["odoo:1", "tryton:7"] and stored.loc["odoo:1", "fingerprint"] == "a9"
    # Saved by another normaliser: none of it is handed out, and the next save clears it.
    assert hub.normal_forms("v2") is None
    hub.save_normal_forms(forms.iloc[[2]], gone=[], normaliser="v2")
    assert hub.count("record_normal_forms") == 1 and list(hub.normal_forms("v2")["unique_id"]) == ["tryton:7"]


def test_sqlite_reads_through_arrow_as_through_the_cursor(tmp_path, monkeypatch, caplog):
    """A SQLite hub's reads go through ADBC into Arrow and give the frame the driver's cursor gives: every kind,
    missing values, and a column that is NULL for its whole first slice (ADBC would take it for integers without
    the typed first row). A value of another type than its column's, written by hand, is read through the cursor."""
    from hub import bulk

    monkeypatch.setattr(bulk, "SLICE_ROWS", 2)
    hub = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    hub.migrate()
    hub.upsert_entity("customer_record", pd.DataFrame([
        dict(source_system="odoo", source_id="1", name=None, is_company=None, birth_date=None, updated_at=None),
        dict(source_system="odoo", source_id="2", name=None, is_company=None, birth_date=None, updated_at=None),
        dict(source_system="odoo", source_id="3", name="Zhang Wei 张伟", is_company=True, birth_date="1980-02-29",
             updated_at="2026-03-01 10:11:12.345678+08:00"),
        dict(source_system="odoo", source_id="4", name="", is_company=False, birth_date=None, updated_at=None)]), "r1")
    hub.upsert_entity("order", orders(*[dict(source_id=str(i), total_amount=None if i < 3 else i * 1.5,
                                             channel=None if i < 3 else "web") for i in range(6)]), "r1")
    arrow_reads = []
    read_arrow = bulk._read_arrow
    monkeypatch.setattr(bulk, "_read_arrow", lambda *a: arrow_reads.append(a) or read_arrow(*a))

    def both(entity):
        through_arrow = hub.read_entity(entity)
        with monkeypatch.context() as m:
            m.setattr(bulk, "typed_first_row", lambda query: None)
            return through_arrow, hub.read_entity(entity)

    for entity in ("customer_record", "order"):
        through_arrow, through_cursor = both(entity)
        pd.testing.assert_frame_equal(through_arrow, through_cursor)
    assert len(arrow_reads) == 2 and "instead of Arrow" not in caplog.text  # read through Arrow, no fallback
    records = both("customer_record")[0].set_index("source_id")
    assert records["is_company"].tolist() == [None, None, True, False]
    assert records.at["3", "birth_date"] == pd.Timestamp("1980-02-29")
    orders_read = both("order")[0].set_index("source_id")
    assert orders_read["channel"].tolist() == [None, None, None, "web", "web", "web"]
    assert orders_read.loc["3", "total_amount"] == 4.5 and orders_read.loc[["0", "1", "2"], "total_amount"].isna().all()

    with hub.engine.begin() as conn:  # text in a FLOAT column: SQLite keeps it as text
        conn.execute(text("UPDATE orders SET total_amount = 'n/a' WHERE source_id = '5'"))
    through_arrow, through_cursor = both("order")
    pd.testing.assert_frame_equal(through_arrow, through_cursor)
    assert pd.isna(through_arrow.set_index("source_id").at["5", "total_amount"])
    assert "instead of Arrow" in caplog.text


def test_sqlite_upserts_through_arrow_store_what_the_cursor_stores(tmp_path, monkeypatch):
    """A SQLite file hub's upserts load the rows through ADBC; SQLite then holds exactly what the driver cursor's
    executemany stores: each value and its storage class (text timestamps, 0/1 booleans, reals, nulls), over several
    slices, with a later version of a row replacing the earlier one."""
    import sqlite3

    from hub import bulk, schema
    from hub.frames import coerce
    from erp2crm.canonical import ENTITIES

    monkeypatch.setattr(bulk, "SLICE_ROWS", 2)
    records = pd.DataFrame([
        dict(source_system="odoo", source_id="1", name="Zhang Wei\t张伟\\n \"quoted\"\nnext line", is_company=True,
             birth_date="1980-02-29", updated_at="2026-03-01 10:11:12.345678+08:00", email=None),
        dict(source_system="odoo", source_id="2", name="", is_company=False, birth_date=None, updated_at=None),
        dict(source_system="odoo", source_id="3", name=None, is_company=None, birth_date="2000-01-01",
             updated_at="2026-01-01T00:00:00Z", email="\\N")])
    documents = orders(*[dict(source_id=str(i), total_amount=None if i == 1 else i * 1.25, channel=None if i % 2
                              else "web") for i in range(5)])
    later = orders(dict(source_id="0", total_amount=99.5, status="done"))
    stored = []
    for path in ("arrow", "cursor"):
        hub = HubStore(f"sqlite:///{tmp_path / f'{path}.db'}")
        hub.migrate()
        for entity, frame in (("customer_record", records), ("order", documents), ("order", later)):
            if path == "arrow":
                hub.upsert_entity(entity, frame, "r1")
            else:
                with hub.engine.begin() as conn:
                    bulk.upsert_frame(conn, schema.ENTITY_TABLES[entity], coerce(frame, ENTITIES[entity].fields)
                                      .assign(run_id="r1"), ("source_system", "source_id"))
        with sqlite3.connect(tmp_path / f"{path}.db") as db:
            stored.append({table: sorted(db.execute(
                f"SELECT {', '.join(f'{c.name}, typeof({c.name})' for c in schema.ENTITY_TABLES[entity].c)} "
                f"FROM {table}").fetchall()) for entity, table in (("customer_record", "customer_records"),
                                                                    ("order", "orders"))})
            latest = db.execute("SELECT status, total_amount, typeof(ordered_at) FROM orders WHERE source_id = '0'")
            assert latest.fetchall() == [("done", 99.5, "text")]
    assert stored[0] == stored[1] and len(stored[0]["orders"]) == 5 and len(stored[0]["customer_records"]) == 3


def test_merge_frame_writes_only_changed_rows_and_deletes_gone_ones(hub):
    """What reconcile writes: a link whose values did not change keeps its linked_at, a changed one is rewritten,
    a new one added, a gone one deleted; None and NaN count as the same null."""
    hub.migrate()
    earlier, now = pd.Timestamp("2026-01-01 00:00:00"), pd.Timestamp("2026-02-01 00:00:00")

    def links(*rows, at):
        return pd.DataFrame([{"source_system": "odoo", "source_id": i, "customer_id": c, "match_rule": "same_email",
                              "match_band": "auto", "match_score": score, "explanation": None, "linked_at": at,
                              "run_id": "r", "fingerprint": "f"} for i, c, score in rows])

    first = links(("1", "C1", 1.0), ("2", "C1", None), ("3", "C3", 0.5), at=earlier)
    assert hub.merge_frame("crosswalk", first, hub.read_table("crosswalk"), ("source_system", "source_id"),
                           ignore=("linked_at", "run_id")) == {"written": 3, "deleted": 0}
    second = links(("1", "C1", 1.0), ("2", "C1", float("nan")), ("3", "C9", 0.5), ("4", "C4", 1.0), at=now)
    result = hub.merge_frame("crosswalk", second, hub.read_table("crosswalk"), ("source_system", "source_id"),
                             ignore=("linked_at", "run_id"))
    assert result == {"written": 2, "deleted": 0}  # 3 moved to C9, 4 is new
    stored = hub.read_table("crosswalk").set_index("source_id")
    assert stored["customer_id"].to_dict() == {"1": "C1", "2": "C1", "3": "C9", "4": "C4"}
    assert stored["linked_at"].to_dict() == {"1": earlier, "2": earlier, "3": now, "4": now}
    third = second[second["source_id"] != "2"]
    assert hub.merge_frame("crosswalk", third, hub.read_table("crosswalk"), ("source_system", "source_id"),
                           ignore=("linked_at", "run_id")) == {"written": 0, "deleted": 1}
    assert sorted(hub.read_table("crosswalk")["source_id"]) == ["1", "3", "4"]


def test_changed_owners_add_up_over_a_retried_gate_and_clear_by_run(hub):
    """The changed owners are an upsert on the whole row (all key, on PostgreSQL too): a retried staging gate adds
    to what its first try recorded, without duplicates, and an enrich clears the runs it took in."""
    hub.migrate()
    owners = pd.DataFrame({"source_system": ["odoo", "odoo"], "owner_id": ["1", "2"]})
    hub.record_changed_owners("r1", "order", owners)
    hub.record_changed_owners("r1", "order", pd.DataFrame({"source_system": ["odoo", "odoo"], "owner_id": ["2", "3"]}))
    hub.record_changed_owners("r2", "payment", owners.iloc[:1])
    stored = hub.read_table("changed_owners")
    assert sorted(stored.loc[stored["run_id"] == "r1", "owner_id"]) == ["1", "2", "3"]
    hub.clear_changed_owners({"r1"})
    assert hub.read_table("changed_owners")[["run_id", "owner_id"]].values.tolist() == [["r2", "1"]]


def test_upserts_keep_the_last_row_of_a_key_and_a_first_load_rebuilds_the_indexes(hub, monkeypatch):
    """Of two rows with the same key in one upsert, the last one stays, on every backend. A SQLite table loaded while
    empty gets its secondary indexes back (built after the rows), and they serve lookups; a later upsert into the
    filled table replaces rows with its indexes in place."""
    from hub import bulk

    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 2)  # so that a small load takes the first-load path
    hub.migrate()

    def indexes():
        with hub.engine.connect() as conn:
            if hub.engine.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name = 'orders' ORDER BY name"))
            else:
                rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders' "
                                         "ORDER BY indexname"))
            return rows.all()

    before = indexes()
    assert any("customer_source_id" in (sql or "") for _, sql in before)
    hub.upsert_entity("order", orders(dict(source_id="1", total_amount=1.0, customer_source_id="a"),
                                      dict(source_id="2", total_amount=2.0, customer_source_id="b"),
                                      dict(source_id="1", total_amount=3.0, customer_source_id="c")), "r1")
    assert indexes() == before
    current = hub.read_entity("order").set_index("source_id")
    assert current["total_amount"].to_dict() == {"1": 3.0, "2": 2.0}  # the last row of key 1
    assert current.at["1", "customer_source_id"] == "c"
    hub.upsert_entity("order", orders(dict(source_id="2", total_amount=5.0, customer_source_id="d"),
                                      dict(source_id="3", total_amount=6.0, customer_source_id="d"),
                                      dict(source_id="2", total_amount=7.0, customer_source_id="c")), "r2")
    assert indexes() == before
    current = hub.read_entity("order").set_index("source_id")
    assert current["total_amount"].to_dict() == {"1": 3.0, "2": 7.0, "3": 6.0}
    owned = hub.read_entity("order", ["source_id"], where=("customer_source_id", pd.DataFrame(
        {"source_system": ["odoo"], "customer_source_id": ["c"]})))
    assert sorted(owned["source_id"]) == ["1", "2"]  # the owner column as the last upsert left it
