"""Data quality gates (Great Expectations 1.x suites kept as code) with row-level quarantine.

    from quality import validate
    result = validate(orders_df, "order", known_customers=customers_df[["source_system", "source_id"]])
    result.passed        # rows that go on
    result.quarantined   # rows held back, with reason_code / expectation / reason
"""
from quality.gate import GateResult, build_data_docs, validate
from quality.suites import SUITE_NAMES

__all__ = ["GateResult", "validate", "build_data_docs", "SUITE_NAMES"]
