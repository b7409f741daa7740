"""Currency conversion into the reporting currency.

Rates file (CSV, ``#`` starts a comment line): ``currency, rate_date, rate`` where ``rate`` is the
number of reporting-currency units for 1 unit of ``currency`` valid from ``rate_date`` (YYYY-MM-DD).

Conversion of a document dated D (calendar date; for a timestamp, its UTC date) in currency X:

    rate(X, D) = 1                                   if X == reporting currency
               = rate of the latest row with currency X and rate_date <= D   otherwise
    value      = round(amount * rate(X, D), 2)

When X has no row dated on or before D (or X is missing) the document is *not converted*: it is
reported in ``EnrichmentResult.unconverted`` with reason ``missing_fx_rate`` and left out of every
money value. A later rate is never used for an earlier document and no rate is guessed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MISSING_FX_RATE = "missing_fx_rate"
FX_COLUMNS = ["currency", "rate_date", "rate"]


def load_fx_rates(path: Path) -> pd.DataFrame:
    """Load and validate an FX rates CSV; returns columns currency (str), rate_date (datetime64[ns]),
    rate (float64), sorted by currency and rate_date.

    Raises ``ValueError`` for missing columns, unparsable dates, non-positive or non-numeric rates and
    duplicated (currency, rate_date) rows.
    """
    raw = pd.read_csv(path, comment="#", dtype={"currency": str, "rate_date": str}, skipinitialspace=True)
    missing = [c for c in FX_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {FX_COLUMNS}")
    currency = raw["currency"].str.strip().str.upper()
    if currency.isna().any() or not currency.str.fullmatch(r"[A-Z]{3}").all():
        raise ValueError(f"{path}: currency must be a 3-letter ISO 4217 code")
    try:
        rate_date = pd.to_datetime(raw["rate_date"].str.strip(), format="%Y-%m-%d")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: rate_date must be YYYY-MM-DD ({exc})") from None
    rate = pd.to_numeric(raw["rate"], errors="coerce")
    if rate.isna().any() or (rate <= 0).any():
        raise ValueError(f"{path}: rate must be a positive number on every row")
    out = pd.DataFrame({"currency": currency, "rate_date": rate_date.astype("datetime64[ns]"),
                        "rate": rate.astype("float64")})
    dup = out.duplicated(["currency", "rate_date"])
    if dup.any():
        first = out.loc[dup].iloc[0]
        raise ValueError(f"{path}: duplicated rate for {first['currency']} on {first['rate_date']:%Y-%m-%d}")
    return out.sort_values(["currency", "rate_date"], ignore_index=True)


def rates_for(currency: pd.Series, doc_date: pd.Series, fx_rates: pd.DataFrame,
              reporting_currency: str) -> pd.Series:
    """Rate into the reporting currency for each (currency, date) pair; NaN where none applies.

    ``doc_date`` is a naive datetime64 calendar date. Vectorised with ``pd.merge_asof`` (backward,
    by currency); the result is aligned to ``currency.index``.
    """
    rate = pd.Series(np.nan, index=currency.index, dtype="float64")
    rate[currency.eq(reporting_currency).to_numpy()] = 1.0
    need = currency.notna() & doc_date.notna() & currency.ne(reporting_currency)
    if not need.any() or fx_rates.empty:
        return rate
    left = pd.DataFrame({
        "_pos": np.flatnonzero(need.to_numpy()),
        "currency": currency[need].astype(str).to_numpy(),
        "_date": doc_date[need].astype("datetime64[ns]").to_numpy(),
    }).sort_values("_date", kind="stable")
    right = fx_rates.loc[fx_rates["currency"].ne(reporting_currency), FX_COLUMNS].copy()
    right["currency"] = right["currency"].astype(str)
    right["rate_date"] = right["rate_date"].astype("datetime64[ns]")
    right = right.sort_values("rate_date", kind="stable")
    matched = pd.merge_asof(left, right, left_on="_date", right_on="rate_date", by="currency",
                            direction="backward", allow_exact_matches=True)
    values = rate.to_numpy(copy=True)
    values[matched["_pos"].to_numpy()] = matched["rate"].to_numpy(dtype="float64")
    return pd.Series(values, index=currency.index, dtype="float64")
