"""Coerce DataFrames to the canonical kinds, on the way into and out of SQL.

In memory: timestamps are tz-aware UTC, dates are naive midnight datetimes, booleans are object
(True/False/None). In SQL: timestamps are naive UTC, dates are dates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from erp2crm.canonical import BOOLEAN, DATE, FLOAT, INTEGER, STRING, TIMESTAMP


TRUE_TEXT = frozenset({"1", "true", "t", "yes", "y"})
FALSE_TEXT = frozenset({"0", "false", "f", "no", "n", ""})


def _to_bool(value):
    """True/False/None; text that is neither yes nor no becomes None (the mapping reports it as a parse error)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if isinstance(value, str):
        key = value.strip().lower()
        return True if key in TRUE_TEXT else False if key in FALSE_TEXT else None
    return bool(value)


def _strings(col: pd.Series) -> pd.Series:
    # Built as object on purpose: pandas 3 re-infers a string dtype from map(), which turns None into NaN.
    values = col.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # text already: no loop
        if col.dtype == object:
            array = col.to_numpy()
            missing = pd.isna(array)
            if not missing.any() or np.equal(array[missing], None).all():  # canonical already: no copy
                return col
        return pd.Series(values.where(values.notna(), None).to_numpy(dtype=object), index=col.index, dtype=object)
    present = values.notna().to_numpy()
    out = pd.Series([None] * len(col), index=col.index, dtype=object)
    out[present] = [v if isinstance(v, str) else str(v) for v in values[present]]
    return out


def arrow_text(column: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow text as an object array (None for null), the form the hub's tables read as, with one Python string per
    distinct value: a source system or category repeated over 5M rows is one object, not 5M. (Arrow's conversion
    to a pandas string dtype, then to objects, took 35 s for 5M order lines instead of 6.)"""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    distinct = np.append(encoded.dictionary.to_numpy(zero_copy_only=False), None).astype(object)
    codes = encoded.indices.fill_null(len(distinct) - 1).to_numpy()
    return pd.Series(distinct[codes], dtype=object)


def arrow_frame(data: pa.Table | pa.RecordBatch, nullable_integers: bool = True) -> pd.DataFrame:
    """An Arrow table's columns as a frame, one block per column (no 2-D copy): text by `arrow_text`, integers as
    Int64 (exact past 2**53, where float64 is not), everything else as Arrow converts it. Without
    `nullable_integers`, integers as `pd.read_sql` gives them: int64, or float64 when a value is missing."""
    raw = pd.DataFrame(index=pd.RangeIndex(data.num_rows))
    for name, column in zip(data.column_names, data.columns):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            raw[name] = arrow_text(column)
        elif pa.types.is_integer(column.type) and nullable_integers:
            raw[name] = column.to_pandas(types_mapper={column.type: pd.Int64Dtype()}.get)
        else:
            raw[name] = column.to_pandas()
    return raw


def coerce(df: pd.DataFrame, fields: dict[str, str], stored: bool = False) -> pd.DataFrame:
    """Return a frame with exactly `fields`, in order, each coerced to its kind (missing columns are null).
    `stored`: the values come from the hub, whose timestamps and dates are ISO text or datetime objects, parsed by
    the vectorised ISO 8601 path instead of guessing each value's format."""
    out = pd.DataFrame(index=df.index)
    when = "ISO8601" if stored else "mixed"
    for name, kind in fields.items():
        col = df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)
        if kind == TIMESTAMP:
            out[name] = pd.to_datetime(col, utc=True, errors="coerce", format=when)
        elif kind == DATE:
            out[name] = pd.to_datetime(col, errors="coerce", format=when, utc=True).dt.tz_convert(None).dt.normalize()
        elif kind == FLOAT:
            out[name] = pd.to_numeric(col, errors="coerce").astype(float)
        elif kind == INTEGER:
            out[name] = pd.to_numeric(col, errors="coerce").astype("Int64")
        elif kind == BOOLEAN:
            out[name] = col.astype(object).map(_to_bool).astype(object)  # objects: a nullable Int64 maps NA too
        elif kind == STRING:
            out[name] = _strings(col)
        else:  # pragma: no cover - the canonical model has no other kinds
            raise ValueError(f"unknown field kind {kind!r} for {name}")
    return out


def for_sql(df: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    """Prepare a coerced frame for insertion: naive UTC timestamps, date objects, None for missing."""
    out = df.copy()
    for name, kind in fields.items():
        if name not in out.columns:
            continue
        if kind == TIMESTAMP:
            out[name] = out[name].dt.tz_convert("UTC").dt.tz_localize(None).astype(object).where(out[name].notna(), None)
        elif kind == DATE:
            out[name] = out[name].dt.date.astype(object).where(out[name].notna(), None)
    return out.astype(object).where(out.notna(), None)
