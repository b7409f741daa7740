"""Every parameter of profile enrichment, validated, with its default.

The values live in ``config/enrichment.yaml`` (one key per field below, flat). ``load_settings`` reads
that file; a missing key takes the default, an unknown key or an invalid value raises
``pydantic.ValidationError`` whose message names the offending field.

Which formula uses which parameter is written in ``enrich/DEFINITIONS.md`` and in the docstring of
the module that computes the metric (``ledger``, ``sales``, ``value``, ``credit``, ``service``,
``loyalty``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

DEFAULT_SETTINGS_PATH = Path(__file__).resolve().parents[1] / "config" / "enrichment.yaml"

Priority = Literal["low", "medium", "high", "urgent"]


class _Settings(BaseModel):
    """Strict about YAML booleans: ``top_share: yes`` must not silently become 1.0."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation in (int, float):
            raise ValueError("expected a number, got a boolean")
        return value


class CostToServeByPriority(_Settings):
    """Cost of handling one service ticket, in the reporting currency, by ticket priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(50.0, ge=0)
    medium: float = Field(100.0, ge=0)
    high: float = Field(200.0, ge=0)
    urgent: float = Field(400.0, ge=0)


class EnrichmentSettings(_Settings):
    """All enrichment parameters. Field descriptions say where each one is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- money -------------------------------------------------------------------------------
    reporting_currency: str = Field(
        "CNY", pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code every value is converted into (needs no FX rate).")

    # --- value ledger: cost to serve ---------------------------------------------------------
    cost_to_serve_by_priority: CostToServeByPriority = Field(
        default_factory=CostToServeByPriority,
        description="Cost of one service ticket by priority, reporting currency.")
    unknown_priority_as: Priority = Field(
        "medium", description="Priority whose cost is charged for a ticket with a missing or unknown priority.")

    # --- CLV ---------------------------------------------------------------------------------
    margin_rate: float = Field(0.3, ge=0, le=1, description="Gross margin share of revenue.")
    retention_rate: float = Field(0.8, ge=0, lt=1, description="r: yearly probability the customer stays.")
    discount_rate: float = Field(0.1, ge=0, le=1, description="d: yearly discount rate.")

    # --- segments ----------------------------------------------------------------------------
    top_share: float = Field(0.2, gt=0, le=1,
                             description="Share of customers with positive net value that are most_valuable.")
    growth_rate: float = Field(0.25, ge=0,
                               description="revenue_12m >= (1 + growth_rate) * revenue_prev_12m means growth.")
    new_customer_days: int = Field(365, ge=0,
                                   description="A customer with tenure_days below this and no previous-year "
                                               "revenue counts as growth_potential when revenue_12m > 0.")

    # --- sales behaviour ---------------------------------------------------------------------
    top_categories_count: int = Field(3, ge=1, le=10,
                                      description="How many product categories top_categories lists.")

    # --- credit ------------------------------------------------------------------------------
    credit_b_max_overdue_share: float = Field(0.25, ge=0, le=1,
                                              description="Class B when 0 < overdue_share <= this.")
    credit_c_max_overdue_share: float = Field(0.5, ge=0, le=1,
                                              description="Class C when B's bound < overdue_share <= this; "
                                                          "above it class D.")

    # --- loyalty and churn ---------------------------------------------------------------------
    min_orders_for_own_rhythm: int = Field(3, ge=2,
                                           description="From this many orders the customer's own median gap "
                                                       "between orders is its expected gap.")
    default_purchase_gap_days: float = Field(90.0, gt=0,
                                             description="Expected gap between orders for customers with fewer "
                                                         "orders than min_orders_for_own_rhythm.")
    churn_gap_multiple: float = Field(2.0, gt=0,
                                      description="Recency equal to this many expected gaps gives recency risk 1.")
    open_complaint_penalty: float = Field(0.2, ge=0, le=1,
                                          description="Added to churn risk when a complaint ticket is open.")
    falling_value_penalty: float = Field(0.1, ge=0, le=1,
                                         description="Added to churn risk when revenue_12m < revenue_prev_12m.")
    churn_flag_threshold: float = Field(0.7, gt=0, le=1,
                                        description="churn_flag = churn_risk >= this; flagged customers get "
                                                    "clv_predicted 0.")

    # --- demand ------------------------------------------------------------------------------
    next_period_months: float = Field(3.0, gt=0, le=12,
                                      description="Length of the period expected_orders/spend are forecast for.")

    @model_validator(mode="after")
    def _credit_bounds_ordered(self) -> "EnrichmentSettings":
        if self.credit_b_max_overdue_share > self.credit_c_max_overdue_share:
            raise ValueError(
                "credit_b_max_overdue_share must be <= credit_c_max_overdue_share "
                f"(got {self.credit_b_max_overdue_share} > {self.credit_c_max_overdue_share})")
        return self


def load_settings(path: Path | None = None) -> EnrichmentSettings:
    """Read enrichment settings from YAML (default: ``config/enrichment.yaml`` at the repo root).

    An empty file gives all defaults. Raises ``pydantic.ValidationError`` (naming the field) for an
    unknown key or an invalid value, ``ValueError`` when the file is not a YAML mapping.
    """
    path = Path(path) if path is not None else DEFAULT_SETTINGS_PATH
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of setting names to values, got {type(data).__name__}")
    return EnrichmentSettings.model_validate(data)
