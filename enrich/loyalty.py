"""Loyalty, churn risk and next-period demand.

Loyalty (from scoped orders):

    tenure_days             = floor((as_of - first_order_at) / 1 day)       null without orders
    repeat_purchase         = order_count >= 2
    active_months_share_12m = #distinct UTC calendar months with an order in (as_of - 12 months, as_of]
                              / 12, capped at 1

Churn risk (parameters in settings):

    gaps               = ordered_at[k] - ordered_at[k-1] in days, between consecutive orders of a customer
    expected_gap_days  = max(median(gaps), 1)    if order_count >= min_orders_for_own_rhythm (default 3)
                       = default_purchase_gap_days (default 90)                              otherwise
    recency_risk       = clip(recency_days / (churn_gap_multiple * expected_gap_days), 0, 1)
                       = 1                                    for a customer without orders (tenure unknown)
    churn_risk         = round(clip(recency_risk
                                    + open_complaint_penalty  * [an open complaint ticket]
                                    + falling_value_penalty   * [revenue_12m < revenue_prev_12m], 0, 1), 3)
    churn_flag         = churn_risk >= churn_flag_threshold  (default 0.7)

(the 1-day floor only matters when all orders share one timestamp; it avoids dividing by zero.)

Demand for the next ``next_period_months`` (default 3) months:

    expected_orders_next_period = round(orders_12m / 12 * next_period_months, 3)
    expected_spend_next_period  = round(expected_orders_next_period * avg_order_value, 2)
                                  (0 when avg_order_value is null, i.e. no converted order)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .settings import EnrichmentSettings


def order_rhythm(orders: pd.DataFrame, start_12m: pd.Timestamp) -> pd.DataFrame:
    """median_gap_days and active_months_12m per customer with orders (indexed by customer position ``cust``)."""
    by_customer_then_time = np.lexsort((orders["ordered_at"].to_numpy(dtype="datetime64[ns]"),
                                        orders["cust"].to_numpy()))
    ordered = orders[["cust", "ordered_at"]].take(by_customer_then_time)
    gap_days = ordered.groupby("cust", sort=False)["ordered_at"].diff() / pd.Timedelta(days=1)
    median_gap = gap_days.groupby(ordered["cust"], sort=False).median()

    recent = orders.loc[orders["ordered_at"] > start_12m, ["cust", "ordered_at"]]
    month = recent["ordered_at"].dt.year * 12 + recent["ordered_at"].dt.month
    active = (pd.DataFrame({"cust": recent["cust"], "month": month})
              .drop_duplicates().groupby("cust", sort=False).size())
    out = pd.DataFrame({"median_gap_days": median_gap})
    out["active_months_12m"] = active.reindex(out.index, fill_value=0)
    return out


def add_loyalty_and_churn(p: pd.DataFrame, s: EnrichmentSettings, as_of: pd.Timestamp) -> None:
    """Needs first_order_at, order_count, recency_days, median_gap_days, active_months_12m,
    open_complaints, revenue_12m, revenue_prev_12m."""
    p["tenure_days"] = (as_of - p["first_order_at"]).dt.days.astype("Int64")
    p["repeat_purchase"] = p["order_count"] >= 2
    p["active_months_share_12m"] = (p["active_months_12m"].clip(upper=12) / 12.0).round(3)

    own_rhythm = p["order_count"] >= s.min_orders_for_own_rhythm
    expected_gap = p["median_gap_days"].clip(lower=1.0).where(own_rhythm, s.default_purchase_gap_days)
    p["expected_gap_days"] = expected_gap.round(2)

    recency = p["recency_days"].astype("float64")
    recency_risk = (recency / (s.churn_gap_multiple * expected_gap)).clip(0.0, 1.0).fillna(1.0)
    open_complaint = p["open_complaints"] > 0
    falling = p["revenue_12m"] < p["revenue_prev_12m"]
    risk = (recency_risk + s.open_complaint_penalty * open_complaint.astype("float64")
            + s.falling_value_penalty * falling.astype("float64"))
    p["churn_risk"] = risk.clip(0.0, 1.0).round(3)
    p["churn_flag"] = p["churn_risk"] >= s.churn_flag_threshold


def add_demand(p: pd.DataFrame, s: EnrichmentSettings) -> None:
    """Needs orders_12m and avg_order_value."""
    expected_orders = p["orders_12m"] / 12.0 * s.next_period_months
    p["expected_orders_next_period"] = expected_orders.round(3)
    p["expected_spend_next_period"] = (expected_orders * p["avg_order_value"]).fillna(0.0).round(2)
