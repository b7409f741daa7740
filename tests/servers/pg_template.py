"""What the real-server harnesses share: a database built once on the machine's PostgreSQL and kept as a template
(named after what built it), a clone of it per test session, a free port, and stopping a server's process group."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from typing import Callable

from sqlalchemy import create_engine, text

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin():
    return create_engine(PG, isolation_level="AUTOCOMMIT")


def url(database: str) -> str:
    return PG.rsplit("/", 1)[0] + f"/{database}"


def unreachable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        with _admin().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure means the server is not usable here
        return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(e).__name__}); see systems.md for how to start it"
    return None


def _exists(conn, name: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar())


def clone(template: str, build: Callable[[str], None], prefix: str) -> str:
    """A new database `<prefix>_<random>` copied from `template`. A missing template is first built by
    `build(database)` into a scratch database, then published under its name by renaming it (atomic)."""
    with _admin().connect() as conn:
        missing = not _exists(conn, template)
    if missing:
        building = f"{template}_building_{uuid.uuid4().hex[:6]}"
        with _admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{building}"'))
        try:
            build(building)
            with _admin().connect() as conn:
                if not _exists(conn, template):
                    conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{template}"'))
        finally:
            drop(building)
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
    return database


def drop(database: str) -> None:
    with _admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the server's whole process group (it was started in a session of its own), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
