"""`erp2crm reconcile --input records.csv --output links.csv`: the DAG's identity resolution over a file.

Reads canonical customer records (any subset of the canonical columns; unknown columns are ignored) and
writes one row per input record: source_system, source_id, customer_id, match_band, match_score.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from erp2crm.canonical import CUSTOMER_RECORD
from erp2crm.errors import DataError
from reconcile.resolve import Previous, ReconcileResult, resolve
from reconcile.settings import ReconcileSettings

LINK_COLUMNS = ["source_system", "source_id", "customer_id", "match_band", "match_score"]


def read_records(path: Path, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Canonical customer records from a CSV file; `keep` names further columns to carry along."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("source_system", "source_id", *keep) if c not in raw]
    if missing:
        why = "; every record needs its source_system and source_id" if set(missing) - set(keep) else ""
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}{why}")
    records = raw[[c for c in (*CUSTOMER_RECORD.fields, *keep) if c in raw]].replace({"": None})
    keyless = records["source_system"].isna() | records["source_id"].isna()
    if keyless.any():
        rows = ", ".join(str(i + 2) for i in records.index[keyless][:5])
        raise DataError(f"{path}: {keyless.sum()} record(s) without source_system or source_id (line {rows})")
    dupes = records.duplicated(["source_system", "source_id"], keep=False)
    if dupes.any():
        first = records[dupes].iloc[0]
        raise DataError(f"{path}: {dupes.sum()} rows share a (source_system, source_id), e.g. "
                        f"{first['source_system']}:{first['source_id']}; each record must appear once")
    for field in CUSTOMER_RECORD.fields:
        if field not in records:
            records[field] = None
    records["updated_at"] = pd.to_datetime(records["updated_at"], utc=True, errors="coerce", format="mixed")
    return records


def links(result: ReconcileResult) -> pd.DataFrame:
    return result.crosswalk[LINK_COLUMNS]


def reconcile_file(input_path: Path, output_path: Path, settings: ReconcileSettings,
                   previous: Previous | None = None) -> ReconcileResult:
    result = resolve(read_records(input_path), previous, settings)
    links(result).to_csv(output_path, index=False)
    return result
