"""Identity resolution: one unified customer per real customer, with stable ids and an explanation per link.

The facade is `resolve`; normalisation, rules, id assignment and survivorship are its internals.
"""
from reconcile.resolve import ReconcileResult, ReconcileSettings, resolve

__all__ = ["ReconcileResult", "ReconcileSettings", "resolve"]
