"""Apply a stream mapping to a chunk of source rows: vectorised, one pass per field."""
from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.mapping import FieldSpec, SourceMapping, StreamMapping, _as_text, lookup_id
from erp2crm.canonical import DATE, ENTITIES, TIMESTAMP
from hub.frames import coerce

_TRUE = {"1", "true", "t", "yes", "y"}


def _text(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else _as_text(v))


def _first_non_null(chunk: pd.DataFrame, columns: list[str]) -> pd.Series:
    out = chunk[columns[0]].astype(object)
    for column in columns[1:]:
        out = out.where(out.notna(), chunk[column])
    return out


def _apply(spec: FieldSpec, chunk: pd.DataFrame, lookups: dict) -> pd.Series:
    if not spec.columns:
        return pd.Series([spec.default] * len(chunk), index=chunk.index, dtype=object)
    values = _first_non_null(chunk, spec.columns)
    for lookup in spec.lookups:
        table = lookups[lookup_id(lookup)]
        values = _text(values).map(table)
    if spec.values is not None:
        text = _text(values)
        mapped = text.map(spec.values)
        fallback = text if spec.otherwise is None else pd.Series(spec.otherwise, index=text.index, dtype=object)
        values = mapped.where(text.isna() | text.isin(list(spec.values)), fallback).where(text.notna(), None)
    if spec.transform:
        values = _TRANSFORMS[spec.transform](values)
    if spec.divide_by:
        values = pd.to_numeric(values, errors="coerce") / spec.divide_by
    if spec.negate_when:
        flags = _text(chunk[spec.negate_when.column]).isin([_as_text(v) for v in spec.negate_when.equals])
        numbers = pd.to_numeric(values, errors="coerce")
        values = numbers.where(~flags, -numbers.abs())
    if spec.default is not None:
        values = values.astype(object).where(pd.notna(values), spec.default)
    for rule in spec.when:
        hit = _text(chunk[rule.column]).isin([_as_text(v) for v in rule.equals])
        values = values.astype(object).where(~hit, rule.value)
    return values


def _strip(s):
    return s.map(lambda v: v.strip() if isinstance(v, str) else v)


_TRANSFORMS = {
    "strip": _strip,
    "lower": lambda s: _strip(s).map(lambda v: v.lower() if isinstance(v, str) else v),
    "upper": lambda s: _strip(s).map(lambda v: v.upper() if isinstance(v, str) else v),
    "boolean": lambda s: _text(s).map(lambda v: None if v is None else v.strip().lower() in _TRUE),
    "not": lambda s: _text(s).map(lambda v: None if v is None else v.strip().lower() not in _TRUE),
    "number": lambda s: pd.to_numeric(s, errors="coerce"),
}


def _to_utc(series: pd.Series, tz: str) -> pd.Series:
    parsed = pd.to_datetime(series, errors="coerce", format="mixed")
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
    for name, spec in stream.fields.items():
        values = _apply(spec, chunk, lookups)
        out[name] = _to_utc(values, mapping.source_timezone) if fields[name] == TIMESTAMP else values
    out["updated_at"] = _to_utc(_first_non_null(chunk, stream.updated_columns), mapping.source_timezone)
    for name, kind in fields.items():
        if kind == DATE and name in out:
            out[name] = pd.to_datetime(out[name], errors="coerce", format="mixed")
    if "customer_source_id" in out:
        out["customer_source_id"] = _text(out["customer_source_id"])
    return finalize(entity, coerce(out, fields)).reset_index(drop=True)


def finalize(entity: str, df: pd.DataFrame) -> pd.DataFrame:
    """Entity rules every source shares, so that mappings stay declarative."""
    if entity == "customer_record":
        df["is_active"] = df["is_active"].where(df["is_active"].notna(), True)
        person = (df["given_name"].fillna("") + " " + df["family_name"].fillna("")).str.strip()
        fallback = df["company_name"].where(df["company_name"].notna(), person.where(person != "", None))
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
