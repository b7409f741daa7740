"""Identity resolution: one unified customer per real customer, with stable ids and an explanation per link.

The facade is `resolve` with its settings (`load_settings`); normalisation, rules, probabilistic scoring,
id assignment and survivorship are its internals.
"""
from reconcile.resolve import Previous, ReconcileResult, resolve
from reconcile.settings import ReconcileSettings, load_settings

__all__ = ["Previous", "ReconcileResult", "ReconcileSettings", "load_settings", "resolve"]
