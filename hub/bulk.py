"""Bulk reads and writes of coerced frames from and into hub tables, without SQLAlchemy's per-row, per-column
Python work, a slice of rows at a time (so that a 5-million-row entity never exists as 5 million Python tuples).

Reads: on a SQLite file, through ADBC's SQLite driver into Arrow batches (`_read_arrow`); elsewhere, the query's SQL
on the driver's cursor, fetched in slices. Each slice is coerced to the canonical kinds at once. The hub's own
tables (`read_rows`) come back as `pd.read_sql` gives them, through Arrow on a SQLite file.

Writes, inside the caller's transaction:
SQLite: one `executemany` of plain tuples on the driver connection (timestamps as the text SQLAlchemy's SQLite
DATETIME stores and reads back, booleans as 0/1), upserts as INSERT OR REPLACE on the primary key.
PostgreSQL: COPY (upserts: COPY into a temporary table, then INSERT ... ON CONFLICT DO UPDATE).
Other databases: SQLAlchemy's executemany, deleting the keys first for an upsert.
A SQLite file's entity upserts, in a transaction of their own: the same values through ADBC (`upsert_sqlite_file`).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Boolean, Date, DateTime, Float, Integer, String, Table, delete, insert
from sqlalchemy.engine import URL, Connection

from hub.frames import arrow_frame, coerce

log = logging.getLogger(__name__)

SLICE_ROWS = 200_000  # rows per fetch and per executemany / COPY: bounds the Python objects alive at once
SQLITE_CACHE_KIB = 64 * 1024  # each SQLite connection's page cache (hub.store._sqlite_page_cache says why)


def read_frame(conn: Connection, query, fields: dict[str, str], keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows of `query` as a frame of `fields` coerced to their kinds, plus the `keep` columns as they are."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    database = sqlite_file(conn.engine.url)
    first_row = typed_first_row(query)
    if database and first_row and not conn.in_transaction():
        try:
            return _read_arrow(database, sql, first_row, fields, keep)
        except OSError as e:  # a value of another type than its column's (written by hand): read it as it is
            log.warning("hub read through the SQLite cursor instead of Arrow: %s", e)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description]
        parts = []
        while rows := cursor.fetchmany(SLICE_ROWS):
            parts.append(_typed(pd.DataFrame.from_records(rows, columns=columns), fields, keep))
    finally:
        cursor.close()
    if not parts:
        return _typed(pd.DataFrame(columns=columns), fields, keep)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def read_rows(conn: Connection, query) -> pd.DataFrame:
    """The rows of `query` as `pd.read_sql` gives them. On a SQLite file, through ADBC into Arrow (`sqlite_batches`)
    instead of SQLAlchemy's row processing, which was most of an incremental run's reads of the hub's own tables
    (push state, profiles, crosswalk)."""
    database, first_row = sqlite_file(conn.engine.url), typed_first_row(query)
    if database and first_row and not conn.in_transaction():
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        try:
            parts = [_as_read_sql(batch, query) for batch in sqlite_batches(database, sql, first_row, SLICE_ROWS)]
            return _nulls_as_read_sql(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
        except OSError as e:  # a value of another type than its column's (written by hand): read it as it is
            log.warning("hub read through SQLAlchemy instead of Arrow: %s", e)
    return pd.read_sql(query, conn)


_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' `str`, what pd.read_sql gives text as


def _nulls_as_read_sql(frame: pd.DataFrame) -> pd.DataFrame:
    """A column without a value (every column of an empty result) as objects, None each, as `pd.read_sql` gives it:
    callers test such values with `is None`."""
    for name in frame.columns:
        if not frame[name].notna().any():
            frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def _as_read_sql(batch: pa.RecordBatch, query) -> pd.DataFrame:
    """An Arrow batch as `pd.read_sql` gives SQLAlchemy's results: text as pandas' `str` (no Python string per
    value), integers as int64 or float64 with a missing one, booleans (stored 0/1) as bool, or as objects True,
    False and None; timestamps (stored as text) as datetime64[us]; dates as `datetime.date` objects or None."""
    raw = pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
    for name, values in zip(batch.column_names, batch.columns):
        text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        raw[name] = values.to_pandas(types_mapper={values.type: _TEXT}.get if text else None)
    for column in query.selected_columns:
        kind, values = column.type, raw[column.name]
        if not isinstance(kind, (Boolean, Date, DateTime)):
            continue
        present = values.notna().to_numpy()
        if isinstance(kind, Boolean):
            if present.all():
                raw[column.name] = values.to_numpy() != 0
                continue
            truth = values[present].to_numpy() != 0
        else:
            stamps = pd.to_datetime(values, format="ISO8601")
            if isinstance(kind, DateTime):
                raw[column.name] = stamps.astype("datetime64[us]")
                continue
            truth = stamps[present].dt.date.to_numpy()
        out = np.full(len(values), None, dtype=object)
        out[present] = truth.tolist()  # Python objects (bool, date), as SQLAlchemy gives them
        raw[column.name] = out
    return raw


def sqlite_file(url: URL) -> str | None:
    """The database file of a SQLite URL (whose bulk reads and upserts go through ADBC); None for anything else,
    an in-memory database included."""
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return url.database


# ADBC's SQLite driver takes a column's Arrow type from the first slice it reads and fails on a later value of another
# type: a column NULL for its first 200,000 rows would be read as integers. So every read starts with one row of
# typed placeholder values (dropped), which fixes each column's type from the table's declared one.
_PLACEHOLDERS = ((String, "''"), (Date, "''"), (DateTime, "''"), (Boolean, "0"), (Integer, "0"), (Float, "0.0"))


def typed_first_row(query) -> str | None:
    """The placeholder row's SELECT list for `query`'s columns; None when a column's type has no placeholder (a
    NUMERIC column, whose values SQLite stores as integers or reals, or a column without a declared type)."""
    items = []
    for column in query.selected_columns:
        literal = next((text for kind, text in _PLACEHOLDERS if isinstance(column.type, kind)), None)
        if literal is None:
            return None
        items.append(f'{literal} AS "{column.name}"')
    return ", ".join(items)


def _read_arrow(database: str, sql: str, first_row: str, fields: dict[str, str], keep: tuple[str, ...]) -> pd.DataFrame:
    """`sql` through ADBC into Arrow, a slice at a time (`sqlite_batches`). Against the
    Python driver's rows, 3M orders read in 6.1 s instead of 11.4 s and hold 0.67 GiB instead of 1.49 GiB: text
    repeated over millions of rows (a source system, a status, a currency) is one Python string, not one per row."""
    parts = [_typed(arrow_frame(batch), fields, keep)
             for batch in sqlite_batches(database, sql, first_row, SLICE_ROWS)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def sqlite_batches(database: str, sql: str, first_row: str, batch_rows: int,
                   read_only: bool = False) -> Iterator[pa.RecordBatch]:
    """The rows of `sql` as Arrow batches of up to `batch_rows` rows, read after a placeholder row of `first_row`
    (`typed_first_row`), which is dropped. A value of another type than its column's declared one raises OSError
    mid-way. `read_only` opens the file read-only: an ERP's database is never written to."""
    with _adbc(database, read_only) as connection, connection.cursor() as cursor:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        cursor.execute(f"SELECT {first_row} UNION ALL SELECT * FROM ({sql})")
        for index, batch in enumerate(cursor.fetch_record_batch()):
            yield batch.slice(1) if index == 0 else batch


@contextmanager
def _adbc(database: str, read_only: bool = False):
    """An ADBC connection to a SQLite file set up as the hub's engine's are: it waits up to 60 s for another writer
    and has the same page cache."""
    import adbc_driver_sqlite.dbapi as adbc

    with adbc.connect(f"file:{quote(database)}?mode=ro" if read_only else database) as connection:
        with connection.cursor() as cursor:
            for pragma in ("busy_timeout = 60000", f"cache_size = -{SQLITE_CACHE_KIB}"):
                cursor.execute(f"PRAGMA {pragma}")
                cursor.fetchall()
        yield connection


def upsert_sqlite_file(database: str, table: Table, frame: pd.DataFrame, keys: tuple[str, ...]) -> None:
    """`upsert_frame` on a SQLite file, in one transaction of its own: ADBC loads the rows from Arrow into a
    temporary table, a slice at a time, then one INSERT OR REPLACE ... SELECT moves them in the frame's order, so that
    of two rows with the same key the last one stays. No Python tuple per row and no bound parameter per value: 1M
    orders take 6.1 s instead of 9.8 s into an empty table, 9.7 s instead of 14.2 s replacing every row (measured in
    turns on one machine). `frame` holds canonical kinds (text as str or None), as `coerce` returns them.

    Into an empty table, a large frame goes in without the table's secondary indexes, which are built afterwards in
    one sorted pass each: 5.2M order lines take 15.1 s instead of 20.2 s, with two indexes besides the key."""
    columns = [c for c in frame.columns if c in table.c]
    q = '"{}"'.format
    names = ", ".join(q(c) for c in columns)
    load = f"erp2crm_load_{table.name}"
    with _adbc(database) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS temp.{q(load)}")
        for start in range(0, len(frame), SLICE_ROWS):
            part = frame.iloc[start:start + SLICE_ROWS]
            data = pa.table({c: _arrow_values(part[c], table.c[c].type) for c in columns})
            cursor.adbc_ingest(load, data, mode="create" if start == 0 else "append", temporary=True)
        indexes = _secondary_indexes(cursor, table.name) if len(frame) >= REBUILD_INDEXES_FROM else []
        if indexes:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {q(table.name)})")
            if cursor.fetchone()[0]:
                indexes = []
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {q(name)}")
        cursor.execute(f"INSERT OR REPLACE INTO {q(table.name)} ({names}) SELECT {names} FROM temp.{q(load)} "
                       "ORDER BY rowid")
        for _, create in indexes:
            cursor.execute(create)
        cursor.execute(f"DROP TABLE temp.{q(load)}")
        connection.commit()


REBUILD_INDEXES_FROM = 50_000  # rows loaded into an empty table


def _secondary_indexes(cursor, table_name: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the indexes created on `table_name` besides its primary key's, unique ones left
    out (INSERT OR REPLACE acts on their conflicts too)."""
    cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
                   "ORDER BY name", parameters=(table_name,))
    return [(name, sql) for name, sql in cursor.fetchall() if not sql.upper().startswith("CREATE UNIQUE")]


def _arrow_values(col: pd.Series, sql_type) -> pa.Array:
    """One column as the values the executemany path binds (`_column_values`), as Arrow: timestamps and dates as
    SQLAlchemy's SQLite text, booleans as 0/1, missing values as nulls."""
    if isinstance(sql_type, (DateTime, Date)):
        return _sqlite_stamps(col, sql_type)
    if isinstance(sql_type, Boolean):
        return pa.array(_column_values(col, sql_type, "sqlite"), type=pa.int64())
    if isinstance(sql_type, Float):
        return pa.array(pd.to_numeric(col).to_numpy(dtype="float64"), from_pandas=True)
    if isinstance(sql_type, Integer):
        return pa.array(col.astype("Int64"), from_pandas=True)
    return pa.array(col.to_numpy(dtype=object), type=pa.string(), from_pandas=True)


def _typed(raw: pd.DataFrame, fields: dict[str, str], keep: tuple[str, ...]) -> pd.DataFrame:
    frame = coerce(raw, fields, stored=True)
    for name in keep:
        frame[name] = raw[name].astype(object).where(raw[name].notna(), None)
    return frame


def _sqlite_stamps(col: pd.Series, sql_type) -> pa.Array:
    """Timestamps (DateTime) or dates (Date) as the text SQLAlchemy's SQLite types store and read back, null for
    missing; built in Arrow, without a Python string per value. Each distinct value is formatted once: dates repeat
    (1,100 days for 340,000 invoices), and order lines share their order's timestamps."""
    stamps = pd.to_datetime(col, errors="coerce", utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
    codes, distinct = pd.factorize(stamps)  # NaT: code -1
    distinct = np.asarray(distinct, dtype="datetime64[us]")
    text = pa.array(np.datetime_as_string(distinct, unit="us" if isinstance(sql_type, DateTime) else "D"))
    if isinstance(sql_type, DateTime):
        text = pc.replace_substring(text, "T", " ", max_replacements=1)
    return text.take(pa.array(codes, mask=codes < 0))


def _column_values(col: pd.Series, sql_type, dialect: str) -> np.ndarray:
    """One column as an object array of driver-ready values (None for missing)."""
    if isinstance(sql_type, (DateTime, Date)) and dialect == "sqlite":
        return _sqlite_stamps(col, sql_type).to_numpy(zero_copy_only=False)
    if isinstance(sql_type, (DateTime, Date)):  # PostgreSQL: datetime and date objects
        stamps = pd.to_datetime(col, errors="coerce", utc=True).dt.tz_convert(None)
        values = (stamps.dt.date if isinstance(sql_type, Date) else stamps.dt.to_pydatetime()).astype(object) \
            if len(stamps) else stamps.astype(object)
        out = np.array(values, dtype=object)  # a copy: pandas hands out read-only views
        out[stamps.isna().to_numpy()] = None
        return out
    values = col.astype(object).where(col.notna(), None).to_numpy(dtype=object)
    if isinstance(sql_type, Boolean) and dialect == "sqlite":
        return np.array([None if v is None else int(bool(v)) for v in values], dtype=object)
    return values


def _rows(conn: Connection, table: Table, frame: pd.DataFrame) -> tuple[list[str], list[tuple]]:
    columns = [c for c in frame.columns if c in table.c]
    dialect = conn.dialect.name
    arrays = [_column_values(frame[c], table.c[c].type, dialect) for c in columns]
    return columns, list(zip(*arrays))


def delete_keys(conn: Connection, table: Table, key_columns: tuple[str, ...], keys: list[tuple],
                batch: int = 500) -> None:
    """Delete the rows with these keys: the leading key columns as equalities and the last one as an IN list, in
    batches (one IN list per call would pass SQLite's limit on bound parameters at scale). SQLite scans the whole
    table for a row-value IN, 0.11 s a batch in a push state of 156,000 rows, where this form reads its primary key
    index."""
    *leading, last = key_columns
    groups: dict[tuple, list] = {}
    for key in keys:
        groups.setdefault(tuple(key[:-1]), []).append(key[-1])
    for prefix, values in groups.items():
        equal = [table.c[c] == v for c, v in zip(leading, prefix)]
        for start in range(0, len(values), batch):
            conn.execute(delete(table).where(*equal, table.c[last].in_(values[start:start + batch])))


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    _write(conn, table, frame, keys=None)


def upsert_frame(conn: Connection, table: Table, frame: pd.DataFrame, keys: tuple[str, ...]) -> None:
    """Make `frame` the current version of its rows, keyed by `keys` (the table's primary key)."""
    _write(conn, table, frame, keys)


def _write(conn: Connection, table: Table, frame: pd.DataFrame, keys: tuple[str, ...] | None) -> None:
    for start in range(0, len(frame), SLICE_ROWS):
        _write_slice(conn, table, frame.iloc[start:start + SLICE_ROWS], keys)


def _write_slice(conn: Connection, table: Table, frame: pd.DataFrame, keys: tuple[str, ...] | None) -> None:
    columns, rows = _rows(conn, table, frame)
    q = conn.dialect.identifier_preparer.quote
    names = ", ".join(q(c) for c in columns)
    if conn.dialect.name == "sqlite":
        verb = "INSERT OR REPLACE" if keys else "INSERT"
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(f"{verb} INTO {q(table.name)} ({names}) VALUES ({', '.join('?' * len(columns))})",
                               rows)
        finally:
            cursor.close()
        return
    if conn.dialect.name == "postgresql":
        target = table.name
        with conn.connection.driver_connection.cursor() as cursor:
            if keys:
                target = f"tmp_{table.name}"[:63]
                cursor.execute(f"CREATE TEMP TABLE {q(target)} (LIKE {q(table.name)} INCLUDING DEFAULTS) "
                               "ON COMMIT DROP")
            with cursor.copy(f"COPY {q(target)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if keys:
                updates = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in columns if c not in keys)
                action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"  # a table that is all key
                cursor.execute(f"INSERT INTO {q(table.name)} ({names}) SELECT {names} FROM {q(target)} "
                               f"ON CONFLICT ({', '.join(q(k) for k in keys)}) {action}")
                cursor.execute(f"DROP TABLE {q(target)}")
        return
    records = [dict(zip(columns, row)) for row in rows]
    if keys:
        delete_keys(conn, table, keys, [tuple(r[k] for k in keys) for r in records])
    conn.execute(insert(table), records)
