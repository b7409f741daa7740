"""The customer hub store: staged rows, crosswalk, unified customers, profiles, quarantine, receipts, run history."""
from hub.store import HubStore

__all__ = ["HubStore"]
