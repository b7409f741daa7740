"""Quality gates: every bad row is quarantined with its reason code(s), good rows pass."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from erp2crm.canonical import ENTITIES
from quality import SUITE_NAMES, GateResult, validate
from quality.currencies import ACCEPTED_CURRENCIES, ISO_4217_ACTIVE

UTC = "UTC"
T0 = pd.Timestamp("2026-01-05 09:00", tz=UTC)
REASON_COLUMNS = ["reason_code", "expectation", "reason"]

UNIFIED_COLUMNS = ["customer_id", "name", "email", "phone", "tax_id", "country", "is_company", "source_count"]
PROFILE_COLUMNS = ["customer_id", "name", "reporting_currency", "lifetime_revenue", "net_value", "clv",
                   "segment", "churn_risk", "credit_class", "order_count"]

KNOWN = pd.DataFrame({"source_system": ["odoo", "odoo", "erpnext"], "source_id": ["c1", "c2", "c1"]})


# --- frame builders: typed like the staging frames the gates receive --------------------------

def _typed(rows: list[dict], columns: list[str], dates=(), timestamps=(), floats=(), bools=()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in timestamps:
        df[c] = pd.to_datetime(df[c], utc=True)
    for c in dates:
        df[c] = pd.to_datetime(df[c])
    for c in floats:
        df[c] = df[c].astype(float)
    for c in bools:
        df[c] = df[c].astype(object)
    # A non-range index: results must keep the caller's labels.
    df.index = [f"r{i}" for i in range(len(df))]
    return df


def _frame(entity: str, rows: list[dict]) -> pd.DataFrame:
    fields = ENTITIES[entity].fields
    return _typed(rows, list(fields),
                  dates=[f for f, k in fields.items() if k == "date"],
                  timestamps=[f for f, k in fields.items() if k == "timestamp"],
                  floats=[f for f, k in fields.items() if k == "float"],
                  bools=[f for f, k in fields.items() if k == "boolean"])


def customer(sid: str, **over) -> dict:
    row = dict(source_system="odoo", source_id=sid, name=f"Customer {sid}", given_name="Ada",
               family_name="Lovelace", company_name=None, is_company=False, email=f"ada{sid}@example.com",
               phone="+44 20 7946 0000", tax_id=None, street="1 Main St", city="London", postcode="N1",
               region=None, country="GB", birth_date="1990-12-10", is_active=True, updated_at=T0)
    row.update(over)
    return row


def order(sid: str, **over) -> dict:
    row = dict(source_system="odoo", source_id=sid, customer_source_id="c1", order_number=f"SO{sid}",
               status="confirmed", ordered_at=T0, total_amount=100.0, currency="EUR", channel="web",
               updated_at=T0)
    row.update(over)
    return row


def invoice(sid: str, **over) -> dict:
    row = dict(source_system="odoo", source_id=sid, customer_source_id="c2", invoice_number=f"INV{sid}",
               kind="invoice", status="open", invoice_date="2026-01-05", due_date="2026-02-04",
               total_amount=119.0, paid_amount=19.0, outstanding_amount=100.0, currency="EUR",
               updated_at=T0)
    row.update(over)
    return row


def ticket(sid: str, **over) -> dict:
    row = dict(source_system="erpnext", source_id=sid, customer_source_id="c1", ticket_number=f"T{sid}",
               subject="Broken", status="closed", priority="high", is_complaint=True, opened_at=T0,
               closed_at=T0 + pd.Timedelta(hours=5), satisfaction=0.8, updated_at=T0)
    row.update(over)
    return row


def unified(cid, **over) -> dict:
    row = dict(customer_id=cid, name=f"Customer {cid}", email=f"c{cid}@example.org", phone=None,
               tax_id=None, country="DE", is_company=True, source_count=2)
    row.update(over)
    return row


def profile(cid, **over) -> dict:
    row = dict(customer_id=cid, name=f"Customer {cid}", reporting_currency="EUR", lifetime_revenue=1000.0,
               net_value=900.0, clv=1500.0, segment="standard", churn_risk=0.2, credit_class="B",
               order_count=3)
    row.update(over)
    return row


def check(result: GateResult, df: pd.DataFrame, expected: dict[str, str]) -> None:
    """`expected`: index label -> exact reason_code for every row that must be quarantined."""
    assert result.rows_in == len(df) == result.rows_passed + result.rows_quarantined
    got = result.quarantined["reason_code"].to_dict()
    assert got == expected, result.quarantined[["reason_code", "reason"]].to_string()
    assert set(result.passed.index) == set(df.index) - set(expected)
    # Same columns as the input (no helper columns), plus the reason columns for quarantined rows.
    assert list(result.passed.columns) == list(df.columns)
    assert list(result.quarantined.columns) == list(df.columns) + REASON_COLUMNS
    pd.testing.assert_frame_equal(result.passed, df.loc[result.passed.index])
    pd.testing.assert_frame_equal(result.quarantined[list(df.columns)], df.loc[result.quarantined.index])
    for _, q in result.quarantined.iterrows():
        codes, types = q["reason_code"].split(";"), q["expectation"].split(";")
        assert codes == sorted(codes) and len(codes) == len(types)
        assert all(t.startswith("expect_") for part in types for t in part.split("+"))
        assert q["reason"] and "{" not in q["reason"]


# --- per-suite tests ---------------------------------------------------------------------------

def test_customer_record_suite():
    rows = [
        customer("1"),
        customer("2", email="  Ada.Lovelace+crm@Example.CO.UK "),  # whitespace/upper case: fine
        customer("3", email=None),  # no e-mail: fine
        customer("4", email=""),  # blank e-mail means "no e-mail", not malformed
        customer("5", updated_at=None),  # warn only
        customer(None),  # r5
        customer("   ", email="ada6@example.com"),  # r6
        customer("dup"), customer("dup"),  # r7, r8
        customer("9", name=None),  # r9
        customer("10", name="   "),  # r10
        customer("11", email="ada.example.com"),  # r11
        customer("12", email="ada@localhost"),  # r12
        customer("13", street="x" * 256),  # r13
        customer("14", name=None, email="a@@b.com"),  # r14: two defects
        customer("15", name="ü" * 255, email="zoë@bücher.example"),  # r15: 255 chars and Unicode: fine
    ]
    df = _frame("customer_record", rows)
    result = validate(df, "customer_record")
    check(result, df, {
        "r5": "missing_key", "r6": "missing_key",
        "r7": "duplicate_key", "r8": "duplicate_key",
        "r9": "missing_name", "r10": "missing_name",
        "r11": "malformed_email", "r12": "malformed_email",
        "r13": "overlong_text",
        "r14": "malformed_email;missing_name",
    })
    q = result.quarantined
    assert q.loc["r14", "expectation"] == ("expect_column_values_to_match_regex;"
                                           "expect_column_values_to_not_be_null")
    assert q.loc["r14", "reason"] == "email 'a@@b.com' is malformed; name is missing"
    assert q.loc["r13", "reason"] == "street '" + "x" * 79 + "…' is longer than 255 characters"
    assert q.loc["r7", "reason"] == "key (odoo, dup) occurs more than once"
    assert result.warnings == [{"reason_code": "missing_updated_at",
                                "expectation": "expect_column_values_to_not_be_null", "rows": 1}]


def test_order_suite():
    rows = [
        order("1"), order("2", customer_source_id="c2", total_amount=0.0, currency="JPY", status="done"),
        order(None),  # r2
        order("1"),  # r3 duplicates r0
        order("4", total_amount=-10.0),  # r4
        order("5", total_amount=np.nan),  # r5
        order("6", currency="ABC"),  # r6
        order("7", currency=None),  # r7
        order("8", status="shipped"),  # r8
        order("9", customer_source_id="c9"),  # r9
        order("10", customer_source_id=None),  # r10
        order("11", ordered_at=None),  # r11
        order("12", total_amount=-5.0, currency="eur"),  # r12: two defects
        order("13", source_system="erpnext", customer_source_id="c2"),  # r13: c2 is not an erpnext customer
        order("14", status="draft", total_amount=None),  # r14: a draft without a total yet (Tryton): fine
        order("15", status=None, total_amount=None),  # r15
    ]
    df = _frame("order", rows)
    result = validate(df, "order", known_customers=KNOWN)
    check(result, df, {
        "r0": "duplicate_key", "r3": "duplicate_key", "r2": "missing_key",
        "r4": "negative_amount", "r5": "missing_amount",
        "r6": "unknown_currency", "r7": "unknown_currency", "r8": "invalid_status",
        "r9": "orphan_customer", "r10": "orphan_customer", "r11": "missing_date",
        "r12": "negative_amount;unknown_currency", "r13": "orphan_customer",
        "r15": "invalid_status;missing_amount",
    })
    q = result.quarantined
    assert q.loc["r4", "reason"] == "total_amount is negative (-10.0)"
    assert q.loc["r6", "reason"] == "currency 'ABC' is not an active ISO 4217 currency code"
    assert q.loc["r9", "reason"] == "customer_source_id 'c9' is not a known customer of odoo"
    assert result.warnings == []


def test_order_without_known_customers_only_flags_missing_customer():
    df = _frame("order", [order("1", customer_source_id="anything"), order("2", customer_source_id=" ")])
    result = validate(df, "order")
    check(result, df, {"r1": "orphan_customer"})


def test_invoice_suite():
    rows = [
        invoice("1"),
        invoice("2", kind="credit_note", total_amount=-50.0, paid_amount=0.0, outstanding_amount=-50.0),
        invoice("3", due_date=None),  # no due date: fine
        invoice("4", due_date="2026-01-05"),  # due on the issue day: fine
        invoice("5", total_amount=-1.0, outstanding_amount=None),  # r4
        invoice("6", kind=None, total_amount=-1.0, outstanding_amount=None),  # r5: an unknown kind is not exempt
        invoice("7", total_amount=None),  # r6
        invoice("8", currency="EURO"),  # r7
        invoice("9", status="posted"),  # r8
        invoice("10", due_date="2026-01-01"),  # r9
        invoice("11", customer_source_id="nobody"),  # r10
        invoice("12", outstanding_amount=-0.01),  # r11
        invoice("13", invoice_date=None),  # r12
        invoice("1"),  # r13 duplicates r0
        invoice(""),  # r14
        invoice("16", updated_at=None),  # r15: warn only
        invoice("17", status="draft", total_amount=None, paid_amount=0.0, outstanding_amount=0.0),  # fine
        invoice("18", kind="credit_note", status="paid", total_amount=None),  # r17
    ]
    df = _frame("invoice", rows)
    result = validate(df, "invoice", known_customers=KNOWN)
    check(result, df, {
        "r4": "negative_amount", "r5": "negative_amount", "r6": "missing_amount",
        "r7": "unknown_currency", "r8": "invalid_status", "r9": "due_before_issue",
        "r10": "orphan_customer", "r11": "negative_outstanding", "r12": "missing_date",
        "r0": "duplicate_key", "r13": "duplicate_key", "r14": "missing_key", "r17": "missing_amount",
    })
    assert result.quarantined.loc["r9", "reason"] == "due_date (2026-01-01) is before invoice_date (2026-01-05)"
    assert result.warnings == [{"reason_code": "missing_updated_at",
                                "expectation": "expect_column_values_to_not_be_null", "rows": 1}]


def test_dates_as_the_hub_reads_them_are_checked_the_same_including_dates_beyond_pandas_nanoseconds():
    """The hub's dates are microsecond datetimes, which hold years pandas' nanoseconds cannot (a typed 0201 or
    9999). The gate checks them as it checks nanosecond dates and quotes the original value."""
    rows = [invoice("1"), invoice("2", invoice_date="0201-03-04"), invoice("3", due_date="9999-12-31"),
            invoice("4", due_date="2026-01-01"), invoice("5", due_date=None)]
    df = _frame("invoice", rows)
    for column in ("invoice_date", "due_date"):
        df[column] = pd.to_datetime(pd.Series([r[column] for r in rows], index=df.index), format="ISO8601")
        df[column] = df[column].astype("datetime64[us]")
    result = validate(df, "invoice", known_customers=KNOWN)
    check(result, df, {"r1": "implausible_date", "r2": "implausible_date", "r3": "due_before_issue"})
    assert result.quarantined.loc["r1", "reason"] == "invoice_date 0201-03-04 is not a plausible date"
    assert result.quarantined.loc["r2", "reason"] == "due_date 9999-12-31 is not a plausible date"
    in_range = df.drop(index=["r1", "r2"])
    as_ns = in_range.astype({"invoice_date": "datetime64[ns]", "due_date": "datetime64[ns]"})
    assert validate(in_range, "invoice", known_customers=KNOWN).quarantined["reason"].tolist() == \
        validate(as_ns, "invoice", known_customers=KNOWN).quarantined["reason"].tolist() == \
        ["due_date (2026-01-01) is before invoice_date (2026-01-05)"]


def test_conditional_checks_use_gx_row_conditions():
    from great_expectations.expectations.row_conditions import Condition

    from quality.suites import build_suite, get_spec

    suite = build_suite(get_spec("invoice"))
    conditioned = {e.meta["reason_code"]: e.row_condition for e in suite.expectations if e.row_condition}
    assert set(conditioned) == {"negative_amount", "negative_outstanding", "missing_amount",
                                "outstanding_exceeds_total", "cancelled_with_balance"}
    assert all(isinstance(c, Condition) for c in conditioned.values())


def test_service_ticket_suite():
    rows = [
        ticket("1"), ticket("2", status="open", closed_at=None, satisfaction=None),
        ticket("3", closed_at=T0 - pd.Timedelta(minutes=1)),  # r2
        ticket("4", customer_source_id="c2"),  # r3: c2 is an odoo customer only
        ticket("5", status="resolved"),  # r4
        ticket("6", opened_at=None),  # r5
        ticket("7", source_system=None),  # r6
        ticket("7"), ticket("7"),  # r7, r8
        ticket("9", status=None, customer_source_id="c404"),  # r9
    ]
    df = _frame("service_ticket", rows)
    result = validate(df, "service_ticket", known_customers=KNOWN)
    check(result, df, {
        "r2": "closed_before_opened", "r3": "orphan_customer", "r4": "invalid_status",
        "r5": "missing_date", "r6": "missing_key", "r7": "duplicate_key", "r8": "duplicate_key",
        "r9": "invalid_status;orphan_customer",
    })
    assert result.quarantined.loc["r2", "reason"].startswith("closed_at (2026-01-05 08:59:00+00:00) is before")


def contact(sid: str, **over) -> dict:
    row = dict(source_system="odoo", source_id=sid, customer_source_id="c1", name="Wang Wei", given_name=None,
               family_name=None, email=f" Wang.Wei{sid}@Example.cn ", phone="+86 138 0013 8000", job_title="采购经理",
               is_active=True, updated_at=T0)
    row.update(over)
    return row


def test_contact_suite():
    rows = [
        contact("1"), contact("2", name=None), contact("3", email=None, phone=None, job_title=None),  # all good
        contact("4", name=None, email=None),  # r3: neither a name nor an email
        contact("5", name="  ", email=None),  # r4
        contact("6", email="wang@@example"),  # r5
        contact("7", phone="ask reception"),  # r6
        contact("8", customer_source_id="c404"),  # r7: an unknown company
        contact("9", customer_source_id=None),  # r8
        contact("10", job_title="=1+2"),  # r9
        contact("11", source_id=None),  # r10
    ]
    df = _frame("contact", rows)
    result = validate(df, "contact", known_customers=KNOWN)
    check(result, df, {
        "r3": "missing_name", "r4": "missing_name", "r5": "malformed_email", "r6": "malformed_phone",
        "r7": "orphan_customer", "r8": "orphan_customer", "r9": "formula_injection", "r10": "missing_key",
    })
    assert result.quarantined.loc["r3", "reason"] == "neither a name nor an email"
    assert result.quarantined.loc["r7", "reason"] == "customer_source_id 'c404' is not a known customer of odoo"


def test_unified_customer_suite():
    rows = [unified("U1"), unified("U2", email=None), unified(None), unified("U4"), unified("U4"),
            unified("U6", name=""), unified("U7", email="c@example"), unified("U8", name=None, email="x")]
    df = _typed(rows, UNIFIED_COLUMNS, bools=["is_company"])
    result = validate(df, "unified_customer")
    check(result, df, {"r2": "missing_key", "r3": "duplicate_key", "r4": "duplicate_key",
                       "r5": "missing_name", "r6": "malformed_email", "r7": "malformed_email;missing_name"})


def test_profile_suite():
    rows = [
        profile("P1"), profile("P2", churn_risk=1.0, segment="below_zero", net_value=-5.0, credit_class="D"),
        profile(None),  # r2
        profile("P4"), profile("P4"),  # r3, r4
        profile("P6", lifetime_revenue=None),  # r5
        profile("P7", clv=np.nan),  # r6
        profile("P8", reporting_currency="XTS"),  # r7: test code is not money
        profile("P9", segment="vip"),  # r8
        profile("P10", churn_risk=1.5),  # r9
        profile("P11", churn_risk=-0.1),  # r10
        profile("P12", credit_class="E"),  # r11
        profile("P13", net_value=None, segment=None),  # r12
    ]
    df = _typed(rows, PROFILE_COLUMNS, floats=["lifetime_revenue", "net_value", "clv", "churn_risk"])
    result = validate(df, "profile")
    check(result, df, {
        "r2": "missing_key", "r3": "duplicate_key", "r4": "duplicate_key", "r5": "missing_amount",
        "r6": "missing_amount", "r7": "unknown_currency", "r8": "invalid_segment", "r9": "out_of_range",
        "r10": "out_of_range", "r11": "invalid_credit_class", "r12": "invalid_segment;missing_amount",
    })
    assert result.quarantined.loc["r9", "reason"] == "churn_risk 1.5 is outside [0, 1]"


# --- general behaviour -------------------------------------------------------------------------

@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_empty_frame(suite):
    columns = {"unified_customer": UNIFIED_COLUMNS, "profile": PROFILE_COLUMNS}.get(suite)
    df = _frame(suite, []) if columns is None else _typed([], columns)
    result = validate(df, suite, known_customers=KNOWN)
    assert (result.rows_in, result.rows_passed, result.rows_quarantined) == (0, 0, 0)
    assert list(result.quarantined.columns) == list(df.columns) + REASON_COLUMNS
    assert list(result.passed.columns) == list(df.columns)
    assert result.warnings == []


def test_empty_frame_without_columns():
    result = validate(pd.DataFrame(columns=["customer_id"]), "profile")
    assert (result.rows_in, result.rows_passed, result.rows_quarantined) == (0, 0, 0)
    assert list(result.quarantined.columns) == ["customer_id"] + REASON_COLUMNS


def test_all_good_rows_pass_and_input_is_untouched():
    df = _frame("order", [order(str(i)) for i in range(50)])
    before = df.copy()
    result = validate(df, "order", known_customers=KNOWN)
    assert result.rows_passed == 50 and result.quarantined.empty and result.success
    pd.testing.assert_frame_equal(df, before)


def test_warn_only_does_not_quarantine():
    df = _frame("order", [order("1", updated_at=None), order("2", updated_at=None), order("3")])
    result = validate(df, "order", known_customers=KNOWN)
    assert result.rows_passed == 3 and result.rows_quarantined == 0
    assert result.warnings == [{"reason_code": "missing_updated_at",
                                "expectation": "expect_column_values_to_not_be_null", "rows": 2}]


def test_unknown_suite_and_missing_columns_fail_loudly():
    with pytest.raises(ValueError, match="unknown quality suite"):
        validate(pd.DataFrame(), "orders")
    df = _frame("order", [order("1")]).drop(columns=["currency"])
    with pytest.raises(ValueError, match="currency"):
        validate(df, "order")
    df = _frame("invoice", [invoice("1")]).drop(columns=["kind", "customer_source_id"])
    with pytest.raises(ValueError, match="customer_source_id, kind"):
        validate(df, "invoice")


def test_every_expectation_has_reason_code_and_severity():
    from quality.suites import build_suite, get_spec

    for name in SUITE_NAMES:
        for e in build_suite(get_spec(name)).expectations:
            assert e.meta["reason_code"] and e.meta["severity"] in ("quarantine", "warn"), (name, e)


def test_currencies():
    assert {"EUR", "USD", "GBP", "JPY", "CHF", "CNY", "XCG", "ZWG", "SLE"} <= ACCEPTED_CURRENCIES
    assert not {"XTS", "XXX", "HRK", "ANG", "ZWL", "SLL", "EURO"} & ACCEPTED_CURRENCIES
    assert 170 <= len(ISO_4217_ACTIVE) <= 185


def test_larger_frame_maps_rows_back_vectorised():
    n = 20_000
    rng = np.random.default_rng(7)
    df = _frame("order", [order("0")])
    df = pd.concat([df] * n, ignore_index=True)
    df["source_id"] = [str(i) for i in range(n)]
    bad = rng.random(n) < 0.05
    df.loc[bad, "total_amount"] = -1.0
    df.index = df.index * 3 + 1000  # arbitrary integer labels
    result = validate(df, "order", known_customers=KNOWN)
    assert set(result.quarantined.index) == set(df.index[bad])
    assert (result.quarantined["reason_code"] == "negative_amount").all()
    assert result.rows_passed == n - bad.sum()


def test_no_gx_info_logging_when_imported_after_airflow():
    code = textwrap.dedent("""
        import airflow  # configures logging first, as in a DAG
        import pandas as pd
        from quality import validate
        validate(pd.DataFrame({"customer_id": ["a"], "name": ["A"], "email": [None]}), "unified_customer")
        print("done")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "done" in out
    assert "Skipping registering" not in out
    assert "great_expectations" not in out, out


def test_several_expectations_for_one_code_are_listed_once_per_code():
    df = _frame("order", [order("1"), order(" ", source_system=None, customer_source_id="c1")])
    result = validate(df, "order", known_customers=KNOWN)
    q = result.quarantined.loc["r1"]
    assert q["reason_code"] == "missing_key"
    assert q["expectation"] == "expect_column_values_to_match_regex+expect_column_values_to_not_be_null"
    assert q["reason"] == "source_id is blank; source_system is missing"


def test_build_data_docs(tmp_path):
    from quality import build_data_docs

    df = _frame("order", [order("1"), order("2", total_amount=-1.0)])
    index = build_data_docs([validate(df, "order", known_customers=KNOWN)], tmp_path / "docs")
    assert index.exists() and list((tmp_path / "docs" / "validations" / "order").rglob("*.html"))


def test_an_expectation_gx_cannot_evaluate_raises_instead_of_passing_rows():
    df = _frame("invoice", [invoice("1"), invoice("2")])
    df["due_date"] = ["2026-02-01", "soon"]  # text cannot be compared with a date
    with pytest.raises(RuntimeError, match="could not be evaluated"):
        validate(df, "invoice", known_customers=KNOWN)


def test_invoice_totals_must_be_consistent_and_cancelled_documents_owe_nothing():
    rows = [
        invoice("1"),
        invoice("2", status="cancelled", outstanding_amount=0.0),
        invoice("3", status="cancelled", outstanding_amount=80.0),  # r2
        invoice("4", outstanding_amount=120.0),  # r3: more owed than invoiced
        invoice("5", kind="credit_note", total_amount=-50.0, paid_amount=0.0, outstanding_amount=-50.0),
        invoice("6", kind="credit_note", total_amount=-50.0, paid_amount=0.0, outstanding_amount=-70.0),  # r5
        invoice("7", kind="vendor_bill"),  # r6
    ]
    df = _frame("invoice", rows)
    check(validate(df, "invoice", known_customers=KNOWN), df, {
        "r2": "cancelled_with_balance", "r3": "outstanding_exceeds_total", "r5": "outstanding_exceeds_total",
        "r6": "invalid_kind"})


def test_values_the_source_sent_but_the_mapping_could_not_read_are_quarantined_not_nulled():
    df = _frame("order", [order("1"), order("2", total_amount=None), order("3", ordered_at=None)])
    df["parse_errors"] = [None, "[not_a_number] total_amount 'twelve' is not a finite number",
                          "[invalid_date] ordered_at '2026-02-30' is not a valid timestamp"]
    result = validate(df, "order", known_customers=KNOWN)
    assert result.quarantined["reason_code"].to_dict() == {
        "r1": "missing_amount;not_a_number", "r2": "invalid_date;missing_date"}
    assert "'twelve' is not a finite number" in result.quarantined.at["r1", "reason"]


def test_the_gate_does_not_fingerprint_the_frame(monkeypatch):
    """GX hashes every pandas batch under 1 GB for a batch marker the gate never reads (20 s of 170 at the medium
    scale); the gate switches that off and still checks every row."""
    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(_df):
        raise AssertionError("the gate fingerprinted its frame")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    df = _frame("order", [order("1"), order("2", total_amount=-1.0)])
    check(validate(df, "order", known_customers=KNOWN), df, {"r1": "negative_amount"})
