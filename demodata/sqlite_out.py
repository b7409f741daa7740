"""Tiny SQLite writer shared by the three ERP modules: a schema is {table: ["column TYPE ...", ...]}."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path


def columns(schema: dict[str, list[str]], table: str) -> list[str]:
    return [spec.split()[0] for spec in schema[table]]


def create(path: Path, schema: dict[str, list[str]]) -> sqlite3.Connection:
    """A fresh database file with the given tables (table names quoted: ERPNext's contain spaces).

    Journaling and fsync are off: the file is rebuilt from scratch on every run, so a crash costs
    nothing, and bulk loads of millions of rows stay fast.
    """
    for leftover in (path, path.with_name(path.name + "-journal")):
        leftover.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    for table, specs in schema.items():
        conn.execute(f'CREATE TABLE "{table}" ({", ".join(specs)})')
    return conn


def insert(conn: sqlite3.Connection, schema: dict[str, list[str]], table: str, rows: Iterable[tuple]) -> None:
    cols = columns(schema, table)
    conn.executemany(f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})', rows)
