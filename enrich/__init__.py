"""Profile enrichment: turn scoped ERP documents into one enriched profile per unified customer.

Public API: ``EnrichmentSettings``, ``load_settings``, ``load_fx_rates``, ``EnrichmentResult`` and
``build_profiles``. Definitions of every metric: ``enrich/DEFINITIONS.md``.
"""
from .fx import load_fx_rates
from .profiles import PROFILE_COLUMNS, EnrichmentResult, build_profiles
from .settings import EnrichmentSettings, load_settings

__all__ = ["EnrichmentSettings", "load_settings", "load_fx_rates", "EnrichmentResult", "build_profiles",
           "PROFILE_COLUMNS"]
