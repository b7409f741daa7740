"""Relationship value, customer lifetime value (CLV) and value segment, from the value ledger.

Windows (relative to as_of, on the ledger line's occurred_at):

    last 12 months      W12  = (as_of - 12 months, as_of]
    previous 12 months  Wp12 = (as_of - 24 months, as_of - 12 months]

Relationship value (reporting currency, rounded to 2 decimals):

    lifetime_revenue   = sum(value of invoice and credit_note lines)      (credit notes are negative)
    revenue_12m        = same, lines in W12;   revenue_prev_12m = same, lines in Wp12
    cost_to_serve      = -sum(value of cost_to_serve lines)               (a positive number)
    cost_to_serve_12m  = same, lines in W12
    net_value          = lifetime_revenue - cost_to_serve
    net_value_12m      = revenue_12m - cost_to_serve_12m

CLV (geometric retention model; parameters margin_rate m, retention_rate r, discount_rate d):

    clv_historical = net_value
    clv_predicted  = 0                                        if churn_flag
                   = m * max(revenue_12m, 0) * r / (1 + d - r)  otherwise
    clv            = clv_historical + clv_predicted

(the yearly margin m * revenue_12m is expected again in year k with probability r^k and discounted
by (1 + d)^k; summing k = 1..inf gives r / (1 + d - r). Negative recent revenue -- credit notes only --
predicts no future margin rather than a negative one.)

Segment (exactly one, first rule that matches):

    below_zero        net_value < 0
    most_valuable     among customers with net_value > 0 (n_pos of them), ranked by net_value
                      descending, ties by customer_id ascending: the first ceil(top_share * n_pos)
    growth_potential  revenue_prev_12m > 0 and revenue_12m >= (1 + growth_rate) * revenue_prev_12m,
                      or revenue_prev_12m == 0 and revenue_12m > 0 and tenure_days < new_customer_days
    standard          everything else (including customers with no value at all)
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .settings import EnrichmentSettings

VALUE_COLUMNS = ["lifetime_revenue", "revenue_12m", "revenue_prev_12m", "cost_to_serve", "cost_to_serve_12m"]
SEGMENTS = ("most_valuable", "growth_potential", "below_zero", "standard")


def relationship_value(ledger: pd.DataFrame, as_of: pd.Timestamp, start_12m: pd.Timestamp,
                       start_prev_12m: pd.Timestamp) -> pd.DataFrame:
    """Sums of the ledger per customer (indexed by customer position ``cust``); see the module docstring."""
    at = ledger["occurred_at"]
    revenue = ledger["line_type"].isin(["invoice", "credit_note"])
    cost = ledger["line_type"].eq("cost_to_serve")  # payment lines are cash received: neither
    in_12m = (at > start_12m) & (at <= as_of)
    in_prev = (at > start_prev_12m) & (at <= start_12m)
    v = ledger["value"]
    parts = pd.DataFrame({
        "cust": ledger["cust"],
        "lifetime_revenue": v.where(revenue, 0.0),
        "revenue_12m": v.where(revenue & in_12m, 0.0),
        "revenue_prev_12m": v.where(revenue & in_prev, 0.0),
        "cost_to_serve": (-v).where(cost, 0.0),            # (-v) first: no -0.0 for customers
        "cost_to_serve_12m": (-v).where(cost & in_12m, 0.0),  # without tickets
    })
    return parts.groupby("cust", sort=False).sum().round(2)[VALUE_COLUMNS]


def add_net_value(p: pd.DataFrame) -> None:
    p["net_value"] = (p["lifetime_revenue"] - p["cost_to_serve"]).round(2)
    p["net_value_12m"] = (p["revenue_12m"] - p["cost_to_serve_12m"]).round(2)


def add_clv(p: pd.DataFrame, s: EnrichmentSettings) -> None:
    """Needs net_value, revenue_12m and churn_flag."""
    factor = s.margin_rate * s.retention_rate / (1.0 + s.discount_rate - s.retention_rate)
    predicted = p["revenue_12m"].clip(lower=0.0) * factor
    p["clv_historical"] = p["net_value"]
    p["clv_predicted"] = predicted.where(~p["churn_flag"], 0.0).round(2)
    p["clv"] = (p["clv_historical"] + p["clv_predicted"]).round(2)


def top_count(top_share: float, n_positive: int) -> int:
    """ceil(top_share * n_positive), immune to float noise such as 0.07 * 100 = 7.000000000000001."""
    return int(math.ceil(round(top_share * n_positive, 9)))


def most_valuable_ids(p: pd.DataFrame, s: EnrichmentSettings) -> pd.Series:
    """The customer ids of segment most_valuable, ranked among every customer of `p` (customer_id, net_value)."""
    positive = p.loc[p["net_value"] > 0, ["customer_id", "net_value"]]
    ranked = positive.sort_values(["net_value", "customer_id"], ascending=[False, True], kind="stable")
    return ranked["customer_id"].iloc[:top_count(s.top_share, len(ranked))]


def assign_segments(p: pd.DataFrame, s: EnrichmentSettings, top_ids: pd.Series) -> None:
    """Needs customer_id, net_value, revenue_12m, revenue_prev_12m and tenure_days; `top_ids` from
    `most_valuable_ids` (over more customers than `p` when only some profiles are recomputed)."""
    net = p["net_value"]
    r12, prev = p["revenue_12m"], p["revenue_prev_12m"]
    growing = (prev > 0) & (r12 >= ((1.0 + s.growth_rate) * prev).round(2))
    is_new = (p["tenure_days"] < s.new_customer_days).fillna(False).to_numpy(dtype=bool)  # null tenure: not new
    new_and_buying = ((prev == 0) & (r12 > 0)).to_numpy(dtype=bool) & is_new
    p["segment"] = np.select(
        [(net < 0).to_numpy(dtype=bool), p["customer_id"].isin(top_ids).to_numpy(dtype=bool),
         growing.to_numpy(dtype=bool) | new_and_buying],
        ["below_zero", "most_valuable", "growth_potential"], default="standard")


def add_segment(p: pd.DataFrame, s: EnrichmentSettings) -> None:
    """Needs customer_id, net_value, revenue_12m, revenue_prev_12m and tenure_days."""
    assign_segments(p, s, most_valuable_ids(p, s))
