"""Expectation suites kept as code: one declarative table of rules per suite.

A rule is (expectation class name, kwargs, reason_code, severity, reason template). `build_suite()` turns
a table into a Great Expectations `ExpectationSuite`; every expectation carries
``meta = {"reason_code", "severity", "reason"}`` so a validation result explains itself.

Severities: ``quarantine`` (a failing row is held back with its reason code) and ``warn`` (counted
and reported, the row goes on).

Reason templates are rendered per failing row by `quality.gate` (vectorised). Fields:
``{column}``, ``{column_A}``, ``{column_B}`` (names from the expectation kwargs), ``{value}``,
``{value_A}``, ``{value_B}`` (the row's values, shortened), ``{length}`` (character length of
``{value}``), ``{max_value}`` / ``{min_value}`` (from kwargs) and ``{<any column name>}`` (that
column's value in the row).

Nothing here imports Great Expectations at module import time; `build_suite()` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from erp2crm.canonical import (CONTACT, CUSTOMER_RECORD, INVOICE_KINDS, INVOICE_STATUSES, ORDER_STATUSES, PARSE_ERRORS,
                               PAYMENT_STATUSES, STRING, TICKET_PRIORITIES, TICKET_STATUSES)
from quality.currencies import ACCEPTED_CURRENCIES

QUARANTINE, WARN = "quarantine", "warn"

# Helper column added by the gate before validation (documents only); never returned to callers.
CUSTOMER_KNOWN = "_gx_customer_known"
TEXT_HELPER = "_gx_text"  # the free-text fields of a row as "field=value" lines (see text_hygiene)
HELPER_PREFIX = "_gx_"

MAX_TEXT = 255
NOT_BLANK = r"\S"  # at least one non-whitespace character
# A sane e-mail address: dot-atom local part, '@', dot-separated domain labels, alphabetic (or
# punycode) top-level domain. Unicode letters are allowed (\w is Unicode-aware in Python's re).
# Surrounding whitespace and upper case are accepted here; normalisation happens later.
_LOCAL_CHARS = r"[\w!#$%&'*+/=?^`{|}~-]"
EMAIL_REGEX = (
    r"^\s*"
    rf"{_LOCAL_CHARS}+(?:\.{_LOCAL_CHARS}+)*"
    r"@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"
    r"(?:[^\W\d_]{2,63}|xn--[a-zA-Z0-9-]{1,59})"
    r"\s*$"
)
# A blank e-mail (empty / whitespace only) means "no e-mail", not a malformed one.
EMAIL_OR_BLANK_REGEX = rf"(?:{EMAIL_REGEX})|^\s*$"

# A telephone number as people write it: optional + (or "(+"), 5 to 15 digits with spaces, dots, dashes, slashes or
# brackets between them, optionally an extension. Normalisation to E.164 happens in reconciliation.
PHONE_REGEX = r"^\s*\(?\+?(?:[\s().\-/]*\d){5,15}[\s().\-/]*(?:(?:ext\.?|x|#)\s*\d{1,6})?\s*$"
PHONE_OR_BLANK_REGEX = rf"(?:{PHONE_REGEX})|^\s*$"
# UTF-8 read as Latin-1 / Windows-1252 ("MÃ¼ller", "â€™"), or the replacement character left by a lossy decode.
MOJIBAKE_REGEX = "Ã[\u0080-\u00bf\u0152-\u2122]|Â[\u0080-\u00bf]|â€|\ufffd"
CONTROL_REGEX = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
# A spreadsheet formula if the CRM's users export the field to CSV (OWASP "CSV injection").
FORMULA_REGEX = "^[=+\-@\t\r]"
FORMULA_FIELDS = ("name", "given_name", "family_name", "company_name", "street", "city", "region", "job_title")
MAX_AMOUNT = 1e11  # per document, in any currency: larger is a unit or typing error, not a sale
EARLIEST_DOCUMENT = "1950-01-01"  # business documents older than this are a date error
EARLIEST_BIRTH = "1900-01-01"
PARSE_CODES = ("not_a_number", "invalid_date", "missing_utc_offset", "not_a_boolean")  # see connectors.transform

SEGMENTS = ("most_valuable", "growth_potential", "below_zero", "standard")
CREDIT_CLASSES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Rule:
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict[str, Any]
    reason_code: str
    severity: str = QUARANTINE
    reason: str = ""  # template, see module docstring


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    rules: tuple[Rule, ...]
    helpers: tuple[str, ...] = field(default=())  # helper columns the gate must add
    text_fields: tuple[str, ...] = ()  # joined into TEXT_HELPER for the text checks

    @property
    def columns(self) -> set[str]:
        """Input columns the rules refer to (helper columns excluded)."""
        cols: set[str] = set()
        for r in self.rules:
            for k in ("column", "column_A", "column_B"):
                if k in r.kwargs:
                    cols.add(r.kwargs[k])
            cols.update(r.kwargs.get("column_list", ()))
            condition_column = getattr(r.kwargs.get("row_condition"), "column", None)
            if condition_column is not None:
                cols.add(condition_column.name)
        if CUSTOMER_KNOWN in self.helpers:
            cols.update(("source_system", "customer_source_id"))
        if TEXT_HELPER in self.helpers:
            cols.update(self.text_fields)
        return {c for c in cols if not c.startswith(HELPER_PREFIX)}


# --- rule factories (keep the tables below short and readable) ---------------------------------

def not_null(col: str, code: str, severity: str = QUARANTINE, reason: str | None = None, **extra) -> Rule:
    return Rule("ExpectColumnValuesToNotBeNull", {"column": col, **extra}, code, severity,
                reason or "{column} is missing")


def not_blank(col: str, code: str, reason: str | None = None) -> Rule:
    return Rule("ExpectColumnValuesToMatchRegex", {"column": col, "regex": NOT_BLANK}, code,
                QUARANTINE, reason or "{column} is blank")


def required_text(col: str, code: str) -> tuple[Rule, Rule]:
    """Null or blank. GX skips nulls in regex checks, hence the pair."""
    return not_null(col, code), not_blank(col, code)


def in_set(col: str, values, code: str, what: str, **extra) -> Rule:
    return Rule("ExpectColumnValuesToBeInSet", {"column": col, "value_set": sorted(values), **extra},
                code, QUARANTINE, "{column} {value!r} is not " + what)


def required_in_set(col: str, values, code: str, what: str) -> tuple[Rule, Rule]:
    return (not_null(col, code, reason="{column} is missing (expected " + what + ")"),
            in_set(col, values, code, what))


def not_negative(col: str, code: str, **extra) -> Rule:
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": 0, **extra}, code,
                QUARANTINE, "{column} is negative ({value})")


def staging_key_rules() -> tuple[Rule, ...]:
    return (
        *required_text("source_system", "missing_key"),
        *required_text("source_id", "missing_key"),
        Rule("ExpectCompoundColumnsToBeUnique", {"column_list": ["source_system", "source_id"]},
             "duplicate_key", QUARANTINE,
             "key ({source_system}, {source_id}) occurs more than once"),
        not_null("updated_at", "missing_updated_at", WARN),
    )


def parse_rules() -> tuple[Rule, ...]:
    """A value the source sent that its canonical kind cannot hold (recorded by the mapping in parse_errors)."""
    return tuple(Rule("ExpectColumnValuesToNotMatchRegex", {"column": PARSE_ERRORS, "regex": rf"\[{code}\]"},
                      code, QUARANTINE, "{parse_errors}") for code in PARSE_CODES)


def text_hygiene() -> tuple[Rule, ...]:
    """Length, mojibake, control characters and formula starts in every text field of a row. The gate joins
    the fields into one helper column ("field=value" lines, line breaks inside a value turned into spaces), so
    that four expectations check them all: one expectation per field and check made the customer suite three
    times slower (bench/quality_bench.py)."""
    formula = rf"(?m)^(?:{'|'.join(FORMULA_FIELDS)})={FORMULA_REGEX[1:]}"
    return (
        Rule("ExpectColumnValuesToNotMatchRegex", {"column": TEXT_HELPER, "regex": rf"(?m)^\w+=[^\n]{{{MAX_TEXT + 1},}}$"},
             "overlong_text", QUARANTINE, f"{{offending}} is longer than {MAX_TEXT} characters"),
        Rule("ExpectColumnValuesToNotMatchRegex", {"column": TEXT_HELPER, "regex": MOJIBAKE_REGEX},
             "mojibake_text", QUARANTINE, "{offending} looks wrongly decoded (mojibake)"),
        Rule("ExpectColumnValuesToNotMatchRegex", {"column": TEXT_HELPER, "regex": CONTROL_REGEX},
             "control_characters", QUARANTINE, "{offending} contains control characters"),
        Rule("ExpectColumnValuesToNotMatchRegex", {"column": TEXT_HELPER, "regex": formula},
             "formula_injection", QUARANTINE, "{offending} starts like a spreadsheet formula (=, +, -, @)"),
    )


def plausible_date(col: str, earliest: str = EARLIEST_DOCUMENT, ahead_days: int = 366, **extra) -> Rule:
    """Between `earliest` and `ahead_days` after today (fixed when the suite is built)."""
    column_is_timestamp = col.endswith("_at")
    latest = pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=ahead_days)
    bounds = [pd.Timestamp(earliest, tz="UTC"), latest]
    if not column_is_timestamp:  # calendar dates are naive
        bounds = [b.tz_localize(None) for b in bounds]
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": bounds[0].to_pydatetime(),
                                                  "max_value": bounds[1].to_pydatetime(), **extra},
                "implausible_date", QUARANTINE, "{column} {value} is not a plausible date")


def plausible_amount(col: str, **extra) -> Rule:
    return Rule("ExpectColumnValuesToBeBetween", {"column": col, "min_value": -MAX_AMOUNT, "max_value": MAX_AMOUNT,
                                                  **extra},
                "implausible_amount", QUARANTINE, "{column} {value} is implausibly large (beyond ±{max_value})")


def orphan_rule() -> Rule:
    return Rule("ExpectColumnValuesToBeInSet", {"column": CUSTOMER_KNOWN, "value_set": [True]},
                "orphan_customer", QUARANTINE,
                "customer_source_id {customer_source_id!r} is not a known customer of {source_system}")


def _text_fields(entity) -> list[str]:
    return [f for f, kind in entity.fields.items() if kind == STRING]


# --- the suites --------------------------------------------------------------------------------

def _not(column: str, value: str):
    """GX row condition "column != value" (pandas: `column != 'value'`, so null rows are checked too)."""
    from great_expectations.expectations.row_conditions import Column

    return Column(column) != value


def _is(column: str, value: str):
    from great_expectations.expectations.row_conditions import Column

    return Column(column) == value


def _no_email():
    """GX row condition "email is null" (a contact needs a name only when it has no e-mail)."""
    from great_expectations.expectations.row_conditions import Column

    return Column("email").is_null()


def _specs() -> dict[str, SuiteSpec]:
    currency_what = "an active ISO 4217 currency code"
    not_credit_note = _not("kind", "credit_note")
    # Some ERPs (Tryton) compute a document's total only once it is confirmed or posted: a draft
    # without an amount is normal, any other status needs one.
    not_draft = _not("status", "draft")
    import phonenumbers

    is_credit_note = _is("kind", "credit_note")
    specs = [
        SuiteSpec("customer_record", (
            *staging_key_rules(),
            *parse_rules(),
            *required_text("name", "missing_name"),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_OR_BLANK_REGEX},
                 "malformed_email", QUARANTINE, "email {value!r} is malformed"),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "phone", "regex": PHONE_OR_BLANK_REGEX},
                 "malformed_phone", QUARANTINE, "phone {value!r} is not a telephone number"),
            in_set("country", phonenumbers.SUPPORTED_REGIONS, "unknown_country",
                   "an ISO 3166-1 alpha-2 country code"),
            plausible_date("birth_date", EARLIEST_BIRTH, ahead_days=0),
            *text_hygiene(),
        ), helpers=(TEXT_HELPER,), text_fields=tuple(_text_fields(CUSTOMER_RECORD))),
        SuiteSpec("order", (
            *staging_key_rules(),
            *parse_rules(),
            not_negative("total_amount", "negative_amount"),
            plausible_amount("total_amount"),
            plausible_date("ordered_at"),
            not_null("total_amount", "missing_amount", row_condition=not_draft),
            *required_in_set("currency", ACCEPTED_CURRENCIES, "unknown_currency", currency_what),
            *required_in_set("status", ORDER_STATUSES, "invalid_status",
                             "one of " + ", ".join(sorted(ORDER_STATUSES))),
            orphan_rule(),
            not_null("ordered_at", "missing_date"),
        ), helpers=(CUSTOMER_KNOWN,)),
        SuiteSpec("invoice", (
            *staging_key_rules(),
            *parse_rules(),
            plausible_amount("total_amount"),
            plausible_date("invoice_date"),
            plausible_date("due_date", ahead_days=3 * 366),
            in_set("kind", INVOICE_KINDS, "invalid_kind", "one of " + ", ".join(sorted(INVOICE_KINDS))),
            # Totals consistent: what is still owed never exceeds the document's total (credit notes: both ≤ 0).
            Rule("ExpectColumnPairValuesAToBeGreaterThanB",
                 {"column_A": "total_amount", "column_B": "outstanding_amount", "or_equal": True,
                  "ignore_row_if": "either_value_is_missing", "row_condition": not_credit_note},
                 "outstanding_exceeds_total", QUARANTINE, "{column_B} ({value_B}) exceeds {column_A} ({value_A})"),
            Rule("ExpectColumnPairValuesAToBeGreaterThanB",
                 {"column_A": "outstanding_amount", "column_B": "total_amount", "or_equal": True,
                  "ignore_row_if": "either_value_is_missing", "row_condition": is_credit_note},
                 "outstanding_exceeds_total", QUARANTINE,
                 "credit note: {column_A} ({value_A}) is beyond {column_B} ({value_B})"),
            # A cancelled document owes nothing; an open balance on one would count as a receivable.
            Rule("ExpectColumnValuesToBeBetween",
                 {"column": "outstanding_amount", "min_value": 0, "max_value": 0,
                  "row_condition": _is("status", "cancelled")},
                 "cancelled_with_balance", QUARANTINE, "cancelled, but {column} is {value}"),
            # Credit notes carry negative totals (and, in some ERPs, negative outstanding amounts):
            # the sign checks apply to every row that is not a credit note.
            not_negative("total_amount", "negative_amount", row_condition=not_credit_note),
            not_null("total_amount", "missing_amount", row_condition=not_draft),
            *required_in_set("currency", ACCEPTED_CURRENCIES, "unknown_currency", currency_what),
            *required_in_set("status", INVOICE_STATUSES, "invalid_status",
                             "one of " + ", ".join(sorted(INVOICE_STATUSES))),
            Rule("ExpectColumnPairValuesAToBeGreaterThanB",
                 {"column_A": "due_date", "column_B": "invoice_date", "or_equal": True,
                  "ignore_row_if": "either_value_is_missing"},
                 "due_before_issue", QUARANTINE, "{column_A} ({value_A}) is before {column_B} ({value_B})"),
            orphan_rule(),
            not_negative("outstanding_amount", "negative_outstanding", row_condition=not_credit_note),
            not_null("invoice_date", "missing_date"),
        ), helpers=(CUSTOMER_KNOWN,)),
        SuiteSpec("service_ticket", (
            *staging_key_rules(),
            *parse_rules(),
            plausible_date("opened_at"),
            plausible_date("closed_at"),
            Rule("ExpectColumnValuesToBeBetween", {"column": "satisfaction", "min_value": 0, "max_value": 1},
                 "out_of_range", QUARANTINE, "{column} {value} is outside [{min_value}, {max_value}]"),
            in_set("priority", TICKET_PRIORITIES, "invalid_priority", "one of " + ", ".join(sorted(TICKET_PRIORITIES))),
            Rule("ExpectColumnPairValuesAToBeGreaterThanB",
                 {"column_A": "closed_at", "column_B": "opened_at", "or_equal": True,
                  "ignore_row_if": "either_value_is_missing"},
                 "closed_before_opened", QUARANTINE, "{column_A} ({value_A}) is before {column_B} ({value_B})"),
            orphan_rule(),
            *required_in_set("status", TICKET_STATUSES, "invalid_status",
                             "one of " + ", ".join(sorted(TICKET_STATUSES))),
            not_null("opened_at", "missing_date"),
        ), helpers=(CUSTOMER_KNOWN,)),
        SuiteSpec("order_line", (
            *staging_key_rules(),
            *parse_rules(),
            *required_text("order_source_id", "missing_key"),
            not_negative("quantity", "negative_amount"),
            not_negative("line_amount", "negative_amount"),
            plausible_amount("line_amount"),
            orphan_rule(),
        ), helpers=(CUSTOMER_KNOWN,)),
        SuiteSpec("payment", (
            *staging_key_rules(),
            *parse_rules(),
            not_negative("amount", "negative_amount"),
            not_null("amount", "missing_amount"),
            plausible_amount("amount"),
            *required_in_set("currency", ACCEPTED_CURRENCIES, "unknown_currency", currency_what),
            *required_in_set("status", PAYMENT_STATUSES, "invalid_status",
                             "one of " + ", ".join(sorted(PAYMENT_STATUSES))),
            orphan_rule(),
            not_null("paid_date", "missing_date"),
            plausible_date("paid_date", ahead_days=1),
        ), helpers=(CUSTOMER_KNOWN,)),
        SuiteSpec("contact", (
            *staging_key_rules(),
            *parse_rules(),
            not_null("name", "missing_name", reason="neither a name nor an email", row_condition=_no_email()),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "name", "regex": NOT_BLANK, "row_condition": _no_email()},
                 "missing_name", QUARANTINE, "neither a name nor an email"),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_OR_BLANK_REGEX},
                 "malformed_email", QUARANTINE, "email {value!r} is malformed"),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "phone", "regex": PHONE_OR_BLANK_REGEX},
                 "malformed_phone", QUARANTINE, "phone {value!r} is not a telephone number"),
            orphan_rule(),
            *text_hygiene(),
        ), helpers=(CUSTOMER_KNOWN, TEXT_HELPER), text_fields=tuple(_text_fields(CONTACT))),
        SuiteSpec("unified_customer", (
            *required_text("customer_id", "missing_key"),
            Rule("ExpectColumnValuesToBeUnique", {"column": "customer_id"}, "duplicate_key", QUARANTINE,
                 "customer_id {value!r} occurs more than once"),
            *required_text("name", "missing_name"),
            Rule("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": EMAIL_OR_BLANK_REGEX},
                 "malformed_email", QUARANTINE, "email {value!r} is malformed"),
        )),
        SuiteSpec("profile", (
            *required_text("customer_id", "missing_key"),
            Rule("ExpectColumnValuesToBeUnique", {"column": "customer_id"}, "duplicate_key", QUARANTINE,
                 "customer_id {value!r} occurs more than once"),
            not_null("lifetime_revenue", "missing_amount"),
            not_null("net_value", "missing_amount"),
            not_null("clv", "missing_amount"),
            *required_in_set("reporting_currency", ACCEPTED_CURRENCIES, "unknown_currency", currency_what),
            *required_in_set("segment", SEGMENTS, "invalid_segment", "one of " + ", ".join(SEGMENTS)),
            Rule("ExpectColumnValuesToBeBetween", {"column": "churn_risk", "min_value": 0, "max_value": 1},
                 "out_of_range", QUARANTINE, "{column} {value} is outside [{min_value}, {max_value}]"),
            *required_in_set("credit_class", CREDIT_CLASSES, "invalid_credit_class",
                             "one of " + ", ".join(CREDIT_CLASSES)),
        )),
    ]
    return {s.name: s for s in specs}


_SPECS: dict[str, SuiteSpec] | None = None


def specs() -> dict[str, SuiteSpec]:
    global _SPECS
    if _SPECS is None:
        _SPECS = _specs()
    return _SPECS


SUITE_NAMES = ("customer_record", "order", "order_line", "invoice", "service_ticket", "payment", "contact",
               "unified_customer", "profile")


def get_spec(name: str) -> SuiteSpec:
    try:
        return specs()[name]
    except KeyError:
        raise ValueError(f"unknown quality suite {name!r}; expected one of {', '.join(SUITE_NAMES)}") from None


def build_suite(spec: SuiteSpec):
    """The GX `ExpectationSuite` for a spec (not yet added to any context)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=spec.name)
    for rule in spec.rules:
        cls = getattr(gxe, rule.expectation)
        suite.add_expectation(cls(**rule.kwargs, meta={
            "reason_code": rule.reason_code, "severity": rule.severity, "reason": rule.reason,
        }))
    return suite
