"""A database server the tests need (the machine's PostgreSQL or MariaDB), or the reason they cannot run: skipped
on a developer's machine, a failure under CI, which must not skip the real-system tests silently."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text


def admin_engine_or_skip(admin_url: str, what: str):
    try:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return engine
    except Exception as e:  # noqa: BLE001 - any failure means the server is not usable here
        if os.environ.get("CI"):
            pytest.fail(f"{what} at {admin_url} is required in CI and not reachable: {e}")
        pytest.skip(f"{what} not reachable at {admin_url}: {e}")
