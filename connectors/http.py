"""The one HTTP client for API connectors: timeouts, classified errors, and retries of transient errors
only, with exponential backoff that honours Retry-After."""
from __future__ import annotations

import logging
import time
from typing import Callable

import requests

from erp2crm.errors import ConfigError, DataError, Erp2CrmError, QuotaExhausted, TransientError

log = logging.getLogger(__name__)
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def default_classify(response: requests.Response) -> Erp2CrmError | None:
    """None for a usable response, else the classified error."""
    if response.status_code < 400:
        return None
    detail = f"{response.request.method} {response.url.split('?')[0]} → HTTP {response.status_code}: {response.text[:300]}"
    if response.status_code in TRANSIENT_STATUS:
        return TransientError(detail)
    if response.status_code in (401, 403, 404):
        return ConfigError(detail)
    return DataError(detail)


class HttpClient:
    def __init__(self, base_url: str, headers: dict | None = None, timeout: float = 30, max_retries: int = 4,
                 backoff_s: float = 0.5, max_backoff_s: float = 30,
                 classify: Callable[[requests.Response], Erp2CrmError | None] = default_classify,
                 sleep: Callable[[float], None] = time.sleep, budget=None):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.classify, self.sleep = classify, sleep
        self.requests_sent = 0
        # A connectors.budget.RequestBudget (or None): every attempt, retries too, is taken from it before it is
        # sent; a used-up budget raises QuotaExhausted and nothing more goes out.
        self.budget = budget

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = f"{self.base_url}/{path.lstrip('/')}"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            if self.budget is not None:
                self.budget.take()
            try:
                self.requests_sent += 1
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
                error = self.classify(response)
                if error is None:
                    return response
                retry_after = response.headers.get("Retry-After")
            # A connection closed halfway through the answer's body is ChunkedEncodingError, not ConnectionError.
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                error = TransientError(f"{method} {url}: {type(e).__name__}")
            # A used-up daily quota does not come back in seconds: stop rather than retry.
            if not isinstance(error, TransientError) or isinstance(error, QuotaExhausted) or attempt == self.max_retries:
                raise error
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
            if retry_after and retry_after.strip().isdigit():
                delay = max(delay, float(retry_after))
            log.warning("transient error, retry %d/%d in %.1fs: %s", attempt + 1, self.max_retries, delay, error)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
