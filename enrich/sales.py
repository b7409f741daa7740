"""Sales behaviour from orders (non-cancelled, non-draft, at or before as_of; see ``enrich.ledger``).

Per customer, over its orders o:

    order_count      = number of orders (converted or not: a count needs no FX rate)
    first_order_at   = min(o.ordered_at);  last_order_at = max(o.ordered_at)
    recency_days     = floor((as_of - last_order_at) / 1 day)          null without orders
    orders_12m       = #orders with as_of - 12 months < ordered_at <= as_of
    order_value_total= sum of round(total_amount * rate, 2) over converted orders (reporting currency)
    avg_order_value  = order_value_total / #converted orders            null when none converted
    top_channel      = channel with the most orders (ties: alphabetically first); null without channel

Orders whose currency could not be converted still count in order_count, recency and frequency but
not in any money value (they are listed in ``EnrichmentResult.unconverted``).

Product preferences, from the order lines of those orders that were converted (a line is valued at its
order's rate: value = round(line_amount * rate, 2)); lines without a category are left out:

    top_categories      = the top_categories_count categories by summed line value, "; "-joined
                          (ties: alphabetically first); null without valued, categorised lines
    top_category_share  = value of the first of them / value of all categorised lines, 4 decimals
"""
from __future__ import annotations

import pandas as pd

SALES_COLUMNS = ["order_count", "first_order_at", "last_order_at", "recency_days", "orders_12m",
                 "order_value_total", "avg_order_value", "top_channel"]


def sales_behaviour(orders: pd.DataFrame, as_of: pd.Timestamp, start_12m: pd.Timestamp) -> pd.DataFrame:
    """One row per customer with at least one scoped order, indexed by customer position ``cust``."""
    g = orders.groupby("cust", sort=False)
    out = g.agg(order_count=("source_id", "size"), first_order_at=("ordered_at", "min"),
                last_order_at=("ordered_at", "max"))
    out["recency_days"] = (as_of - out["last_order_at"]).dt.days
    out["orders_12m"] = (orders.loc[orders["ordered_at"] > start_12m].groupby("cust", sort=False)
                         .size().reindex(out.index, fill_value=0))
    valued = orders.loc[orders["converted"]].groupby("cust", sort=False)["value"].agg(["sum", "size"])
    valued = valued.reindex(out.index)
    out["order_value_total"] = valued["sum"].fillna(0.0).round(2)
    out["avg_order_value"] = (valued["sum"] / valued["size"]).round(2)

    by_channel = (orders.loc[orders["channel"].notna()]
                  .groupby(["cust", "channel"], sort=False).size().rename("n").reset_index())
    top = (by_channel.sort_values(["cust", "n", "channel"], ascending=[True, False, True])
           .drop_duplicates("cust").set_index("cust")["channel"])
    out["top_channel"] = top.reindex(out.index)
    return out[SALES_COLUMNS]


PREFERENCE_COLUMNS = ["top_categories", "top_category_share"]


def category_preferences(lines: pd.DataFrame, orders: pd.DataFrame, count: int) -> pd.DataFrame:
    """top_categories and top_category_share per customer (indexed by ``cust``); see the module docstring."""
    valued = orders.loc[orders["converted"], ["source_system", "source_id", "cust", "rate"]]
    joined = lines.loc[lines["category"].notna(), ["source_system", "order_source_id", "category", "line_amount"]]
    joined = joined.merge(valued.rename(columns={"source_id": "order_source_id"}),
                          on=["source_system", "order_source_id"], how="inner", sort=False)
    joined["value"] = (joined["line_amount"].astype("float64") * joined["rate"]).round(2)
    by = joined.groupby(["cust", "category"], sort=False)["value"].sum().reset_index()
    by = by.sort_values(["cust", "value", "category"], ascending=[True, False, True], kind="stable")
    total = by.groupby("cust", sort=False)["value"].sum()
    top = by.groupby("cust", sort=False).head(count)
    out = pd.DataFrame({"top_categories": top.groupby("cust", sort=False)["category"].agg("; ".join)})
    first = by.drop_duplicates("cust").set_index("cust")["value"]
    out["top_category_share"] = (first / total).where(total > 0).round(4).reindex(out.index)
    return out[PREFERENCE_COLUMNS]
