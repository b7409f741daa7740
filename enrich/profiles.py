"""Build one enriched profile per unified customer (vectorised: groupby/merge only, no row loops).

Pipeline: scope documents and build the value ledger (``enrich.ledger``) -> sales behaviour
(``enrich.sales``) -> relationship value (``enrich.value``) -> credit (``enrich.credit``) -> service
(``enrich.service``) -> loyalty and churn (``enrich.loyalty``) -> CLV and segment (``enrich.value``)
-> demand (``enrich.loyalty``). Every formula is in those modules' docstrings and in
``enrich/DEFINITIONS.md``.

Customers without any document get zero counts and money, null dates/averages, churn_risk 1.0,
credit class A and segment ``standard``. Money is in ``reporting_currency``, rounded to 2 decimals.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .credit import add_credit_scores, payment_behaviour, receivables
from .ledger import LEDGER_COLUMNS, UNCONVERTED_COLUMNS, scope_documents
from .loyalty import add_demand, add_loyalty_and_churn, order_rhythm
from .sales import category_preferences, sales_behaviour
from .service import service_metrics
from .settings import EnrichmentSettings
from .value import VALUE_COLUMNS, add_clv, add_net_value, add_segment, relationship_value

# Bump when build_profiles computes a field differently: stored profiles then are all recomputed at the next run
# instead of only those whose data changed (erp2crm.refresh).
PROFILE_FORMAT = 1

GOLDEN_COLUMNS = ["customer_id", "name", "company_name", "email", "phone", "tax_id", "city", "country",
                  "is_company"]

PROFILE_COLUMNS = GOLDEN_COLUMNS + [
    "reporting_currency", "as_of",
    # sales behaviour
    "order_count", "first_order_at", "last_order_at", "recency_days", "orders_12m",
    "order_value_total", "avg_order_value", "top_channel", "top_categories", "top_category_share",
    # relationship value
    "lifetime_revenue", "revenue_12m", "revenue_prev_12m", "cost_to_serve", "cost_to_serve_12m",
    "net_value", "net_value_12m",
    # CLV and segment
    "clv_historical", "clv_predicted", "clv", "segment",
    # credit
    "open_receivables", "overdue_amount", "overdue_share", "avg_days_overdue", "dso_days", "credit_class",
    # payment behaviour
    "avg_days_paid_late", "paid_on_time_share", "payments_received",
    # service
    "tickets_total", "tickets_open", "open_complaints", "avg_resolution_hours", "complaint_share",
    "satisfaction",
    # loyalty and churn
    "tenure_days", "repeat_purchase", "active_months_share_12m", "expected_gap_days", "churn_risk",
    "churn_flag",
    # demand
    "expected_orders_next_period", "expected_spend_next_period",
    # data completeness
    "unconverted_documents",
]

MONEY_COLUMNS = ["order_value_total", "avg_order_value", *VALUE_COLUMNS, "net_value", "net_value_12m",
                 "clv_historical", "clv_predicted", "clv", "open_receivables", "overdue_amount",
                 "payments_received", "expected_spend_next_period"]

_ZERO_FILLED = {
    "order_count": "int64", "orders_12m": "int64", "active_months_12m": "int64",
    "tickets_total": "int64", "tickets_open": "int64", "open_complaints": "int64",
    "order_value_total": "float64", "lifetime_revenue": "float64", "revenue_12m": "float64",
    "revenue_prev_12m": "float64", "cost_to_serve": "float64", "cost_to_serve_12m": "float64",
    "open_receivables": "float64", "overdue_amount": "float64", "unconverted_documents": "int64",
    "payments_received": "float64",
}


@dataclass
class EnrichmentResult:
    profiles: pd.DataFrame     # one row per customer_id in `customers`, columns PROFILE_COLUMNS
    ledger: pd.DataFrame       # value ledger lines (enrich.ledger.LEDGER_COLUMNS)
    unconverted: pd.DataFrame  # documents without an FX rate (enrich.ledger.UNCONVERTED_COLUMNS)


ORDER_LINE_FIELDS = ["source_system", "order_source_id", "category", "line_amount"]


def _order_lines(lines: pd.DataFrame | None) -> pd.DataFrame:
    if lines is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ORDER_LINE_FIELDS})
    return lines[ORDER_LINE_FIELDS]


def _as_utc(as_of: pd.Timestamp) -> pd.Timestamp:
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.tz_convert("UTC")


def build_profiles(customers: pd.DataFrame, crosswalk: pd.DataFrame, orders: pd.DataFrame,
                   invoices: pd.DataFrame, tickets: pd.DataFrame, fx_rates: pd.DataFrame,
                   settings: EnrichmentSettings, as_of: pd.Timestamp,
                   payments: pd.DataFrame | None = None,
                   order_lines: pd.DataFrame | None = None) -> EnrichmentResult:
    """Enrich every customer in ``customers``; see the module docstring and enrich/DEFINITIONS.md. Without
    ``payments`` or ``order_lines`` (sources without those streams), the payment-behaviour or product
    preference fields are empty."""
    as_of = _as_utc(as_of)
    if customers["customer_id"].duplicated().any():
        dup = customers.loc[customers["customer_id"].duplicated(), "customer_id"].iloc[0]
        raise ValueError(f"customers: duplicated customer_id {dup!r}")
    start_12m = as_of - pd.DateOffset(months=12)
    start_prev_12m = as_of - pd.DateOffset(months=24)
    as_of_date = as_of.tz_localize(None).normalize()

    docs = scope_documents(customers, crosswalk, orders, invoices, tickets, fx_rates, settings, as_of, payments)

    p = customers[GOLDEN_COLUMNS].reset_index(drop=True)
    p.insert(len(GOLDEN_COLUMNS), "reporting_currency", settings.reporting_currency)
    p.insert(len(GOLDEN_COLUMNS) + 1, "as_of", pd.Series(as_of, index=p.index).astype("datetime64[ns, UTC]"))
    aggregates = [
        sales_behaviour(docs.orders, as_of, start_12m),
        category_preferences(_order_lines(order_lines), docs.orders, settings.top_categories_count),
        order_rhythm(docs.orders, start_12m),
        relationship_value(docs.ledger, as_of, start_12m, start_prev_12m),
        receivables(docs.invoices, as_of_date),
        payment_behaviour(docs.payments, docs.invoices),
        service_metrics(docs.tickets),
        docs.unconverted.groupby("cust", sort=False).size().rename("unconverted_documents").to_frame(),
    ]
    p = p.join(pd.concat(aggregates, axis=1))   # aggregates are indexed by position in `customers`
    for column, dtype in _ZERO_FILLED.items():
        p[column] = p[column].fillna(0).astype(dtype)
    for column in ("first_order_at", "last_order_at"):
        p[column] = p[column].astype("datetime64[ns, UTC]")
    p["recency_days"] = p["recency_days"].astype("Int64")

    add_net_value(p)
    add_credit_scores(p, settings)
    add_loyalty_and_churn(p, settings, as_of)
    add_clv(p, settings)
    add_segment(p, settings)
    add_demand(p, settings)
    p[MONEY_COLUMNS] = p[MONEY_COLUMNS].round(2)
    return EnrichmentResult(profiles=p[PROFILE_COLUMNS], ledger=docs.ledger[LEDGER_COLUMNS],
                            unconverted=docs.unconverted[UNCONVERTED_COLUMNS])
