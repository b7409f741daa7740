"""Document scoping and the value ledger.

Scoping (applies to every metric):

* A document reaches its unified customer through the crosswalk:
  ``(document.source_system, document.customer_source_id) -> (crosswalk.source_system,
  crosswalk.source_id) -> customer_id``. Documents whose customer record is not in the crosswalk, or
  whose customer_id is not in ``customers``, are ignored (quarantined upstream).
* Only documents that happened at or before ``as_of`` count: orders ``ordered_at <= as_of``; invoices
  ``invoice_date`` (00:00 UTC of that date) ``<= as_of``; tickets ``opened_at <= as_of``. A document
  without that date is ignored.
* Orders and invoices with status ``draft`` or ``cancelled`` are ignored; only ``posted`` payments count,
  those with ``paid_date`` (00:00 UTC) ``<= as_of``.

Value ledger -- one line per valued event, signed, in the reporting currency:

    line_type       source                       occurred_at          value
    invoice         invoice, kind=invoice        invoice_date 00:00Z  +|total_amount| * rate
    credit_note     invoice, kind=credit_note    invoice_date 00:00Z  -|total_amount| * rate
    cost_to_serve   service ticket               opened_at            -cost_to_serve_by_priority[priority]
    payment         payment, status=posted       paid_date 00:00Z     +amount * rate   (cash received:
                                                                        not revenue, not a cost)
    order           order (not draft/cancelled)  ordered_at           +total_amount * rate  (booked demand:
                                                                        not revenue, not a cost)

The sign comes from ``kind``, not from the stored amount (ERPs differ on whether credit notes are
stored negative); ``amount_original`` is the signed amount in the document currency, so
``value = round(amount_original * rate, 2)``. A ticket's cost is already in the reporting currency
(``currency`` = reporting currency, rate 1); a ticket with a missing or unknown priority is charged
as ``unknown_priority_as``. Invoices that cannot be converted (see ``enrich.fx``) are not in the
ledger; they are listed in ``unconverted``. Revenue is recognised on invoices: order and payment lines
record demand booked and cash received, and no value sum (``enrich.value``) includes them. Ledger rows come
grouped by line source (invoices and credit notes, tickets, payments, orders), in no further order: sort by
customer_id and occurred_at when reading it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .fx import MISSING_FX_RATE, rates_for
from .settings import EnrichmentSettings

EXCLUDED_DOCUMENT_STATUSES = ("draft", "cancelled")
LINE_TYPES = ["invoice", "credit_note", "cost_to_serve", "payment", "order"]
LEDGER_COLUMNS = ["customer_id", "source_system", "source_id", "line_type", "occurred_at",
                  "amount_original", "currency", "value"]
UNCONVERTED_COLUMNS = ["source_system", "source_id", "entity", "currency", "reason",
                       "customer_id", "document_date"]


@dataclass
class ScopedDocuments:
    """Documents in scope and their converted values (see module docstring).

    Internally a customer is identified by ``cust``, its integer position in ``customers``: grouping
    millions of documents by an int64 is several times faster than by a string id. ``ledger`` and
    ``unconverted`` carry both ``cust`` and ``customer_id``.
    """

    orders: pd.DataFrame    # + value (NaN when unconverted), converted
    invoices: pd.DataFrame  # converted only; + occurred_at, value (signed), outstanding_value
    tickets: pd.DataFrame   # + cost, is_closed, is_open
    payments: pd.DataFrame  # posted, paid by as_of; + occurred_at, value (NaN when unconverted), converted
    ledger: pd.DataFrame
    unconverted: pd.DataFrame


def utc_timestamps(values: pd.Series) -> pd.Series:
    """Coerce to tz-aware UTC datetime64[ns, UTC]."""
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def naive_dates(values: pd.Series) -> pd.Series:
    """Coerce to a naive calendar date (datetime64[ns], midnight)."""
    out = pd.to_datetime(values)
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[ns]").dt.normalize()


def customer_keys(crosswalk: pd.DataFrame, customer_ids: pd.Index) -> pd.DataFrame:
    """Crosswalk as (source_system, customer_source_id, cust), only customers in ``customer_ids``."""
    dup = crosswalk.duplicated(["source_system", "source_id"], keep=False)
    if dup.any():
        row = crosswalk.loc[dup].iloc[0]
        raise ValueError("crosswalk maps a source customer record more than once: "
                         f"({row['source_system']!r}, {row['source_id']!r})")
    cust = customer_ids.get_indexer(crosswalk["customer_id"])
    xw = pd.DataFrame({"source_system": crosswalk["source_system"].to_numpy(),
                       "customer_source_id": crosswalk["source_id"].to_numpy(), "cust": cust})
    return xw[xw["cust"] >= 0]


def attach_customers(docs: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """Inner-join documents to the crosswalk keys: adds ``cust``, drops unmapped documents."""
    return docs.merge(keys, on=["source_system", "customer_source_id"], how="inner", sort=False)


def _in_scope_status(status: pd.Series) -> pd.Series:
    return ~status.isin(EXCLUDED_DOCUMENT_STATUSES)


# The columns of each document kind that enrichment reads (the hub reads only these).
ORDER_FIELDS = ["source_system", "source_id", "customer_source_id", "status", "ordered_at", "total_amount", "currency",
                "channel"]
INVOICE_FIELDS = ["source_system", "source_id", "customer_source_id", "kind", "status", "invoice_date", "due_date",
                  "total_amount", "paid_amount", "outstanding_amount", "currency"]
TICKET_FIELDS = ["source_system", "source_id", "customer_source_id", "status", "priority", "is_complaint", "opened_at",
                 "closed_at", "satisfaction"]
PAYMENT_FIELDS = ["source_system", "source_id", "customer_source_id", "invoice_source_id", "status", "paid_date",
                  "amount", "currency"]


def _ledger(customer_ids: pd.Index, parts: list[tuple]) -> pd.DataFrame:
    """The ledger from its parts, column by column on NumPy arrays, grouped by part (invoices and credit notes,
    tickets, payments, orders) and not sorted: at millions of lines (one per order) concatenating DataFrames of
    text columns, or sorting them, cost more than all the metrics together."""
    parts = [p for p in parts if len(p[0])]

    def gather(get, dtype=object):
        arrays = []
        for p in parts:
            values = get(p)
            arrays.append(np.full(len(p[0]), values, dtype=dtype) if np.isscalar(values)
                          else np.asarray(values, dtype=dtype))
        return np.concatenate(arrays) if arrays else np.empty(0, dtype)

    cust = gather(lambda p: p[0]["cust"], np.int64)
    at = gather(lambda p: pd.Series(p[2]).dt.tz_convert("UTC").array.asi8, np.int64)
    return pd.DataFrame({
        "customer_id": customer_ids.to_numpy()[cust],
        "source_system": gather(lambda p: p[0]["source_system"]),
        "source_id": gather(lambda p: p[0]["source_id"]),
        "line_type": pd.Categorical.from_codes(gather(lambda p: p[1], np.int8), categories=LINE_TYPES),
        "occurred_at": pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC"),
        "amount_original": gather(lambda p: p[3], np.float64),
        "currency": gather(lambda p: p[4]),
        "value": gather(lambda p: p[5], np.float64),
        "cust": cust,
    })


def scope_documents(customers: pd.DataFrame, crosswalk: pd.DataFrame, orders: pd.DataFrame,
                    invoices: pd.DataFrame, tickets: pd.DataFrame, fx_rates: pd.DataFrame,
                    settings: EnrichmentSettings, as_of: pd.Timestamp,
                    payments: pd.DataFrame | None = None) -> ScopedDocuments:
    rep = settings.reporting_currency
    customer_ids = pd.Index(customers["customer_id"])
    keys = customer_keys(crosswalk, customer_ids)

    # ---- orders ----------------------------------------------------------------------------
    o = orders[ORDER_FIELDS].copy()
    o["ordered_at"] = utc_timestamps(o["ordered_at"])
    o = o[_in_scope_status(o["status"]) & (o["ordered_at"] <= as_of)]
    o = attach_customers(o, keys)
    o_date = o["ordered_at"].dt.tz_localize(None).dt.normalize()
    o_rate = rates_for(o["currency"], o_date, fx_rates, rep)
    o["value"] = (o["total_amount"].astype("float64") * o_rate).round(2)
    o["rate"] = o_rate  # order lines are valued at their order's rate
    o["converted"] = o_rate.notna()
    o["_doc_date"] = o_date

    # ---- invoices ----------------------------------------------------------------------------
    i = invoices[INVOICE_FIELDS].copy()
    i["invoice_date"] = naive_dates(i["invoice_date"])
    i["due_date"] = naive_dates(i["due_date"])
    i["occurred_at"] = i["invoice_date"].dt.tz_localize("UTC")
    i = i[_in_scope_status(i["status"]) & (i["occurred_at"] <= as_of)]
    i = attach_customers(i, keys)
    i_rate = rates_for(i["currency"], i["invoice_date"], fx_rates, rep)
    sign = np.where(i["kind"].eq("credit_note").to_numpy(), -1.0, 1.0)
    total = i["total_amount"].astype("float64")
    i["amount_original"] = sign * total.abs()
    i["value"] = (i["amount_original"] * i_rate).round(2)
    outstanding = i["outstanding_amount"].astype("float64").fillna(
        total - i["paid_amount"].astype("float64").fillna(0.0))
    i["outstanding_value"] = (outstanding * i_rate).round(2)
    i["converted"] = i_rate.notna()
    i["_doc_date"] = i["invoice_date"]

    # ---- payments ----------------------------------------------------------------------------
    if payments is None:
        payments = pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "paid_date" else object)
                                 for c in PAYMENT_FIELDS})
    pay = payments[PAYMENT_FIELDS].copy()
    pay["paid_date"] = naive_dates(pay["paid_date"])
    pay["occurred_at"] = pay["paid_date"].dt.tz_localize("UTC")
    pay = pay[pay["status"].eq("posted") & (pay["occurred_at"] <= as_of)]
    pay = attach_customers(pay, keys)
    pay_rate = rates_for(pay["currency"], pay["paid_date"], fx_rates, rep)
    pay["amount"] = pay["amount"].astype("float64")
    pay["value"] = (pay["amount"] * pay_rate).round(2)
    pay["converted"] = pay_rate.notna()
    pay["_doc_date"] = pay["paid_date"]

    unconverted = pd.concat([
        o.loc[~o["converted"]].assign(entity="order"),
        i.loc[~i["converted"]].assign(entity="invoice"),
        pay.loc[~pay["converted"]].assign(entity="payment"),
    ], ignore_index=True)
    unconverted = pd.DataFrame({
        "source_system": unconverted["source_system"], "source_id": unconverted["source_id"],
        "entity": unconverted["entity"], "currency": unconverted["currency"], "reason": MISSING_FX_RATE,
        "customer_id": customer_ids.take(unconverted["cust"].to_numpy()),
        "document_date": unconverted["_doc_date"], "cust": unconverted["cust"],
    }, columns=[*UNCONVERTED_COLUMNS, "cust"]).sort_values(["cust", "entity", "source_system", "source_id"],
                                                         ignore_index=True)
    i = i.loc[i["converted"]].drop(columns=["_doc_date"])
    o = o.drop(columns=["_doc_date"])
    pay = pay.drop(columns=["_doc_date"])

    # ---- tickets ------------------------------------------------------------------------------
    t = tickets[TICKET_FIELDS].copy()
    t["opened_at"] = utc_timestamps(t["opened_at"])
    t["closed_at"] = utc_timestamps(t["closed_at"])
    t = t[t["opened_at"] <= as_of]
    t = attach_customers(t, keys)
    costs = settings.cost_to_serve_by_priority.model_dump()
    t["cost"] = t["priority"].map(costs).astype("float64").fillna(costs[settings.unknown_priority_as])
    # Point in time: a ticket closed after as_of was still open at as_of.
    t["is_closed"] = t["status"].eq("closed") & ~(t["closed_at"] > as_of)
    t["is_open"] = ~t["is_closed"]
    t["is_complaint"] = t["is_complaint"].eq(True)
    t["satisfaction"] = pd.to_numeric(t["satisfaction"], errors="coerce").astype("float64")

    # ---- ledger -------------------------------------------------------------------------------
    paid, booked = pay.loc[pay["converted"]], o.loc[o["converted"]]
    kinds = i["kind"].eq("credit_note").to_numpy()
    ledger = _ledger(customer_ids, [
        # (documents, line type (codes into LINE_TYPES), occurred_at, amount_original, currency, value)
        (i, np.where(kinds, LINE_TYPES.index("credit_note"), LINE_TYPES.index("invoice")), i["occurred_at"],
         i["amount_original"], i["currency"], i["value"]),
        (t, LINE_TYPES.index("cost_to_serve"), t["opened_at"], 0.0 - t["cost"], rep, (0.0 - t["cost"]).round(2)),
        (paid, LINE_TYPES.index("payment"), paid["occurred_at"], paid["amount"], paid["currency"], paid["value"]),
        (booked, LINE_TYPES.index("order"), booked["ordered_at"], booked["total_amount"].astype("float64"),
         booked["currency"], booked["value"]),
    ])
    return ScopedDocuments(orders=o.reset_index(drop=True), invoices=i.reset_index(drop=True),
                           tickets=t.reset_index(drop=True), payments=pay.reset_index(drop=True), ledger=ledger,
                           unconverted=unconverted)
