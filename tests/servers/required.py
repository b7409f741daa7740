"""A real system the tests need and the machine cannot provide: skipped with the reason on a developer's machine,
a failure under CI, which must not skip the real-system tests silently."""
from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(what: str, error: Exception) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the {what}: {error}")
    pytest.skip(f"{what} unavailable: {error}")
