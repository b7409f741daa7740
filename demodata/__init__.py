"""Deterministic demo data for erp2crm: three messy ERP databases and their ground truth.

See `demodata.generate` for what is written and which properties tests may rely on.
"""
from .generate import generate

__all__ = ["generate"]
