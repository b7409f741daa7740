"""Apply a stream mapping to a chunk of source rows: vectorised, one pass per field."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from connectors.mapping import FieldSpec, SourceMapping, StreamMapping, _as_text, lookup_id
from erp2crm.canonical import BOOLEAN, DATE, ENTITIES, FLOAT, INTEGER, PARSE_ERRORS, TIMESTAMP
from hub.frames import FALSE_TEXT, TRUE_TEXT, coerce

# What a value that cannot be read as its field's kind is called; quality quarantines by these codes.
_PARSE_CODES = {FLOAT: ("not_a_number", "is not a finite number"), INTEGER: ("not_a_number", "is not a whole number"),
                DATE: ("invalid_date", "is not a valid date"), TIMESTAMP: ("invalid_date", "is not a valid timestamp"),
                BOOLEAN: ("not_a_boolean", "is not a yes/no value")}
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})\s*$"


def _integers_as_text(values: np.ndarray) -> np.ndarray:
    """Integers as an object array of their decimal text, through Arrow's cast: 5x faster than NumPy's fixed-width
    unicode array (1M ids: 0.07 s against 0.42 s), and ids are on every row of every chunk."""
    return pa.array(values).cast(pa.string()).to_numpy(zero_copy_only=False)


def _text(series: pd.Series) -> pd.Series:
    """Values as text for comparing keys and codes (object dtype, None for nulls): integers and integral
    floats without ".0" (an id column with a null reads as floats), booleans as 1/0. Vectorised for the
    numeric columns that keys usually are; other columns go value by value."""
    kind = series.dtype.kind
    if kind in "iu" and not series.hasnans:
        return pd.Series(_integers_as_text(series.to_numpy()), index=series.index, dtype=object)
    if kind in "iuf":  # floats, and nullable integers holding nulls
        values = series.to_numpy(dtype=float, na_value=np.nan)
        out = np.full(len(values), None, dtype=object)
        integral = (np.abs(values) < 2.0 ** 53) & (values == np.round(values))  # exact in int64; NaN fails both
        out[integral] = _integers_as_text(values[integral].astype(np.int64))
        rest = ~integral & ~np.isnan(values)
        out[rest] = [_as_text(v) for v in values[rest].tolist()]
        return pd.Series(out, index=series.index, dtype=object)
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):  # already text
        return pd.Series(series.to_numpy(dtype=object, na_value=None), index=series.index, dtype=object)
    return pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else _as_text(v)
                      for v in series.tolist()], index=series.index, dtype=object)


def lookup_series(table: dict) -> pd.Series:
    """A lookup table (key → value) as the Series that `Series.map(dict)` builds from a dict on every call: built
    once per extraction instead of once per chunk (a million-row lookup took 0.75 s per 50,000-row chunk, 0.08 s
    as a Series whose hash table is built once)."""
    if not table:
        return pd.Series(table, dtype=np.float64)
    return pd.Series(table.values(), index=pd.Index(table.keys(), tupleize_cols=False))


def _first_non_null(chunk: pd.DataFrame, columns: list[str]) -> pd.Series:
    same_kind = len({chunk[c].dtype for c in columns}) == 1  # e.g. write_date and create_date: no object cast
    out = chunk[columns[0]] if same_kind else chunk[columns[0]].astype(object)
    for column in columns[1:]:
        out = out.where(out.notna(), chunk[column])
    return out


def _apply(spec: FieldSpec, chunk: pd.DataFrame, lookups: dict) -> pd.Series:
    if not spec.columns:
        return pd.Series([spec.default] * len(chunk), index=chunk.index, dtype=object)
    values = _first_non_null(chunk, spec.columns)
    for lookup in spec.lookups:
        text = _text(values)
        values = text.map(lookups[lookup_id(lookup)])
        if lookup.keep_unmatched:
            values = values.where(values.notna(), text)
    if spec.values is not None:
        text = _text(values)
        mapped = text.map(spec.values)
        fallback = text if spec.otherwise is None else pd.Series(spec.otherwise, index=text.index, dtype=object)
        values = mapped.where(text.isna() | text.isin(list(spec.values)), fallback).where(text.notna(), None)
    if spec.transform:
        values = _TRANSFORMS[spec.transform](values)
    if spec.divide_by:
        values = _arithmetic(values, lambda numbers: numbers / spec.divide_by)
    if spec.times:
        # Rounded to 6 decimals: the product of two decimals should not carry binary noise (89.89000000000001).
        values = _arithmetic(values, lambda numbers: (numbers * pd.to_numeric(chunk[spec.times], errors="coerce")).round(6))
    if spec.negate_when:
        flags = _text(chunk[spec.negate_when.column]).isin([_as_text(v) for v in spec.negate_when.equals])
        values = _arithmetic(values, lambda numbers: numbers.where(~flags, -numbers.abs()))
    if spec.default is not None:
        values = values.astype(object).where(pd.notna(values), spec.default)
    for rule in spec.when:
        hit = _text(chunk[rule.column]).isin([_as_text(v) for v in rule.equals])
        values = values.astype(object).where(~hit, rule.value)
    return values


def _arithmetic(values: pd.Series, compute) -> pd.Series:
    """`compute` on the values as numbers; a value that is not a number stays as it was sent, so that the mapping
    reports it (parse_errors) instead of passing on a silent null."""
    numbers = pd.to_numeric(values, errors="coerce")
    result = compute(numbers)
    unreadable = (values.notna() & numbers.isna()).to_numpy()
    if unreadable.any():
        result = result.astype(object)
        result[unreadable] = values[unreadable]
    return result


def _strip(s):
    return s.map(lambda v: v.strip() if isinstance(v, str) else v)


_TRANSFORMS = {
    "strip": _strip,
    "lower": lambda s: _strip(s).map(lambda v: v.lower() if isinstance(v, str) else v),
    "upper": lambda s: _strip(s).map(lambda v: v.upper() if isinstance(v, str) else v),
    # An unrecognised value passes through unchanged, so that it is reported as not a yes/no value.
    "boolean": lambda s: _text(s).map(lambda v: _yes_no(v, True)),
    "not": lambda s: _text(s).map(lambda v: _yes_no(v, False)),
    "number": lambda s: pd.to_numeric(s, errors="coerce"),
}


def _yes_no(value, when_true: bool):
    if value is None:
        return None
    key = value.strip().lower()
    if key in TRUE_TEXT:
        return when_true
    if key in FALSE_TEXT:
        return not when_true
    return value


def _to_utc(series: pd.Series, tz: str) -> pd.Series:
    """Timestamps as UTC: values with their own UTC offset keep it, naive ones are in the source's zone `tz`."""
    try:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    except ValueError:  # naive and offset-carrying values (or several offsets) in one column
        text = _text(series).fillna("")
        aware = text.str.contains(_OFFSET, regex=True)
        parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us, UTC]")
        parsed[aware] = pd.to_datetime(series[aware], errors="coerce", format="mixed", utc=True)
        parsed[~aware] = _to_utc(series[~aware], tz)
        return parsed
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return parsed.dt.tz_convert("UTC")


def map_chunk(chunk: pd.DataFrame, entity: str, stream: StreamMapping, lookups: dict,
              source_system: str, mapping: SourceMapping) -> pd.DataFrame:
    """Source rows → canonical rows of `entity` (coerced to the canonical kinds, entity rules applied)."""
    fields = ENTITIES[entity].fields
    out = pd.DataFrame(index=chunk.index)
    out["source_system"] = source_system
    out["source_id"] = _text(chunk[stream.primary_key])
    raw = {name: _apply(spec, chunk, lookups) for name, spec in stream.fields.items()}
    raw["updated_at"] = _first_non_null(chunk, stream.updated_columns)
    for name, values in raw.items():
        out[name] = _to_utc(values, mapping.source_timezone) if fields[name] == TIMESTAMP else values
    for name, kind in fields.items():
        if kind == DATE and name in out:
            out[name] = pd.to_datetime(out[name], errors="coerce", format="mixed")
    if "customer_source_id" in out:
        out["customer_source_id"] = _text(out["customer_source_id"])
    canonical = coerce(out, fields)
    canonical[PARSE_ERRORS] = parse_errors(raw, canonical, fields, mapping.timestamps_with_offset)
    return finalize(entity, canonical).reset_index(drop=True)


def parse_errors(raw: dict[str, pd.Series], canonical: pd.DataFrame, fields: dict[str, str],
                 offset_required: bool = False) -> pd.Series:
    """Per row, '; '-joined "[code] field 'value' is not ..." for every value the source sent that its canonical
    kind cannot hold (null after coercion, or not finite), so that nothing is silently turned into a null.
    Vectorised: messages are only built for the (few) failing rows."""
    errors = pd.Series(None, index=canonical.index, dtype=object)
    for name, values in raw.items():
        kind = fields[name]
        if kind not in _PARSE_CODES:
            continue
        sent = values.notna().to_numpy()
        bad = sent & canonical[name].isna().to_numpy()
        if kind == FLOAT:
            bad |= sent & np.isinf(canonical[name].to_numpy(dtype=float, na_value=np.nan))
        if bad.any():  # blank text is "no value", not a bad one (a loop over the few failing rows only)
            positions = np.flatnonzero(bad)
            blank = [isinstance(v, str) and not v.strip() for v in values.iloc[positions]]
            bad[positions[np.asarray(blank, dtype=bool)]] = False
        code, what = _PARSE_CODES[kind]
        messages = [(bad, code, what)]
        if kind == TIMESTAMP and offset_required:
            text = _text(values).astype(object)
            has_offset = text.where(text.notna(), "").astype(str).str.contains(_OFFSET, regex=True).to_numpy()
            is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
            naive = sent & ~bad & is_text & ~has_offset
            messages.append((naive, "missing_utc_offset", "has no UTC offset (this source must send one)"))
        for mask, code, what in messages:
            if not mask.any():
                continue
            shown = pd.Series([_as_text(v)[:40] for v in values[mask]], index=values.index[mask], dtype=object)
            text = "[" + code + "] " + name + " '" + shown + "' " + what
            current = errors[mask]
            errors[mask] = text.where(current.isna(), current + "; " + text)
    return errors


def finalize(entity: str, df: pd.DataFrame) -> pd.DataFrame:
    """Entity rules every source shares, so that mappings stay declarative."""
    if entity in ("customer_record", "contact"):
        df["is_active"] = df["is_active"].where(df["is_active"].notna(), True)
        person = (df["given_name"].fillna("") + " " + df["family_name"].fillna("")).str.strip()
        fallback = person.where(person != "", None)
        if entity == "customer_record":
            fallback = df["company_name"].where(df["company_name"].notna(), fallback)
        df["name"] = df["name"].where(df["name"].notna() & (df["name"].astype(str).str.strip() != ""), fallback)
    elif entity == "invoice":
        # Without an explicit kind, a negative total is a credit note (Tryton's convention).
        implied = df["total_amount"].lt(0).map({True: "credit_note", False: "invoice"})
        df["kind"] = df["kind"].where(df["kind"].notna(), implied)
        settled = df["status"].isin(["paid", "cancelled", "draft"])
        derived = df["total_amount"].where(~settled, 0.0)
        df["outstanding_amount"] = df["outstanding_amount"].where(df["outstanding_amount"].notna(), derived)
        df["paid_amount"] = df["paid_amount"].where(df["paid_amount"].notna(),
                                                    (df["total_amount"] - df["outstanding_amount"]).where(~df["status"].isin(["cancelled", "draft"]), 0.0))
    elif entity == "service_ticket":
        df["is_complaint"] = df["is_complaint"].where(df["is_complaint"].notna(), False)
    return df
