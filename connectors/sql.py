"""Generic SQL source: any database SQLAlchemy reaches, read through a validated mapping file.

Table and column names come only from the mapping, and are checked against the reflected schema before
a query is built; values are bound parameters (SQLAlchemy renders them as literals for ADBC). Rows are read in
primary-key order, in chunks; from a SQLite file, through ADBC into Arrow (`SqlSource._frames`).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import MetaData, String, Table, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoSuchTableError, OperationalError, SQLAlchemyError
from sqlalchemy.types import NullType

from connectors.mapping import SourceMapping, StreamMapping, _as_text, lookup_id
from connectors.transform import _first_non_null, _text, lookup_series, map_chunk
from connectors.window import Window
from erp2crm.errors import ConfigError, TransientError
from hub import bulk
from hub.frames import arrow_frame

log = logging.getLogger(__name__)


class SqlSource:
    def __init__(self, name: str, mapping: SourceMapping, engine: Engine, mapping_file: str = ""):
        self.name, self.mapping, self.engine = name, mapping, engine
        self.mapping_file = mapping_file or f"mappings/{mapping.source}.yaml"
        self._tables: dict[str, Table] = {}

    # --- schema checks ----------------------------------------------------------------------------
    def _table(self, conn, name: str, where: str) -> Table:
        if name not in self._tables:
            try:
                self._tables[name] = Table(name, MetaData(), autoload_with=conn)
            except NoSuchTableError:
                raise ConfigError(f"{self.mapping_file}: {where}: table {name!r} does not exist in source {self.name!r}") from None
        return self._tables[name]

    def _column(self, table: Table, column: str, where: str):
        if column not in table.c:
            raise ConfigError(f"{self.mapping_file}: {where}: column {column!r} does not exist in table "
                              f"{table.name!r} (it has: {', '.join(table.c.keys())})")
        return table.c[column]

    def check(self) -> dict[str, int]:
        """Connect, verify every table and column of the mapping, and count each stream's rows."""
        counts = {}
        with self._connect() as conn:
            for entity, stream in self.mapping.streams.items():
                query = self._query(conn, entity, stream, None)
                counts[entity] = conn.scalar(select(func.count()).select_from(query.subquery()))
        return counts

    def table_rows(self) -> dict[str, int]:
        """Per stream, the rows of its table, all of them (not only a window's): how big a full read is."""
        with self._reading(next(iter(self.mapping.streams.values()))) as conn:
            return {entity: conn.scalar(select(func.count()).select_from(self._table(conn, stream.table,
                                                                                     f"streams.{entity}")))
                    for entity, stream in self.mapping.streams.items()}

    def after_fork(self) -> None:
        """In a forked process: its own connections, never the parent's (SQLAlchemy's pattern for forks)."""
        self.engine.dispose(close=False)

    # --- extraction ---------------------------------------------------------------------------------
    def extract(self, entity: str, window: Window | None, chunk_size: int = 50_000) -> Iterator[pd.DataFrame]:
        """Yield canonical rows of `entity` changed in `window` (all rows when None), chunk by chunk."""
        stream = self.mapping.streams[entity]
        # A full read loads each lookup table whole, once. An incremental window (a start) reads only the lookup
        # rows its own rows point to: a day's new order lines need a few hundred orders, not every order ever.
        keyed = window is not None and window.start is not None and any(s.lookups for s in stream.fields.values())
        with self._reading(stream) as conn, (self._connect() if keyed else _nothing()) as lookup_conn:
            lookups = _KeyedLookups() if keyed else self._load_lookups(conn, entity, stream)
            query = self._query(conn, entity, stream, window)
            for chunk in self._frames(conn, query, chunk_size, stream.primary_key):
                if keyed:  # on a connection of its own: a streaming cursor (MySQL) allows no other query
                    self._fetch_lookup_keys(lookup_conn, entity, stream, chunk, lookups)
                yield map_chunk(chunk, entity, stream, lookups, self.name, self.mapping)

    def extract_keys(self, entity: str, keys: list[str], chunk_size: int = 50_000) -> Iterator[pd.DataFrame]:
        """Yield canonical rows of `entity` whose primary key is one of `keys` (the source ids of held rows being
        re-checked), whatever their last change."""
        stream = self.mapping.streams[entity]
        if not keys:
            return
        with self._reading(stream) as conn:
            lookups = self._load_lookups(conn, entity, stream)
            query = self._query(conn, entity, stream, None)
            key_column = query.selected_columns[stream.primary_key]
            values = _typed_keys(keys, key_column)
            for start in range(0, len(values), 500):
                batch = query.where(key_column.in_(values[start:start + 500]))
                chunk = self._read_all(conn, batch)
                if len(chunk):
                    yield map_chunk(chunk, entity, stream, lookups, self.name, self.mapping)

    @contextmanager
    def _reading(self, stream: StreamMapping):
        """A connection for one extraction; losing it at any point (a read, or the rollback on closing a
        connection the server dropped) is a transient error."""
        try:
            with self._connect() as conn:
                yield conn
        except (OperationalError, pd.errors.DatabaseError) as e:  # pandas wraps driver errors
            raise TransientError(f"source {self.name!r}: reading {stream.table!r} failed: {e}") from None

    def _connect(self):
        try:
            # A server-side cursor where the driver has one: chunks are read as they are mapped, not all at once.
            return self.engine.connect().execution_options(stream_results=True)
        except OperationalError as e:
            message = str(e.orig).lower()
            if any(word in message for word in ("password", "authentication", "access denied", "role")):
                raise ConfigError(f"source {self.name!r}: the database refused the credentials of its connection") from None
            if "does not exist" in message or "unknown database" in message:
                raise ConfigError(f"source {self.name!r}: the database of its connection does not exist") from None
            raise TransientError(f"source {self.name!r}: cannot connect to the database: {e.orig}") from None
        except SQLAlchemyError as e:
            raise ConfigError(f"source {self.name!r}: cannot use the database: {e}") from None

    def _query(self, conn, entity: str, stream: StreamMapping, window: Window | None):
        where = f"streams.{entity}"
        table = self._table(conn, stream.table, where)
        own_updated = [] if stream.updated_from else stream.updated_columns
        names = [stream.primary_key, *own_updated, *stream.where, *stream.present, *stream.absent]
        if stream.exists:
            names.append(stream.exists.column)
        for field, spec in stream.fields.items():
            names += spec.columns + spec.other_columns
        columns = {}
        for name in dict.fromkeys(names):
            part = ("updated_at" if name in own_updated else "where" if name in stream.where
                    else "present" if name in stream.present else "absent" if name in stream.absent
                    else "exists" if stream.exists and name == stream.exists.column else "fields")
            columns[name] = self._column(table, name, f"{where}.{part}")
        updated = [columns[c] for c in own_updated]
        query = select(*columns.values())
        if stream.updated_from:  # the parent's last change, through an outer join on its key
            parent_spec, part = stream.updated_from, f"{where}.updated_from"
            parent = self._table(conn, parent_spec.table, part)
            link = self._column(table, parent_spec.column, part) == self._column(parent, parent_spec.key, part)
            updated = [self._column(parent, c, f"{where}.updated_at") for c in stream.updated_columns]
            clash = sorted(set(stream.updated_columns) & set(columns))
            if clash:
                raise ConfigError(f"{self.mapping_file}: {part}: the parent's {', '.join(clash)} would hide the "
                                  f"column of the same name in {stream.table!r}")
            query = query.add_columns(*(u.label(u.name) for u in updated)).select_from(table.outerjoin(parent, link))
        query = query.order_by(columns[stream.primary_key])
        for column, wanted in stream.where.items():
            query = query.where(columns[column].in_(wanted if isinstance(wanted, list) else [wanted]))
        for column in stream.present:
            query = query.where(columns[column].is_not(None))
        for column in stream.absent:
            query = query.where(columns[column].is_(None))
        if stream.exists:
            query = query.where(self._exists(conn, stream.exists, columns[stream.exists.column], f"{where}.exists"))
        if window is not None:
            changed = updated[0] if len(updated) == 1 else func.coalesce(*updated)
            if window.start is not None:
                query = query.where(changed >= self._bound(window.start, updated[0]))
            query = query.where(changed < self._bound(window.end, updated[0]))
        return query

    # --- reading rows -------------------------------------------------------------------------------
    def _frames(self, conn, query, chunk_size: int, key: str) -> Iterator[pd.DataFrame]:
        """The rows of `query`, chunk by chunk. From a SQLite file, through ADBC into Arrow: 1.75M order lines read in
        1.3 s instead of 5.1 s through SQLAlchemy's rows. SQLite lets a value of any type sit in any column; one of
        another type than its column's declared one stops the Arrow read, and the rest of the rows (those whose `key`
        was not read yet) come through SQLAlchemy, so that the mapping reports the value."""
        arrow = _arrow_read(conn, query)
        read: list[np.ndarray] = []
        if arrow is not None:
            try:
                for batch in bulk.sqlite_batches(*arrow, chunk_size, read_only=True):
                    frame = arrow_frame(batch, nullable_integers=False)
                    if len(frame):
                        read.append(frame[key].to_numpy())
                        yield frame
                return
            except _arrow_errors() as e:
                log.warning("source %r: reading through SQLAlchemy instead of Arrow: %s", self.name, e)
        done = pd.Index(np.concatenate(read)) if read else None
        for chunk in pd.read_sql(query, conn, chunksize=chunk_size):
            yield chunk if done is None else chunk[~chunk[key].isin(done)]

    def _read_all(self, conn, query) -> pd.DataFrame:
        """All the rows of `query` at once (a lookup table, a batch of keys), as `_frames` reads them."""
        arrow = _arrow_read(conn, query)
        if arrow is not None:
            try:
                parts = [arrow_frame(batch, nullable_integers=False)
                         for batch in bulk.sqlite_batches(*arrow, 200_000, read_only=True)]
                return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            except _arrow_errors() as e:
                log.warning("source %r: reading through SQLAlchemy instead of Arrow: %s", self.name, e)
        return pd.read_sql(query, conn)

    def _exists(self, conn, spec, column, where: str):
        """EXISTS (a row of spec.table whose spec.key is the row's column and whose columns hold spec.where)."""
        other = self._table(conn, spec.table, where)
        match = select(literal(1)).select_from(other).where(self._column(other, spec.key, where) == column)
        for name, wanted in spec.where.items():
            match = match.where(self._column(other, name, where).in_(wanted if isinstance(wanted, list) else [wanted]))
        return match.exists()

    def _bound(self, moment: datetime, column):
        """A window bound in the source's own time zone, as text where the column stores text."""
        local = pd.Timestamp(moment).tz_convert(self.mapping.source_timezone).tz_localize(None).to_pydatetime()
        if isinstance(column.type, (String, NullType)):
            return local.strftime("%Y-%m-%d %H:%M:%S")
        return local

    def _load_lookups(self, conn, entity: str, stream: StreamMapping) -> dict[tuple, pd.Series]:
        """Each lookup table becomes a Series key → value, read once per extraction."""
        out = {}
        for field, spec in stream.fields.items():
            for lookup in spec.lookups:
                ident = lookup_id(lookup)
                if ident not in out:
                    out[ident] = lookup_series(self._lookup_rows(conn, lookup,
                                                                 f"streams.{entity}.fields.{field}.lookup"))
        return out

    def _fetch_lookup_keys(self, conn, entity: str, stream: StreamMapping, chunk: pd.DataFrame,
                           lookups: "_KeyedLookups") -> None:
        """Add to `lookups` the rows this chunk's values point to (each chain step from the previous step's values),
        reading each key once per extraction."""
        for field, spec in stream.fields.items():
            values = _first_non_null(chunk, spec.columns) if spec.lookups else None
            for lookup in spec.lookups:
                ident = lookup_id(lookup)
                table = lookups.setdefault(ident, {})
                wanted = set(_text(values).dropna()) - table.keys() - lookups.missing.setdefault(ident, set())
                if wanted:
                    found = self._lookup_rows(conn, lookup, f"streams.{entity}.fields.{field}.lookup", sorted(wanted))
                    table.update(found)
                    lookups.missing[ident] |= wanted - found.keys()
                text = _text(values)  # the next step's keys, as connectors.transform computes them
                values = text.map(table)
                if lookup.keep_unmatched:
                    values = values.where(values.notna(), text)

    def _lookup_rows(self, conn, lookup, where: str, keys: list[str] | None = None) -> dict:
        """key → value of a lookup table (the first row by primary key wins a key), all of it or only `keys`."""
        table = self._table(conn, lookup.table, where)
        cols = [self._column(table, c, where) for c in (lookup.key, lookup.value, *lookup.where)]
        order = [c for c in table.primary_key.columns] or [cols[0]]
        query = select(*cols).order_by(*order)
        if keys is None:
            frame = self._read_all(conn, query)
        else:
            typed = _typed_keys(keys, cols[0])
            parts = [self._read_all(conn, query.where(cols[0].in_(typed[i:i + 500]))) for i in range(0, len(typed), 500)]
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[c.name for c in cols])
        for column, wanted in lookup.where.items():
            wanted = wanted if isinstance(wanted, list) else [wanted]
            frame = frame[_text(frame[column]).isin([_as_text(w) for w in wanted])]
        # Keys as the documents' values are compared: text, integral floats without ".0" (an id column with a
        # null reads as floats).
        text = _text(frame[lookup.key])
        frame = frame.assign(_key=text)[text.notna()].drop_duplicates(subset=["_key"], keep="first")
        return dict(zip(frame["_key"], frame[lookup.value]))


class _KeyedLookups(dict):
    """lookup id → {key: value} filled chunk by chunk; `missing` remembers keys a table does not hold."""

    def __init__(self):
        super().__init__()
        self.missing: dict[tuple, set] = {}


def _arrow_read(conn, query) -> tuple[str, str, str] | None:
    """(database file, SQL, placeholder row) to read `query` through ADBC, or None: not a SQLite file, a column type
    without a placeholder, or a bound value without a literal form."""
    database, first_row = bulk.sqlite_file(conn.engine.url), bulk.typed_first_row(query)
    if database is None or first_row is None:
        return None
    try:
        return database, str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})), first_row
    except (SQLAlchemyError, NotImplementedError, TypeError, ValueError):
        return None


def _arrow_errors() -> tuple[type[Exception], ...]:
    """What stops a read through ADBC, after which SQLAlchemy reads the rows: a value of another type than its column's
    (OSError), or the driver failing to open or read the file, which SQLAlchemy then reports and classifies."""
    from adbc_driver_manager import Error

    return OSError, Error


@contextmanager
def _nothing():
    yield None


def _typed_keys(keys: list[str], column) -> list:
    """Source ids (text, as staged) in the key column's own type, so that the database can use its index."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return list(keys)
    if python_type is int:
        return [int(k) for k in keys if str(k).lstrip("-").isdigit()]
    return list(keys)
