"""Credit analysis from invoices (converted, non-cancelled, non-draft, dated at or before as_of).

Open receivables are invoices (kind ``invoice``) with status ``open``; open credit notes are not
netted against them. ``outstanding`` is ``outstanding_amount`` (when null: total_amount -
paid_amount), converted at the invoice-date rate and rounded to 2 decimals. ``as_of_date`` is the
UTC calendar date of as_of.

    open_receivables = sum(outstanding of open invoices)
    overdue_amount   = sum(outstanding of open invoices with due_date < as_of_date)
    overdue_share    = overdue_amount / open_receivables        (0 when open_receivables == 0)
    avg_days_overdue = mean(as_of_date - due_date, in days) over overdue open invoices (null if none)
    dso_days         = open_receivables / (revenue_12m / 365)   (null when revenue_12m <= 0)
    credit_class     = A  if overdue_amount == 0
                       B  if overdue_share <= credit_b_max_overdue_share   (default 0.25)
                       C  if overdue_share <= credit_c_max_overdue_share   (default 0.5)
                       D  otherwise

Payment behaviour, from posted payments dated at or before as_of (``enrich.ledger``), linked to their
invoice by (source_system, invoice_source_id). A *settled* invoice is one with kind ``invoice``, status
``paid`` and at least such a payment; it was settled on the date of its last payment.

    days_paid_late      = max(0, settled date - due_date) in days, per settled invoice
    avg_days_paid_late  = mean(days_paid_late) over the customer's settled invoices   (null if none)
    paid_on_time_share  = share of settled invoices with days_paid_late == 0          (null if none)
    payments_received   = sum(value of converted payments)                           (0 if none)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .settings import EnrichmentSettings

DAYS_PER_YEAR = 365.0
CREDIT_COLUMNS = ["open_receivables", "overdue_amount", "avg_days_overdue"]
PAYMENT_COLUMNS = ["avg_days_paid_late", "paid_on_time_share", "payments_received"]


def receivables(invoices: pd.DataFrame, as_of_date: pd.Timestamp) -> pd.DataFrame:
    """open_receivables, overdue_amount, avg_days_overdue per customer (indexed by customer position ``cust``)."""
    open_inv = invoices.loc[invoices["status"].eq("open") & invoices["kind"].eq("invoice")]
    overdue = open_inv["due_date"] < as_of_date
    parts = pd.DataFrame({
        "cust": open_inv["cust"],
        "open_receivables": open_inv["outstanding_value"].fillna(0.0),
        "overdue_amount": open_inv["outstanding_value"].fillna(0.0).where(overdue, 0.0),
        "days_overdue": (as_of_date - open_inv["due_date"]).dt.days.where(overdue).astype("float64"),
    })
    out = parts.groupby("cust", sort=False).agg(
        open_receivables=("open_receivables", "sum"), overdue_amount=("overdue_amount", "sum"),
        avg_days_overdue=("days_overdue", "mean"))
    out[["open_receivables", "overdue_amount"]] = out[["open_receivables", "overdue_amount"]].round(2)
    out["avg_days_overdue"] = out["avg_days_overdue"].round(1)
    return out[CREDIT_COLUMNS]


def add_credit_scores(p: pd.DataFrame, s: EnrichmentSettings) -> None:
    """Needs open_receivables, overdue_amount, revenue_12m (0 filled where no documents)."""
    open_r, overdue = p["open_receivables"], p["overdue_amount"]
    share = (overdue / open_r).where(open_r > 0, 0.0)
    p["overdue_share"] = share.round(4)
    p["credit_class"] = np.select(
        [overdue.eq(0).to_numpy(), (share <= s.credit_b_max_overdue_share).to_numpy(),
         (share <= s.credit_c_max_overdue_share).to_numpy()],
        ["A", "B", "C"], default="D")
    daily = p["revenue_12m"] / DAYS_PER_YEAR
    p["dso_days"] = (open_r / daily).where(p["revenue_12m"] > 0).round(2)


def payment_behaviour(payments: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    """avg_days_paid_late, paid_on_time_share, payments_received per customer (indexed by ``cust``)."""
    received = payments.groupby("cust", sort=False)["value"].sum().rename("payments_received")
    last_paid = payments.groupby(["source_system", "invoice_source_id"], sort=False)["paid_date"].max()
    settled = invoices.loc[invoices["kind"].eq("invoice") & invoices["status"].eq("paid"),
                           ["cust", "source_system", "source_id", "due_date"]]
    settled = settled.merge(last_paid.rename("settled_on").reset_index(),
                            left_on=["source_system", "source_id"], right_on=["source_system", "invoice_source_id"],
                            how="inner", sort=False)
    late = (settled["settled_on"] - settled["due_date"]).dt.days.clip(lower=0).astype("float64")
    timing = pd.DataFrame({"cust": settled["cust"], "late": late, "on_time": late.eq(0).astype("float64")})
    out = timing.groupby("cust", sort=False).agg(avg_days_paid_late=("late", "mean"),
                                                  paid_on_time_share=("on_time", "mean"))
    out = out.join(received, how="outer")
    out["avg_days_paid_late"] = out["avg_days_paid_late"].round(1)
    out["paid_on_time_share"] = out["paid_on_time_share"].round(4)
    out["payments_received"] = out["payments_received"].round(2)
    return out[PAYMENT_COLUMNS]
