"""Errors classified the way operators act on them (as Airbyte does): only transient ones are retried."""


class Erp2CrmError(Exception):
    kind = "error"


class ConfigError(Erp2CrmError):
    """Wrong configuration, mapping or credentials: retrying cannot help; a person must fix something."""
    kind = "config"


class TransientError(Erp2CrmError):
    """Timeouts, rate limits, 5xx, lost connections: retried with backoff."""
    kind = "transient"


class DataError(Erp2CrmError):
    """A record that cannot be parsed or accepted: quarantined or rejected, never retried as is."""
    kind = "data"


class QuotaExhausted(TransientError):
    """The target's request budget is used up: the run stops cleanly and the next run resumes."""
