"""Airflow hooks: each owns its connection and credentials. Nothing else reads a Connection.

A database connection (conn_type sqlite, postgres or mysql) becomes a SQLAlchemy URL here; the URL
holds the password and is never logged or returned in XCom.
"""
from __future__ import annotations

from pathlib import Path

from airflow.sdk import BaseHook
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine

from erp2crm.errors import ConfigError

_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


def get_connection(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as e:  # Airflow raises its own not-found error type depending on where it runs
        raise ConfigError(f"Airflow connection {conn_id!r} is not defined: create it (UI, CLI or "
                          f"AIRFLOW_CONN_{conn_id.upper()}) before running ({type(e).__name__})") from None


def base_url(conn, default_scheme: str = "https", host: str | None = None) -> str:
    """An API connection's base URL: its host (or `host`) as written when it has a scheme, else the extra's
    `scheme` (default `default_scheme`) and the host; then the connection's port, if it has one."""
    host = host or conn.host
    scheme = (conn.extra_dejson or {}).get("scheme", default_scheme)
    base = host if "://" in host else f"{scheme}://{host}"
    return f"{base}:{conn.port}" if conn.port else base


def http_options(conn) -> dict:
    """The HTTP client settings an API connection's extra may set: `timeout` (seconds per request, above 0) and
    `max_retries` (of transient errors, a whole number, 0 or more). The rest of the extra is the connector's."""
    extra = conn.extra_dejson or {}
    rules = {"timeout": ("a number of seconds above 0", lambda v: v > 0),
             "max_retries": ("a whole number, 0 or more", lambda v: v >= 0 and float(v).is_integer())}
    options = {}
    for key, (expected, valid) in rules.items():
        if key not in extra:
            continue
        value = extra[key]
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not valid(number):
            raise ConfigError(f"connection {conn.conn_id!r}: extra {key}={value!r} must be {expected}")
        options[key] = int(number) if key == "max_retries" else number
    return options


def sqlalchemy_url(conn, must_exist: bool = True) -> URL:
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ConfigError(f"connection {conn.conn_id!r}: a sqlite connection needs the database file path in host")
        if must_exist and not Path(path).exists():
            raise ConfigError(f"connection {conn.conn_id!r}: sqlite database {path} does not exist")
        return URL.create("sqlite", database=path)
    if conn_type in _DRIVERS:
        return URL.create(_DRIVERS[conn_type], username=conn.login or None, password=conn.password or None,
                          host=conn.host or "127.0.0.1", port=conn.port or None, database=conn.schema or None)
    raise ConfigError(f"connection {conn.conn_id!r}: conn_type {conn.conn_type!r} is not a supported database "
                      f"(sqlite, postgres, mysql)")


class SqlDatabaseHook(BaseHook):
    """A relational database reached through SQLAlchemy: an ERP's database or the hub store."""

    conn_name_attr = "conn_id"
    hook_name = "erp2crm SQL database"

    def __init__(self, conn_id: str, must_exist: bool = True):
        super().__init__()
        self.conn_id = conn_id
        self.must_exist = must_exist

    def get_url(self) -> URL:
        return sqlalchemy_url(get_connection(self.conn_id), self.must_exist)

    def get_engine(self) -> Engine:
        return engine_for(self.get_url())


def engine_for(url: URL) -> Engine:
    connect_args = {"timeout": 60} if url.drivername == "sqlite" else {}
    return create_engine(url, connect_args=connect_args)
