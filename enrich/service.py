"""Service (satisfaction) analysis from service tickets opened at or before as_of.

A ticket is *closed at as_of* when status is ``closed`` and it was not closed after as_of
(``closed_at`` null or ``<= as_of``); every other ticket is *open* at as_of.

    tickets_total         = number of tickets
    tickets_open          = number of open tickets
    open_complaints       = number of open tickets with is_complaint true
    avg_resolution_hours  = mean(closed_at - opened_at, hours) over closed tickets with both
                            timestamps (and closed_at >= opened_at); null if none
    complaint_share       = #(is_complaint true) / tickets_total       (null without tickets)
    satisfaction          = mean of non-null satisfaction (0..1)       (null if none)

Customers without tickets get 0 for the counts and null for the rest.
"""
from __future__ import annotations

import pandas as pd

SERVICE_COLUMNS = ["tickets_total", "tickets_open", "open_complaints", "avg_resolution_hours",
                   "complaint_share", "satisfaction"]


def service_metrics(tickets: pd.DataFrame) -> pd.DataFrame:
    """One row per customer with tickets, indexed by customer position ``cust``."""
    hours = (tickets["closed_at"] - tickets["opened_at"]).dt.total_seconds() / 3600.0
    resolved = tickets["is_closed"] & hours.notna() & (hours >= 0)
    parts = pd.DataFrame({
        "cust": tickets["cust"],
        "open": tickets["is_open"].astype("int64"),
        "open_complaint": (tickets["is_open"] & tickets["is_complaint"]).astype("int64"),
        "complaint": tickets["is_complaint"].astype("int64"),
        "hours": hours.where(resolved),
        "satisfaction": tickets["satisfaction"],
    })
    out = parts.groupby("cust", sort=False).agg(
        tickets_total=("open", "size"), tickets_open=("open", "sum"),
        open_complaints=("open_complaint", "sum"), complaints=("complaint", "sum"),
        avg_resolution_hours=("hours", "mean"), satisfaction=("satisfaction", "mean"))
    out["avg_resolution_hours"] = out["avg_resolution_hours"].round(2)
    out["complaint_share"] = (out["complaints"] / out["tickets_total"]).round(3)
    out["satisfaction"] = out["satisfaction"].round(3)
    return out[SERVICE_COLUMNS]
