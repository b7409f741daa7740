"""Profile enrichment on a tiny dataset whose expected values were computed by hand.

The arithmetic is written next to each assertion. The same customer C1 is the worked example in
enrich/DEFINITIONS.md.

Dataset (as_of = 2026-07-01 00:00 UTC; last 12 months W12 = (2025-07-01, 2026-07-01],
previous 12 months Wp12 = (2024-07-01, 2025-07-01]; reporting currency CNY; one FX rate:
USD -> CNY 7.2 valid from 2025-01-01, so a USD document dated before 2025-01-01 has no rate).

Crosswalk (the same source id "100" exists in both ERPs and means different customers):
    (erp_a, 100) -> C1   (erp_b, 300) -> C1   (erp_a, 200) -> C3
    (erp_b, 100) -> C2   (erp_a, 400) -> C4   (erp_a, 999) -> not in the crosswalk (quarantined)

C1 "Alpha" -- regular CNY buyer, also buys in USD through erp_b; value falling; open complaint.
C2 "Beta"  -- USD customer, growing; one old order and invoice predate the USD rate.
C3 "Gamma" -- one old order, expensive tickets: costs more than it brings.
C4 "Delta" -- no documents at all.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pydantic
import pytest

from enrich import EnrichmentResult, EnrichmentSettings, build_profiles, load_fx_rates, load_settings
from enrich.profiles import PROFILE_COLUMNS
from enrich.value import top_count
from erp2crm.canonical import INVOICE, ORDER, ORDER_LINE, PAYMENT, SERVICE_TICKET

REPO = Path(__file__).resolve().parents[1]
AS_OF = pd.Timestamp("2026-07-01T00:00:00Z")
DEFAULTS = EnrichmentSettings()


# ---------------------------------------------------------------------------------------------
# frame builders
# ---------------------------------------------------------------------------------------------
def _frame(entity, rows, timestamps=(), dates=()):
    df = pd.DataFrame([{f: r.get(f) for f in entity.fields} for r in rows], columns=list(entity.fields))
    for c in timestamps:
        df[c] = pd.to_datetime(df[c], utc=True)
    for c in dates:
        df[c] = pd.to_datetime(df[c])
    return df


def orders_frame(rows):
    # row: (system, id, customer_source_id, status, ordered_at, total, currency, channel)
    keys = ("source_system", "source_id", "customer_source_id", "status", "ordered_at", "total_amount",
            "currency", "channel")
    return _frame(ORDER, [dict(zip(keys, r)) for r in rows], timestamps=("ordered_at", "updated_at"))


def invoices_frame(rows):
    # row: (system, id, customer_source_id, kind, status, invoice_date, due_date, total, paid, outstanding, cur)
    keys = ("source_system", "source_id", "customer_source_id", "kind", "status", "invoice_date", "due_date",
            "total_amount", "paid_amount", "outstanding_amount", "currency")
    return _frame(INVOICE, [dict(zip(keys, r)) for r in rows], timestamps=("updated_at",),
                  dates=("invoice_date", "due_date"))


def tickets_frame(rows):
    # row: (system, id, customer_source_id, status, priority, is_complaint, opened_at, closed_at, satisfaction)
    keys = ("source_system", "source_id", "customer_source_id", "status", "priority", "is_complaint",
            "opened_at", "closed_at", "satisfaction")
    return _frame(SERVICE_TICKET, [dict(zip(keys, r)) for r in rows],
                  timestamps=("opened_at", "closed_at", "updated_at"))


def customers_frame(ids):
    return pd.DataFrame({
        "customer_id": ids, "name": [f"Customer {i}" for i in ids],
        "company_name": [f"{i} 贸易有限公司" for i in ids], "email": [f"{i.lower()}@example.cn" for i in ids],
        "phone": "+86 21 5555 0000", "tax_id": "91310000MA1FL0000X", "street": "1 Nanjing Road",
        "city": "Shanghai", "postcode": "200000", "country": "CN", "is_company": True,
    })


def fx_frame(rows):
    return pd.DataFrame({"currency": [r[0] for r in rows],
                         "rate_date": pd.to_datetime([r[1] for r in rows]).astype("datetime64[ns]"),
                         "rate": [float(r[2]) for r in rows]})


CUSTOMERS = customers_frame(["C1", "C2", "C3", "C4"])
CROSSWALK = pd.DataFrame([
    ("erp_a", "100", "C1"), ("erp_b", "300", "C1"), ("erp_b", "100", "C2"),
    ("erp_a", "200", "C3"), ("erp_a", "400", "C4"),
], columns=["source_system", "source_id", "customer_id"])
FX = fx_frame([("USD", "2025-01-01", 7.2)])

ORDERS = orders_frame([
    # C1 (erp_a 100, erp_b 300)
    ("erp_a", "O0", "100", "done", "2024-12-01T10:00Z", 6000.0, "CNY", "sales_rep"),
    ("erp_a", "O1", "100", "done", "2025-10-01T10:00Z", 1000.0, "CNY", "web"),
    ("erp_a", "O2", "100", "done", "2026-01-01T10:00Z", 2000.0, "CNY", "web"),
    ("erp_a", "O3", "100", "done", "2026-03-01T10:00Z", 1500.0, "CNY", "sales_rep"),
    ("erp_a", "O4", "100", "cancelled", "2026-05-01T10:00Z", 5000.0, "CNY", "web"),   # ignored: cancelled
    ("erp_b", "O5", "300", "confirmed", "2026-06-01T10:00Z", 100.0, "USD", "web"),    # 100 * 7.2 = 720
    ("erp_a", "O6", "100", "done", "2026-07-15T10:00Z", 9000.0, "CNY", "web"),        # ignored: after as_of
    # C2 (erp_b 100)
    ("erp_b", "P1", "100", "done", "2024-09-15T12:00Z", 200.0, "USD", "web"),         # no USD rate yet
    ("erp_b", "P2", "100", "done", "2025-03-10T12:00Z", 300.0, "USD", "distributor"),  # 2160
    ("erp_b", "P3", "100", "done", "2026-02-20T12:00Z", 500.0, "USD", "distributor"),  # 3600
    ("erp_b", "P4", "100", "draft", "2026-06-20T12:00Z", 800.0, "USD", "web"),         # ignored: draft
    # C3 (erp_a 200)
    ("erp_a", "Q1", "200", "done", "2025-05-01T08:00Z", 800.0, "CNY", "phone"),
    # quarantined customer record
    ("erp_a", "X1", "999", "done", "2026-06-01T10:00Z", 50000.0, "CNY", "web"),
])

INVOICES = invoices_frame([
    # C1
    ("erp_a", "I0", "100", "invoice", "paid", "2024-12-03", "2025-01-02", 6000.0, 6000.0, 0.0, "CNY"),
    ("erp_a", "I1", "100", "invoice", "paid", "2025-10-05", "2025-11-04", 1000.0, 1000.0, 0.0, "CNY"),
    ("erp_a", "I2", "100", "invoice", "open", "2026-01-05", "2026-02-04", 2000.0, 500.0, 1500.0, "CNY"),
    ("erp_a", "I3", "100", "invoice", "open", "2026-06-10", "2026-07-10", 1500.0, 0.0, 1500.0, "CNY"),
    ("erp_a", "I4", "100", "credit_note", "paid", "2026-03-15", "2026-03-15", 200.0, 200.0, 0.0, "CNY"),
    ("erp_a", "I5", "100", "invoice", "cancelled", "2026-04-01", "2026-05-01", 9999.0, 0.0, 0.0, "CNY"),
    ("erp_b", "I6", "300", "invoice", "open", "2026-06-05", "2026-07-05", 100.0, 0.0, 100.0, "USD"),
    ("erp_a", "I13", "100", "invoice", "open", "2026-07-02", "2026-08-01", 7777.0, 0.0, 7777.0, "CNY"),
    # C2
    ("erp_b", "I9", "100", "invoice", "paid", "2025-03-12", "2025-04-11", 300.0, 300.0, 0.0, "USD"),
    ("erp_b", "I10", "100", "invoice", "open", "2026-02-22", "2026-03-24", 500.0, 0.0, 500.0, "USD"),
    ("erp_b", "I11", "100", "invoice", "paid", "2024-09-16", "2024-10-16", 200.0, 200.0, 0.0, "USD"),
    ("erp_b", "I12", "100", "invoice", "draft", "2026-06-25", "2026-07-25", 800.0, 0.0, 800.0, "USD"),
    # C3
    ("erp_a", "I8", "200", "invoice", "paid", "2025-05-05", "2025-06-04", 800.0, 800.0, 0.0, "CNY"),
    # quarantined
    ("erp_a", "IX", "999", "invoice", "open", "2026-06-01", "2026-06-05", 50000.0, 0.0, 50000.0, "CNY"),
])

TICKETS = tickets_frame([
    # C1
    ("erp_a", "T1", "100", "closed", "low", False, "2026-01-10T09:00Z", "2026-01-10T13:00Z", 0.8),
    ("erp_a", "T2", "100", "open", "high", True, "2026-06-20T09:00Z", None, None),
    # C2
    ("erp_b", "T3", "100", "closed", "medium", False, "2026-03-01T08:00Z", "2026-03-02T14:00Z", 1.0),
    ("erp_b", "T7", "100", "open", "urgent", True, "2026-07-02T08:00Z", None, None),  # after as_of
    # C3
    ("erp_a", "T4", "200", "closed", "urgent", True, "2025-08-01T00:00Z", "2025-08-03T00:00Z", 0.2),
    ("erp_a", "T5", "200", "closed", "urgent", True, "2025-09-01T00:00Z", "2025-09-02T00:00Z", None),
    ("erp_a", "T6", "200", "closed", "high", False, "2026-04-01T00:00Z", None, 0.4),  # closed, no closed_at
    # quarantined
    ("erp_a", "TX", "999", "open", "urgent", True, "2026-06-01T00:00Z", None, None),
])


def run(settings=DEFAULTS, **overrides) -> EnrichmentResult:
    frames = dict(customers=CUSTOMERS, crosswalk=CROSSWALK, orders=ORDERS, invoices=INVOICES,
                  tickets=TICKETS, fx_rates=FX)
    frames.update(overrides)
    return build_profiles(**frames, settings=settings, as_of=AS_OF)


def profile(result: EnrichmentResult, customer_id: str) -> pd.Series:
    p = result.profiles.set_index("customer_id")
    return p.loc[customer_id]


@pytest.fixture(scope="module")
def result() -> EnrichmentResult:
    return run()


# ---------------------------------------------------------------------------------------------
# shape
# ---------------------------------------------------------------------------------------------
def test_one_profile_per_customer_with_golden_fields(result):
    p = result.profiles
    assert list(p.columns) == PROFILE_COLUMNS
    assert p["customer_id"].tolist() == ["C1", "C2", "C3", "C4"]
    assert (p["reporting_currency"] == "CNY").all()
    assert (p["as_of"] == AS_OF).all()
    c1 = profile(result, "C1")
    assert c1["name"] == "Customer C1" and c1["company_name"] == "C1 贸易有限公司"
    assert c1["city"] == "Shanghai" and c1["country"] == "CN" and bool(c1["is_company"])


def test_inputs_are_not_modified():
    orders, invoices = ORDERS.copy(), INVOICES.copy()
    run()
    pd.testing.assert_frame_equal(orders, ORDERS)
    pd.testing.assert_frame_equal(invoices, INVOICES)


# ---------------------------------------------------------------------------------------------
# value ledger and FX
# ---------------------------------------------------------------------------------------------
def test_ledger_lines_and_signs(result):
    lines = {(r.customer_id, r.source_id): (r.line_type, r.amount_original, r.currency, r.value)
             for r in result.ledger.itertuples()}
    assert lines == {
        # invoices +total, credit note -|total| (stored positive), ticket -cost by priority
        ("C1", "I0"): ("invoice", 6000.0, "CNY", 6000.0),
        ("C1", "I1"): ("invoice", 1000.0, "CNY", 1000.0),
        ("C1", "I2"): ("invoice", 2000.0, "CNY", 2000.0),
        ("C1", "I3"): ("invoice", 1500.0, "CNY", 1500.0),
        ("C1", "I4"): ("credit_note", -200.0, "CNY", -200.0),
        ("C1", "I6"): ("invoice", 100.0, "USD", 720.0),           # 100 USD * 7.2
        ("C1", "T1"): ("cost_to_serve", -50.0, "CNY", -50.0),      # low
        ("C1", "T2"): ("cost_to_serve", -200.0, "CNY", -200.0),    # high
        ("C2", "I9"): ("invoice", 300.0, "USD", 2160.0),           # 300 * 7.2
        ("C2", "I10"): ("invoice", 500.0, "USD", 3600.0),          # 500 * 7.2
        ("C2", "T3"): ("cost_to_serve", -100.0, "CNY", -100.0),    # medium
        ("C3", "I8"): ("invoice", 800.0, "CNY", 800.0),
        ("C3", "T4"): ("cost_to_serve", -400.0, "CNY", -400.0),    # urgent
        ("C3", "T5"): ("cost_to_serve", -400.0, "CNY", -400.0),    # urgent
        ("C3", "T6"): ("cost_to_serve", -200.0, "CNY", -200.0),    # high
        # orders: booked demand at the order's value (not revenue: see the value tests)
        ("C1", "O0"): ("order", 6000.0, "CNY", 6000.0),
        ("C1", "O1"): ("order", 1000.0, "CNY", 1000.0),
        ("C1", "O2"): ("order", 2000.0, "CNY", 2000.0),
        ("C1", "O3"): ("order", 1500.0, "CNY", 1500.0),
        ("C1", "O5"): ("order", 100.0, "USD", 720.0),              # 100 USD * 7.2
        ("C2", "P2"): ("order", 300.0, "USD", 2160.0),
        ("C2", "P3"): ("order", 500.0, "USD", 3600.0),
        ("C3", "Q1"): ("order", 800.0, "CNY", 800.0),
    }
    # Not in the ledger: O4 cancelled, P4 draft, O6 after as_of, P1 unconverted; I5 cancelled, I12 draft,
    # I13 and T7 after as_of, IX/TX/X1 quarantined, I11 unconverted.
    assert list(result.ledger.columns) == ["customer_id", "source_system", "source_id", "line_type",
                                           "occurred_at", "amount_original", "currency", "value"]
    i6 = result.ledger.set_index("source_id").loc["I6"]
    assert i6["occurred_at"] == pd.Timestamp("2026-06-05T00:00Z")
    t2 = result.ledger.set_index("source_id").loc["T2"]
    assert t2["occurred_at"] == pd.Timestamp("2026-06-20T09:00Z")


def test_missing_fx_rate_is_reported_not_guessed(result):
    # P1 (order, 2024-09-15) and I11 (invoice, 2024-09-16) are in USD before the first USD rate
    # (2025-01-01): never converted with the later rate.
    u = result.unconverted
    assert set(zip(u["entity"], u["source_system"], u["source_id"])) == {
        ("order", "erp_b", "P1"), ("invoice", "erp_b", "I11")}
    assert (u["reason"] == "missing_fx_rate").all() and (u["currency"] == "USD").all()
    assert list(u.columns[:5]) == ["source_system", "source_id", "entity", "currency", "reason"]
    assert "I11" not in set(result.ledger["source_id"])
    assert profile(result, "C2")["unconverted_documents"] == 2
    assert profile(result, "C1")["unconverted_documents"] == 0


def test_fx_uses_latest_rate_at_or_before_document_date():
    fx = fx_frame([("USD", "2026-01-01", 7.0), ("USD", "2026-02-22", 7.1), ("USD", "2026-03-01", 7.3),
                   ("EUR", "2026-01-01", 7.8)])
    r = run(fx_rates=fx)
    value = r.ledger.set_index("source_id")["value"]
    assert value["I10"] == pytest.approx(500 * 7.1)   # dated 2026-02-22: rate of that very day, not 7.3
    assert value["I6"] == pytest.approx(100 * 7.3)    # dated 2026-06-05: latest is 2026-03-01
    # I9 (2025-03-12) is now before the first USD rate: unconverted, not converted at 7.0.
    assert {"P1", "P2", "I9", "I11"} == set(r.unconverted["source_id"])
    # A currency with no rate at all is unconverted too.
    gbp = invoices_frame([("erp_a", "G1", "400", "invoice", "paid", "2026-05-01", "2026-05-31",
                           10.0, 10.0, 0.0, "GBP")])
    r = run(invoices=gbp)
    u = r.unconverted[r.unconverted["entity"] == "invoice"]
    assert u[["source_id", "currency", "reason", "customer_id"]].values.tolist() == [
        ["G1", "GBP", "missing_fx_rate", "C4"]]
    assert profile(r, "C4")["lifetime_revenue"] == 0.0


# ---------------------------------------------------------------------------------------------
# sales behaviour
# ---------------------------------------------------------------------------------------------
def test_recency_frequency_monetary(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1: O0, O1, O2, O3, O5 (O4 cancelled, O6 after as_of) -> 5 orders
    assert c1["order_count"] == 5
    assert c1["first_order_at"] == pd.Timestamp("2024-12-01T10:00Z")
    assert c1["last_order_at"] == pd.Timestamp("2026-06-01T10:00Z")
    # 2026-06-01 10:00 -> 2026-07-01 00:00 = 29 d 14 h -> 29 whole days
    assert c1["recency_days"] == 29
    # in W12: O1, O2, O3, O5 (O0 2024-12-01 is older) -> 4
    assert c1["orders_12m"] == 4
    # 6000 + 1000 + 2000 + 1500 + 100*7.2 = 11220; AOV 11220 / 5 = 2244
    assert c1["order_value_total"] == 11220.0
    assert c1["avg_order_value"] == 2244.0
    # web: O1, O2, O5 (3) vs sales_rep: O0, O3 (2)
    assert c1["top_channel"] == "web"

    # C2: P1, P2, P3 (P4 draft) -> 3; P1 has no rate: counted, but not valued
    assert c2["order_count"] == 3
    # 2026-02-20 12:00 -> 2026-07-01: Feb20->Mar1 9 d + Mar..Jun 122 d = 131 d - 12 h -> 130
    assert c2["recency_days"] == 130
    assert c2["orders_12m"] == 1                                  # P3 only
    assert c2["order_value_total"] == 5760.0                      # (300 + 500) * 7.2
    assert c2["avg_order_value"] == 2880.0                        # 5760 / 2 converted orders
    assert c2["top_channel"] == "distributor"

    # C3: Q1 2025-05-01 08:00 -> 2026-07-01: 365 + 61 = 426 d - 8 h -> 425
    assert (c3["order_count"], c3["recency_days"], c3["orders_12m"]) == (1, 425, 0)
    assert (c3["order_value_total"], c3["avg_order_value"]) == (800.0, 800.0)

    # C4: no orders
    assert c4["order_count"] == 0 and c4["orders_12m"] == 0 and c4["order_value_total"] == 0.0
    assert pd.isna(c4["recency_days"]) and pd.isna(c4["avg_order_value"]) and pd.isna(c4["first_order_at"])
    assert pd.isna(c4["top_channel"])


# ---------------------------------------------------------------------------------------------
# relationship value, CLV, segments
# ---------------------------------------------------------------------------------------------
def test_revenue_windows_cost_to_serve_and_net_value(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1 W12:  I1 1000 + I2 2000 + I4 -200 + I3 1500 + I6 720 = 5020;  Wp12: I0 6000
    assert (c1["lifetime_revenue"], c1["revenue_12m"], c1["revenue_prev_12m"]) == (11020.0, 5020.0, 6000.0)
    # tickets T1 low 50 + T2 high 200 = 250, both in W12
    assert (c1["cost_to_serve"], c1["cost_to_serve_12m"]) == (250.0, 250.0)
    assert c1["net_value"] == 10770.0                  # 11020 - 250
    assert c1["net_value_12m"] == 4770.0               # 5020 - 250
    # C2 W12: I10 3600; Wp12: I9 2160; cost T3 medium 100
    assert (c2["lifetime_revenue"], c2["revenue_12m"], c2["revenue_prev_12m"]) == (5760.0, 3600.0, 2160.0)
    assert (c2["cost_to_serve"], c2["net_value"], c2["net_value_12m"]) == (100.0, 5660.0, 3500.0)
    # C3: I8 800 (2025-05-05, Wp12); cost 400 + 400 + 200 = 1000, all in W12
    assert (c3["lifetime_revenue"], c3["revenue_12m"], c3["revenue_prev_12m"]) == (800.0, 0.0, 800.0)
    assert (c3["cost_to_serve"], c3["net_value"], c3["net_value_12m"]) == (1000.0, -200.0, -1000.0)
    assert (c4["lifetime_revenue"], c4["cost_to_serve"], c4["net_value"]) == (0.0, 0.0, 0.0)


def test_clv(result):
    # factor = m * r / (1 + d - r) = 0.3 * 0.8 / (1 + 0.1 - 0.8) = 0.24 / 0.3 = 0.8
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    assert (c1["clv_historical"], c1["clv_predicted"], c1["clv"]) == (10770.0, 4016.0, 14786.0)  # 5020*0.8
    assert (c2["clv_historical"], c2["clv_predicted"], c2["clv"]) == (5660.0, 2880.0, 8540.0)    # 3600*0.8
    assert (c3["clv_historical"], c3["clv_predicted"], c3["clv"]) == (-200.0, 0.0, -200.0)       # churned
    assert (c4["clv_historical"], c4["clv_predicted"], c4["clv"]) == (0.0, 0.0, 0.0)


def test_clv_prediction_is_zero_for_flagged_customers():
    # threshold 0.4: C1's churn risk 0.458 is now flagged -> clv_predicted 0, clv = historical
    r = run(EnrichmentSettings(churn_flag_threshold=0.4))
    c1 = profile(r, "C1")
    assert bool(c1["churn_flag"]) and c1["clv_predicted"] == 0.0 and c1["clv"] == 10770.0
    # other parameters: m 0.5, r 0.6, d 0.2 -> 0.5 * 0.6 / (1 + 0.2 - 0.6) = 0.3 / 0.6 = 0.5; C2: 3600 * 0.5
    r = run(EnrichmentSettings(margin_rate=0.5, retention_rate=0.6, discount_rate=0.2))
    assert profile(r, "C2")["clv_predicted"] == 1800.0


def test_segments(result):
    seg = result.profiles.set_index("customer_id")["segment"].to_dict()
    # positive net value: C1 10770, C2 5660 -> n = 2, top ceil(0.2 * 2) = 1 -> C1
    # C2: prev 2160 > 0 and 3600 >= 1.25 * 2160 = 2700 -> growth_potential
    # C3: net -200 < 0 -> below_zero; C4: net 0, no revenue -> standard
    assert seg == {"C1": "most_valuable", "C2": "growth_potential", "C3": "below_zero", "C4": "standard"}


def test_changed_growth_rate_changes_segment():
    # growth_rate 0.7: 3600 < 1.7 * 2160 = 3672 -> C2 is standard
    r = run(EnrichmentSettings(growth_rate=0.7))
    assert profile(r, "C2")["segment"] == "standard"
    # growth_rate 2/3 rounded: 1.6666 * 2160 = 3599.86 <= 3600 -> still growth
    r = run(EnrichmentSettings(growth_rate=0.6666))
    assert profile(r, "C2")["segment"] == "growth_potential"


def test_top_share_tie_break_by_customer_id():
    # K1, K2, K3 each invoice 1000, K0 500; top_share 0.5 of n = 4 positive -> ceil(2.0) = 2
    # ranking: 1000 K1, 1000 K2, 1000 K3 (tie -> by id), 500 K0 -> K1 and K2 are most_valuable.
    # K3, K0: no previous-year revenue and no orders (tenure unknown) -> standard.
    ids = ["K3", "K1", "K0", "K2"]
    customers = customers_frame(ids)
    crosswalk = pd.DataFrame({"source_system": "erp_a", "source_id": ids, "customer_id": ids})
    invoices = invoices_frame([
        ("erp_a", f"V{i}", i, "invoice", "paid", "2026-05-01", "2026-05-31", amount, amount, 0.0, "CNY")
        for i, amount in (("K3", 1000.0), ("K1", 1000.0), ("K0", 500.0), ("K2", 1000.0))])
    r = run(EnrichmentSettings(top_share=0.5), customers=customers, crosswalk=crosswalk, invoices=invoices,
            orders=ORDERS.iloc[0:0], tickets=TICKETS.iloc[0:0])
    seg = r.profiles.set_index("customer_id")["segment"].to_dict()
    assert seg == {"K3": "standard", "K1": "most_valuable", "K0": "standard", "K2": "most_valuable"}
    assert r.profiles["customer_id"].tolist() == ids       # input order kept
    # top_share 0.2 -> ceil(0.8) = 1 -> only K1
    r = run(EnrichmentSettings(top_share=0.2), customers=customers, crosswalk=crosswalk, invoices=invoices,
            orders=ORDERS.iloc[0:0], tickets=TICKETS.iloc[0:0])
    assert r.profiles.set_index("customer_id")["segment"].eq("most_valuable").sum() == 1
    assert profile(r, "K1")["segment"] == "most_valuable"


def test_top_count_is_immune_to_float_noise():
    assert 0.07 * 100 > 7                   # 7.000000000000001 in binary floating point
    assert top_count(0.07, 100) == 7
    assert top_count(0.2, 2) == 1           # ceil(0.4)
    assert top_count(0.2, 0) == 0
    assert top_count(1.0, 3) == 3


def test_new_customer_is_growth_potential():
    # N1: old big customer (most_valuable). N2: first order 2026-03-01, invoice 500 on 2026-03-02,
    # no previous-year revenue, tenure 2026-03-01 -> 2026-07-01 = 31 + 30 + 31 + 30 = 122 d < 365.
    ids = ["N1", "N2"]
    crosswalk = pd.DataFrame({"source_system": "erp_a", "source_id": ids, "customer_id": ids})
    orders = orders_frame([("erp_a", "A1", "N1", "done", "2024-01-10T00:00Z", 9000.0, "CNY", "web"),
                           ("erp_a", "A2", "N2", "done", "2026-03-01T00:00Z", 500.0, "CNY", "web")])
    invoices = invoices_frame([
        ("erp_a", "B1", "N1", "invoice", "paid", "2026-01-10", "2026-02-10", 9000.0, 9000.0, 0.0, "CNY"),
        ("erp_a", "B2", "N2", "invoice", "paid", "2026-03-02", "2026-04-01", 500.0, 500.0, 0.0, "CNY")])
    frames = dict(customers=customers_frame(ids), crosswalk=crosswalk, orders=orders, invoices=invoices,
                  tickets=TICKETS.iloc[0:0])
    r = run(**frames)
    assert profile(r, "N2")["tenure_days"] == 122
    assert r.profiles.set_index("customer_id")["segment"].to_dict() == {
        "N1": "most_valuable", "N2": "growth_potential"}
    # new_customer_days 100 < 122 -> N2 is no longer "new"
    r = run(EnrichmentSettings(new_customer_days=100), **frames)
    assert profile(r, "N2")["segment"] == "standard"


# ---------------------------------------------------------------------------------------------
# credit
# ---------------------------------------------------------------------------------------------
def test_credit(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1 open: I2 1500 (due 2026-02-04 < 2026-07-01, overdue), I3 1500 (due 07-10), I6 100 USD = 720 (due 07-05)
    assert (c1["open_receivables"], c1["overdue_amount"]) == (3720.0, 1500.0)
    assert c1["overdue_share"] == pytest.approx(0.4032)       # 1500 / 3720 = 0.40322...
    assert c1["credit_class"] == "C"                          # 0.25 < 0.4032 <= 0.5
    assert c1["avg_days_overdue"] == 147.0                    # 2026-02-04 -> 2026-07-01: 24 + 1 + 122
    assert c1["dso_days"] == 270.48                           # 3720 / (5020 / 365) = 1357800 / 5020
    # C2 open: I10 500 USD = 3600, due 2026-03-24 -> overdue; share 1 -> D
    assert (c2["open_receivables"], c2["overdue_amount"], c2["overdue_share"]) == (3600.0, 3600.0, 1.0)
    assert c2["credit_class"] == "D"
    assert c2["avg_days_overdue"] == 99.0                     # Mar24 -> Apr1 8 d + Apr..Jun 91 d
    assert c2["dso_days"] == 365.0                            # 3600 / (3600 / 365)
    # C3 nothing open, revenue_12m 0 -> class A, DSO null; C4 no invoices -> A
    assert (c3["open_receivables"], c3["overdue_share"], c3["credit_class"]) == (0.0, 0.0, "A")
    assert pd.isna(c3["dso_days"]) and pd.isna(c3["avg_days_overdue"])
    assert c4["credit_class"] == "A" and pd.isna(c4["dso_days"])


def test_credit_thresholds_are_settings():
    # b = 0.45: C1 share 0.4032 <= 0.45 -> B
    assert profile(run(EnrichmentSettings(credit_b_max_overdue_share=0.45)), "C1")["credit_class"] == "B"
    # c = 0.4: share 0.4032 > 0.4 -> D
    s = EnrichmentSettings(credit_b_max_overdue_share=0.1, credit_c_max_overdue_share=0.4)
    assert profile(run(s), "C1")["credit_class"] == "D"


# ---------------------------------------------------------------------------------------------
# service
# ---------------------------------------------------------------------------------------------
def test_service_metrics(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1: T1 closed in 4 h (sat 0.8), T2 open complaint
    assert (c1["tickets_total"], c1["tickets_open"], c1["open_complaints"]) == (2, 1, 1)
    assert (c1["avg_resolution_hours"], c1["complaint_share"], c1["satisfaction"]) == (4.0, 0.5, 0.8)
    # C2: T3 08:00 -> next day 14:00 = 30 h; T7 after as_of is ignored
    assert (c2["tickets_total"], c2["tickets_open"], c2["open_complaints"]) == (1, 0, 0)
    assert (c2["avg_resolution_hours"], c2["complaint_share"], c2["satisfaction"]) == (30.0, 0.0, 1.0)
    # C3: T4 48 h, T5 24 h, T6 closed without closed_at (not timed) -> (48 + 24) / 2 = 36
    #     complaints T4, T5 -> 2/3 = 0.667; satisfaction (0.2 + 0.4) / 2 = 0.3 (T5 has none)
    assert (c3["tickets_total"], c3["tickets_open"]) == (3, 0)
    assert (c3["avg_resolution_hours"], c3["complaint_share"], c3["satisfaction"]) == (36.0, 0.667, 0.3)
    # C4: no tickets
    assert (c4["tickets_total"], c4["tickets_open"]) == (0, 0)
    assert pd.isna(c4["avg_resolution_hours"]) and pd.isna(c4["complaint_share"]) and pd.isna(c4["satisfaction"])


def test_ticket_closed_after_as_of_was_open_at_as_of():
    tickets = tickets_frame([
        ("erp_a", "T8", "100", "closed", "low", True, "2026-06-28T00:00Z", "2026-07-03T00:00Z", 0.5)])
    c1 = profile(run(tickets=tickets), "C1")
    assert (c1["tickets_total"], c1["tickets_open"], c1["open_complaints"]) == (1, 1, 1)
    assert pd.isna(c1["avg_resolution_hours"])


def test_unknown_ticket_priority_uses_configured_priority():
    tickets = tickets_frame([("erp_a", "T9", "400", "open", None, False, "2026-06-01T00:00Z", None, None),
                             ("erp_a", "T10", "400", "open", "p1", False, "2026-06-02T00:00Z", None, None)])
    assert profile(run(tickets=tickets), "C4")["cost_to_serve"] == 200.0           # 2 x medium 100
    s = EnrichmentSettings(unknown_priority_as="urgent")
    assert profile(run(s, tickets=tickets), "C4")["cost_to_serve"] == 800.0        # 2 x urgent 400


def test_cost_to_serve_amounts_are_settings():
    s = EnrichmentSettings(cost_to_serve_by_priority={"low": 10, "medium": 20, "high": 30, "urgent": 40})
    c3 = profile(run(s), "C3")
    # 40 + 40 + 30 = 110; net 800 - 110 = 690 > 0: C3 is no longer below zero.
    assert (c3["cost_to_serve"], c3["net_value"]) == (110.0, 690.0)
    assert c3["segment"] != "below_zero"


# ---------------------------------------------------------------------------------------------
# loyalty, churn, demand
# ---------------------------------------------------------------------------------------------
def test_loyalty(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1 tenure: 2024-12-01 10:00 -> 2026-07-01: 365 + 212 = 577 d - 10 h -> 576
    assert (c1["tenure_days"], bool(c1["repeat_purchase"])) == (576, True)
    # active months in W12: 2025-10, 2026-01, 2026-03, 2026-06 -> 4 / 12
    assert c1["active_months_share_12m"] == 0.333
    # C2 tenure: 2024-09-15 12:00 -> 2026-07-01: 365 + 273 + 16 = 654 d - 12 h -> 653
    assert (c2["tenure_days"], bool(c2["repeat_purchase"]), c2["active_months_share_12m"]) == (653, True, 0.083)
    assert (c3["tenure_days"], bool(c3["repeat_purchase"]), c3["active_months_share_12m"]) == (425, False, 0.0)
    assert pd.isna(c4["tenure_days"]) and not bool(c4["repeat_purchase"])


def test_churn_risk_components_and_flag(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1 gaps: O0->O1 304 d, O1->O2 92, O2->O3 59, O3->O5 92 -> median(59, 92, 92, 304) = 92
    #   recency risk 29 / (2 * 92) = 0.15761; + open complaint 0.2; + falling value (5020 < 6000) 0.1
    #   = 0.45761 -> 0.458 < 0.7 -> not flagged
    assert c1["expected_gap_days"] == 92.0
    assert c1["churn_risk"] == 0.458 and not bool(c1["churn_flag"])
    # C2 gaps: P1->P2 176 d, P2->P3 347 d -> median 261.5 (3 orders >= 3: own rhythm)
    #   130 / (2 * 261.5) = 130 / 523 = 0.24857; no open complaint; rising value -> 0.249
    assert c2["expected_gap_days"] == 261.5
    assert c2["churn_risk"] == 0.249 and not bool(c2["churn_flag"])
    # C3: 1 order -> default gap 90; 425 / 180 = 2.36 -> clipped 1; + falling 0.1 -> clipped 1.0
    assert c3["expected_gap_days"] == 90.0
    assert c3["churn_risk"] == 1.0 and bool(c3["churn_flag"])
    # C4: no orders, tenure unknown -> 1.0
    assert c4["churn_risk"] == 1.0 and bool(c4["churn_flag"])


def test_churn_parameters():
    # penalties off: C1 = 29 / 184 = 0.1576 -> 0.158
    s = EnrichmentSettings(open_complaint_penalty=0.0, falling_value_penalty=0.0)
    assert profile(run(s), "C1")["churn_risk"] == 0.158
    # churn_gap_multiple 1: C1 = 29 / 92 = 0.31522 + 0.2 + 0.1 = 0.61522 -> 0.615
    assert profile(run(EnrichmentSettings(churn_gap_multiple=1.0)), "C1")["churn_risk"] == 0.615
    # own rhythm only from 4 orders: C2 (3 orders) falls back to the default gap 90 -> 130 / 180 = 0.722
    #   -> flagged at 0.7, so C2's clv_predicted becomes 0
    c2 = profile(run(EnrichmentSettings(min_orders_for_own_rhythm=4)), "C2")
    assert (c2["expected_gap_days"], c2["churn_risk"], bool(c2["churn_flag"])) == (90.0, 0.722, True)
    assert c2["clv_predicted"] == 0.0
    # default gap 300 for C3: 425 / 600 = 0.70833 + falling 0.1 = 0.80833 -> 0.808
    assert profile(run(EnrichmentSettings(default_purchase_gap_days=300)), "C3")["churn_risk"] == 0.808


def test_next_period_expectations(result):
    c1, c2, c3, c4 = (profile(result, c) for c in ("C1", "C2", "C3", "C4"))
    # C1: 4 / 12 * 3 = 1.0 order; 1.0 * AOV 2244 = 2244
    assert (c1["expected_orders_next_period"], c1["expected_spend_next_period"]) == (1.0, 2244.0)
    # C2: 1 / 12 * 3 = 0.25; 0.25 * 2880 = 720
    assert (c2["expected_orders_next_period"], c2["expected_spend_next_period"]) == (0.25, 720.0)
    assert (c3["expected_orders_next_period"], c3["expected_spend_next_period"]) == (0.0, 0.0)
    assert (c4["expected_orders_next_period"], c4["expected_spend_next_period"]) == (0.0, 0.0)
    # 6 months: C1 4 / 12 * 6 = 2.0; 2 * 2244 = 4488
    c1 = profile(run(EnrichmentSettings(next_period_months=6)), "C1")
    assert (c1["expected_orders_next_period"], c1["expected_spend_next_period"]) == (2.0, 4488.0)


def test_as_of_moves_the_windows():
    # as_of 2026-01-01: O2 (2026-01-01 10:00), O3, O5, I4, I3, I6, I10, T2, T3, T6 have not happened yet.
    # C1 W12 = (2025-01-01, 2026-01-01]: I1 1000; Wp12: I0 6000 -> revenue 1000 vs 6000
    r = build_profiles(CUSTOMERS, CROSSWALK, ORDERS, INVOICES, TICKETS, FX, DEFAULTS,
                       pd.Timestamp("2026-01-01T00:00Z"))
    c1 = profile(r, "C1")
    assert (c1["order_count"], c1["revenue_12m"], c1["revenue_prev_12m"]) == (2, 1000.0, 6000.0)
    # I2 (2026-01-05) is in the future: nothing open. T1 (2026-01-10) too: no tickets.
    assert (c1["open_receivables"], c1["tickets_total"]) == (0.0, 0)
    # last order O1 2025-10-01 10:00 -> 2026-01-01: 91 d 14 h -> 91
    assert c1["recency_days"] == 91


def test_as_of_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        build_profiles(CUSTOMERS, CROSSWALK, ORDERS, INVOICES, TICKETS, FX, DEFAULTS, pd.Timestamp("2026-07-01"))


def test_crosswalk_must_map_each_source_record_once():
    crosswalk = pd.concat([CROSSWALK, pd.DataFrame([("erp_a", "100", "C4")], columns=CROSSWALK.columns)])
    with pytest.raises(ValueError, match="more than once"):
        run(crosswalk=crosswalk)


def test_no_documents_at_all():
    r = run(orders=ORDERS.iloc[0:0], invoices=INVOICES.iloc[0:0], tickets=TICKETS.iloc[0:0])
    assert len(r.profiles) == 4 and r.ledger.empty and r.unconverted.empty
    assert (r.profiles["segment"] == "standard").all() and (r.profiles["churn_risk"] == 1.0).all()
    assert (r.profiles["credit_class"] == "A").all()


# ---------------------------------------------------------------------------------------------
# settings and config files
# ---------------------------------------------------------------------------------------------
def test_shipped_config_loads_and_matches_defaults():
    assert load_settings() == EnrichmentSettings()
    assert load_settings(REPO / "config" / "enrichment.yaml").reporting_currency == "CNY"


@pytest.mark.parametrize("snippet, fragment", [
    ("top_share: 0", "top_share"),
    ("top_share: 1.5", "top_share"),
    ("top_share: yes", "top_share"),
    ("retention_rate: 1.0", "retention_rate"),
    ("margin_rate: -0.1", "margin_rate"),
    ("discount_rate: abc", "discount_rate"),
    ("growth_rate: -0.5", "growth_rate"),
    ("reporting_currency: yuan", "reporting_currency"),
    ("cost_to_serve_by_priority: {urgent: -5}", "cost_to_serve_by_priority.urgent"),
    ("cost_to_serve_by_priority: {critical: 500}", "cost_to_serve_by_priority.critical"),
    ("unknown_priority_as: critical", "unknown_priority_as"),
    ("churn_treshold: 0.5", "churn_treshold"),
    ("churn_flag_threshold: 0", "churn_flag_threshold"),
    ("min_orders_for_own_rhythm: 1", "min_orders_for_own_rhythm"),
    ("default_purchase_gap_days: 0", "default_purchase_gap_days"),
    ("next_period_months: 0", "next_period_months"),
    ("credit_b_max_overdue_share: 0.6", "credit_b_max_overdue_share must be <= credit_c_max_overdue_share"),
])
def test_invalid_settings_name_the_field(tmp_path, snippet, fragment):
    path = tmp_path / "enrichment.yaml"
    path.write_text(snippet + "\n", encoding="utf-8")
    with pytest.raises(pydantic.ValidationError) as excinfo:
        load_settings(path)
    assert fragment in str(excinfo.value)


def test_settings_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "enrichment.yaml"
    path.write_text("- top_share\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        load_settings(path)
    path.write_text("", encoding="utf-8")
    assert load_settings(path) == EnrichmentSettings()
    path.write_text("top_share: 0.5\n", encoding="utf-8")
    assert load_settings(path) == EnrichmentSettings(top_share=0.5)


def test_shipped_fx_rates():
    fx = load_fx_rates(REPO / "config" / "fx_rates.csv")
    assert list(fx.columns) == ["currency", "rate_date", "rate"]
    assert set(fx["currency"]) == {"USD", "EUR"}
    for currency, low, high in (("USD", 7.0, 7.3), ("EUR", 7.6, 8.0)):
        rates = fx.loc[fx["currency"] == currency]
        assert len(rates) == 48                                   # monthly 2023-01 .. 2026-12
        assert rates["rate_date"].min() == pd.Timestamp("2023-01-01")
        assert rates["rate_date"].max() == pd.Timestamp("2026-12-01")
        assert (rates["rate_date"].dt.day == 1).all()
        assert rates["rate"].between(low, high).all()


@pytest.mark.parametrize("body, fragment", [
    ("currency,rate_date\nUSD,2025-01-01\n", "missing column"),
    ("currency,rate_date,rate\nUSD,2025/01/01,7.2\n", "YYYY-MM-DD"),
    ("currency,rate_date,rate\nUSD,2025-01-01,-7.2\n", "positive"),
    ("currency,rate_date,rate\nUSD,2025-01-01,x\n", "positive"),
    ("currency,rate_date,rate\nUSD,2025-01-01,7.2\nUSD,2025-01-01,7.3\n", "duplicated"),
    ("currency,rate_date,rate\nDOLLAR,2025-01-01,7.2\n", "ISO 4217"),
])
def test_invalid_fx_rates(tmp_path, body, fragment):
    path = tmp_path / "fx.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=fragment):
        load_fx_rates(path)


def test_money_is_rounded_to_cents():
    fx = fx_frame([("USD", "2025-01-01", 7.123456)])
    r = run(fx_rates=fx)
    value = r.ledger.set_index("source_id")["value"]
    assert value["I6"] == 712.35                                  # 100 * 7.123456 = 712.3456
    assert profile(r, "C1")["lifetime_revenue"] == 11012.35       # 11020 - 720 + 712.35
    assert math.isclose(profile(r, "C1")["open_receivables"], 3712.35)


def test_no_negative_zero_in_money():
    # customers without tickets must show cost_to_serve 0.0, not -0.0 (it ends up in CRM JSON)
    r = run(tickets=TICKETS.iloc[0:0])
    costs = r.profiles["cost_to_serve"].tolist()
    assert all(math.copysign(1.0, c) == 1.0 for c in costs)


# ---------------------------------------------------------------------------------------------
# payments (computed by hand below)
# ---------------------------------------------------------------------------------------------
def payments_frame(rows):
    # row: (system, id, customer_source_id, invoice_source_id, status, paid_date, amount, currency)
    keys = ("source_system", "source_id", "customer_source_id", "invoice_source_id", "status", "paid_date",
            "amount", "currency")
    return _frame(PAYMENT, [dict(zip(keys, r)) for r in rows], timestamps=("updated_at",), dates=("paid_date",))


PAYMENTS = payments_frame([
    # C1: I0 due 2025-01-02, settled 2025-01-10 -> 8 days late
    ("erp_a", "PA1", "100", "I0", "posted", "2025-01-10", 6000.0, "CNY"),
    # C1: I1 due 2025-11-04, paid in two parts, the last on the due date -> on time (0 days)
    ("erp_a", "PA2", "100", "I1", "posted", "2025-10-20", 400.0, "CNY"),
    ("erp_a", "PA3", "100", "I1", "posted", "2025-11-04", 600.0, "CNY"),
    # C1: part of the open I2 (not settled: no days late, but cash received)
    ("erp_a", "PA4", "100", "I2", "posted", "2026-02-01", 500.0, "CNY"),
    # C1: after as_of -> ignored
    ("erp_a", "PA5", "100", "I3", "posted", "2026-07-05", 1500.0, "CNY"),
    # C2: I9 due 2025-04-11, settled 2025-05-11 -> 30 days late; 300 USD * 7.2 = 2160 CNY
    ("erp_b", "PB1", "100", "I9", "posted", "2025-05-11", 300.0, "USD"),
    # C2: I11 was issued before any USD rate: neither the invoice nor its payment can be converted
    ("erp_b", "PB2", "100", "I11", "posted", "2024-10-10", 200.0, "USD"),
    # C3: a cancelled payment does not count (I8 stays without a settlement date)
    ("erp_a", "PC1", "200", "I8", "cancelled", "2025-06-01", 800.0, "CNY"),
    # quarantined customer record -> ignored
    ("erp_a", "PX1", "999", "IX", "posted", "2026-06-02", 50000.0, "CNY"),
])


@pytest.fixture(scope="module")
def paid() -> EnrichmentResult:
    return run(payments=PAYMENTS)


def test_payment_behaviour_by_hand(paid):
    c1, c2, c3, c4 = (profile(paid, c) for c in ("C1", "C2", "C3", "C4"))
    assert c1["avg_days_paid_late"] == 4.0 and c1["paid_on_time_share"] == 0.5  # mean(8, 0); 1 of 2 on time
    assert c1["payments_received"] == 7500.0  # 6000 + 400 + 600 + 500 (PA5 is after as_of)
    assert c2["avg_days_paid_late"] == 30.0 and c2["paid_on_time_share"] == 0.0
    assert c2["payments_received"] == 2160.0  # PB2 has no rate
    assert pd.isna(c3["avg_days_paid_late"]) and pd.isna(c3["paid_on_time_share"]) and c3["payments_received"] == 0.0
    assert pd.isna(c4["avg_days_paid_late"]) and c4["payments_received"] == 0.0


def test_payments_are_ledger_lines_but_neither_revenue_nor_cost(paid, result):
    lines = paid.ledger[paid.ledger["line_type"] == "payment"]
    assert sorted(lines["source_id"]) == ["PA1", "PA2", "PA3", "PA4", "PB1"]
    assert lines.set_index("source_id").at["PB1", "value"] == 2160.0
    for column in ("lifetime_revenue", "cost_to_serve", "net_value", "clv", "segment", "credit_class"):
        assert list(paid.profiles[column]) == list(result.profiles[column]), column


def test_unconvertible_payment_is_reported(paid, result):
    extra = paid.unconverted[paid.unconverted["entity"] == "payment"]
    assert list(extra["source_id"]) == ["PB2"] and list(extra["reason"]) == ["missing_fx_rate"]
    assert profile(paid, "C2")["unconverted_documents"] == profile(result, "C2")["unconverted_documents"] + 1


# ---------------------------------------------------------------------------------------------
# product preferences from order lines (computed by hand below)
# ---------------------------------------------------------------------------------------------
def order_lines_frame(rows):
    # row: (system, id, customer_source_id, order_source_id, category, line_amount)
    keys = ("source_system", "source_id", "customer_source_id", "order_source_id", "category", "line_amount")
    return _frame(ORDER_LINE, [dict(zip(keys, r)) for r in rows], timestamps=("updated_at",))


ORDER_LINES = order_lines_frame([
    # C1: Tea 4000 + 1000 = 5000; Electronics 2000 + 100 USD * 7.2 = 2720; Furniture 2000
    ("erp_a", "L1", "100", "O0", "Tea", 4000.0),
    ("erp_a", "L2", "100", "O0", "Furniture", 2000.0),
    ("erp_a", "L3", "100", "O1", "Tea", 1000.0),
    ("erp_a", "L4", "100", "O2", "Electronics", 2000.0),
    ("erp_b", "L5", "300", "O5", "Electronics", 100.0),
    ("erp_a", "L6", "100", "O4", "Machinery", 5000.0),   # cancelled order: ignored
    ("erp_a", "L7", "100", "O6", "Machinery", 9000.0),   # order after as_of: ignored
    # C2: P1 has no USD rate (ignored); Textiles 300 + 200 USD = 3600 CNY, Packaging 300 USD = 2160 CNY
    ("erp_b", "M1", "100", "P1", "Packaging", 200.0),
    ("erp_b", "M2", "100", "P2", "Textiles", 300.0),
    ("erp_b", "M3", "100", "P3", "Textiles", 200.0),
    ("erp_b", "M4", "100", "P3", "Packaging", 300.0),
    # C3: a line without a category says nothing about preferences
    ("erp_a", "N1", "200", "Q1", None, 800.0),
])


def test_top_product_categories_by_hand():
    r = run(order_lines=ORDER_LINES)
    c1, c2, c3 = (profile(r, c) for c in ("C1", "C2", "C3"))
    assert c1["top_categories"] == "Tea; Electronics; Furniture"
    assert c1["top_category_share"] == 0.5144  # 5000 / (5000 + 2720 + 2000)
    assert c2["top_categories"] == "Textiles; Packaging" and c2["top_category_share"] == 0.625  # 3600 / 5760
    assert pd.isna(c3["top_categories"]) and pd.isna(c3["top_category_share"])
    assert pd.isna(profile(run(), "C1")["top_categories"])  # a source without order lines: no preference
    one = run(settings=DEFAULTS.model_copy(update={"top_categories_count": 1}), order_lines=ORDER_LINES)
    assert profile(one, "C1")["top_categories"] == "Tea" and profile(one, "C1")["top_category_share"] == 0.5144


def test_a_stored_profile_reads_back_as_json_loads_gives_it():
    """The profile gate and the push read stored profiles through msgspec: the same dict as `json.loads`, text in
    any script, floats to the last digit, big integers; a NaN (which `json.dumps` writes and msgspec refuses) too."""
    import json
    import math

    from erp2crm.profile_json import profile_from_text, profile_text

    profile = {"customer_id": "C-张伟", "name": "Zhang Wei 張偉 \"quoted\"\n", "clv": 0.1 + 0.2, "order_count": 2**62,
               "first_order_at": pd.Timestamp("2026-01-02 03:04:05", tz="UTC"), "segment": None, "churn_flag": False,
               "top_categories": "a; b", "shares": [0.25, None]}
    text = profile_text(profile)
    assert profile_from_text(text) == json.loads(text)
    assert profile_from_text(text)["first_order_at"] == "2026-01-02 03:04:05+00:00"
    with_nan = json.dumps({"clv": float("nan")})
    assert math.isnan(profile_from_text(with_nan)["clv"])
