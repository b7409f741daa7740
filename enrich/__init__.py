"""Profile enrichment: turn scoped ERP documents into one enriched profile per unified customer.

Public API: ``EnrichmentSettings``, ``load_settings``, ``load_fx_rates``, ``EnrichmentResult`` and
``build_profiles``. Definitions of every metric: ``enrich/DEFINITIONS.md``.
"""
from .fx import load_fx_rates
from .ledger import INVOICE_FIELDS, ORDER_FIELDS, PAYMENT_FIELDS, TICKET_FIELDS
from .profiles import ORDER_LINE_FIELDS, PROFILE_COLUMNS, EnrichmentResult, build_profiles
from .settings import EnrichmentSettings, load_settings

# Per canonical entity, the columns `build_profiles` reads: a caller need not load the others.
INPUT_COLUMNS = {"order": ORDER_FIELDS, "invoice": INVOICE_FIELDS, "service_ticket": TICKET_FIELDS,
                 "payment": PAYMENT_FIELDS, "order_line": ORDER_LINE_FIELDS}

__all__ = ["EnrichmentSettings", "load_settings", "load_fx_rates", "EnrichmentResult", "build_profiles",
           "PROFILE_COLUMNS", "INPUT_COLUMNS"]
