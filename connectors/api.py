"""Base class for sources read through an ERP's API, driven by the same mapping files as the SQL source.

A stream's `table` is the API's object (model, DocType), its columns are the API's field names. Paging
(keyset by default; offset, page number or cursor: connectors/paging.py), windows, lookups and the mapping
to canonical rows live here, once; a subclass says how to read one page (`_page`) and how to count (`_count`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd

from connectors.mapping import SourceMapping, StreamMapping, _as_text, lookup_id
from connectors.paging import FIRST, Paging, following
from connectors.transform import lookup_series, map_chunk
from connectors.window import Window


@dataclass(frozen=True)
class Query:
    """What to read from one API object: these fields, of the records matching every filter."""
    table: str
    fields: tuple[str, ...]
    primary_key: str
    where: dict[str, list] = field(default_factory=dict)  # field → any of these values
    present: tuple[str, ...] = ()  # fields that must hold a value
    window: Window | None = None
    updated: tuple[str, ...] = ()  # the first non-null of these is the record's last change
    keys: tuple | None = None  # only these primary keys
    absent: tuple[str, ...] = ()  # fields that must hold no value


class ApiSource:
    page_size = 500
    paging: Paging = "keyset"  # what `after` means in _page (connectors/paging.py)
    next_cursor: Any = None  # set by _page under cursor paging: the API's next token or URL, None at the end
    lookup_key = "id"  # what lookup objects are paged on: the API's record id (ERPNext: name)
    keys_per_call = 500  # primary keys per request when rows are read by key

    def __init__(self, name: str, mapping: SourceMapping, mapping_file: str = ""):
        self.name, self.mapping = name, mapping
        self.mapping_file = mapping_file or f"mappings/{mapping.source}.yaml"

    # --- what a subclass provides ---------------------------------------------------------------------
    def _page(self, query: Query, after: Any, limit: int) -> list[dict]:
        """Up to `limit` records of `query`, as plain Python values keyed by the query's field names. Under
        keyset paging (the default), those whose primary key is greater than `after` (None: from the first),
        in primary-key order; under the other strategies `after` is an offset, a page number or a cursor."""
        raise NotImplementedError

    def _count(self, query: Query) -> int:
        raise NotImplementedError

    # --- the source interface the pipeline uses ------------------------------------------------------
    def check(self) -> dict[str, int]:
        """Every object and field of the mapping read once (one record each), and each stream's records counted,
        so that a wrong name shows here rather than in the middle of a run."""
        counts = {}
        for entity, stream in self.mapping.streams.items():
            query = self._query(stream)
            for probe in [query, *(lookup_query for lookup_query, _ in self._lookup_queries(stream))]:
                self._page(probe, FIRST[self.paging], 1)
            counts[entity] = self._count(query)
        return counts

    def extract(self, entity: str, window: Window | None, chunk_size: int = 50_000) -> Iterator[pd.DataFrame]:
        stream = self.mapping.streams[entity]
        yield from self._mapped(entity, stream, self._query(stream, window=window), chunk_size)

    def extract_keys(self, entity: str, keys: list[str], chunk_size: int = 50_000) -> Iterator[pd.DataFrame]:
        if not keys:
            return
        stream = self.mapping.streams[entity]
        for start in range(0, len(keys), self.keys_per_call):
            batch = tuple(self._typed_key(k) for k in keys[start:start + self.keys_per_call])
            yield from self._mapped(entity, stream, self._query(stream, keys=batch), chunk_size)

    # --- shared machinery ------------------------------------------------------------------------------
    def _query(self, stream: StreamMapping, window: Window | None = None, keys: tuple | None = None) -> Query:
        names = [stream.primary_key, *stream.updated_columns]
        for spec in stream.fields.values():
            names += spec.columns + spec.other_columns
        names += [*stream.where, *stream.present, *stream.absent]
        return Query(stream.table, tuple(dict.fromkeys(names)), stream.primary_key, _where(stream.where),
                     tuple(stream.present), window, tuple(stream.updated_columns), keys, tuple(stream.absent))

    def _records(self, query: Query) -> Iterator[list[dict]]:
        """Every page of `query`, walked as `paging` says (connectors/paging.py)."""
        after = FIRST[self.paging]
        while True:
            self.next_cursor = None
            page = self._page(query, after, self.page_size)
            if page:
                yield page
            more, after = following(self.paging, after, page, query.primary_key, self.page_size, self.next_cursor)
            if not more:
                return

    def _mapped(self, entity: str, stream: StreamMapping, query: Query, chunk_size: int) -> Iterator[pd.DataFrame]:
        lookups = self._load_lookups(stream)
        rows: list[dict] = []
        for page in self._records(query):
            rows += page
            while len(rows) >= chunk_size:
                yield self._map(rows[:chunk_size], query, entity, stream, lookups)
                rows = rows[chunk_size:]
        if rows:
            yield self._map(rows, query, entity, stream, lookups)

    def _map(self, rows, query, entity, stream, lookups) -> pd.DataFrame:
        chunk = pd.DataFrame.from_records(rows, columns=list(query.fields))
        return map_chunk(chunk, entity, stream, lookups, self.name, self.mapping)

    def _lookup_queries(self, stream: StreamMapping) -> list[tuple[Query, list]]:
        """One query per lookup object (and key and condition) for all the values looked up in it."""
        groups: dict[tuple, list] = {}
        for spec in stream.fields.values():
            for lookup in spec.lookups:
                groups.setdefault((lookup.table, lookup.key, lookup_id(lookup)[3]), []).append(lookup)
        return [(Query(table, tuple(dict.fromkeys([self.lookup_key, key, *(lookup.value for lookup in lookups)])),
                       self.lookup_key, _where(lookups[0].where)), lookups)
                for (table, key, _), lookups in groups.items()]

    def _load_lookups(self, stream: StreamMapping) -> dict[tuple, pd.Series]:
        """Each lookup object read once per extraction, key → value; the first record (by its id) wins a key."""
        out: dict[tuple, pd.Series] = {}
        for query, lookups in self._lookup_queries(stream):
            key = lookups[0].key  # shared by the group
            tables: dict[tuple, dict] = {lookup_id(lookup): {} for lookup in lookups}
            for page in self._records(query):
                for record in page:
                    if record[key] is None:
                        continue
                    for lookup in lookups:
                        tables[lookup_id(lookup)].setdefault(_as_text(record[key]), record[lookup.value])
            out.update({ident: lookup_series(table) for ident, table in tables.items()})
        return out

    @staticmethod
    def _typed_key(key: str):
        """Staged source ids are text; most APIs key records by integers (override where keys are text)."""
        return int(key) if str(key).lstrip("-").isdigit() else key


def _where(where: dict) -> dict[str, list]:
    return {column: wanted if isinstance(wanted, list) else [wanted] for column, wanted in where.items()}
