"""A database server the tests need (the machine's PostgreSQL or MariaDB), or the reason they cannot run
(servers.required: skipped on a developer's machine, a failure under CI)."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from servers.required import unavailable


def admin_engine_or_skip(admin_url: str, what: str):
    try:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return engine
    except Exception as e:  # noqa: BLE001 - any failure means the server is not usable here
        unavailable(f"{what} at {admin_url}", e)
