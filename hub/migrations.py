"""Versioned schema migrations, applied in order and recorded in `schema_migrations`.

Each migration is a function of a connection. A new schema change appends one; applied ones never change.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from erp2crm.canonical import PARSE_ERRORS
from hub import schema

_bookkeeping = MetaData()
schema_migrations = Table(
    "schema_migrations", _bookkeeping,
    Column("version", Integer, primary_key=True), Column("name", String(128)), Column("applied_at", DateTime))


def _v1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _add_columns(conn: Connection, table: Table, names: list[str]) -> None:
    """ALTER TABLE ADD COLUMN for each missing column (a database created by v1 at a later release has them)."""
    if not inspect(conn).has_table(table.name):
        return  # a table added by a later migration is created whole there
    present = {c["name"] for c in inspect(conn).get_columns(table.name)}
    for name in names:
        if name not in present:
            column = table.c[name]
            conn.execute(text(f"ALTER TABLE {conn.dialect.identifier_preparer.quote(table.name)} ADD COLUMN "
                              f"{conn.dialect.identifier_preparer.quote(name)} {column.type.compile(conn.dialect)}"))


def _v2_parse_errors_and_resolution(conn: Connection) -> None:
    for table in schema.STAGING_TABLES.values():
        _add_columns(conn, table, [PARSE_ERRORS])
    _add_columns(conn, schema.quarantine, ["resolution"])


def _v3_confirmed_payload(conn: Connection) -> None:
    _add_columns(conn, schema.push_state, ["payload"])


def _v4_new_entity_tables(conn: Connection) -> None:
    """Tables of entities added since (order_line, payment): create_all creates only the missing ones."""
    schema.metadata.create_all(conn)


def _v5_matching_state(conn: Connection) -> None:
    _add_columns(conn, schema.crosswalk, ["fingerprint"])
    schema.metadata.create_all(conn)  # match_pairs, match_reviews


def _v6_retired_records(conn: Connection) -> None:
    _add_columns(conn, schema.push_state, ["retired_at"])
    _add_columns(conn, schema.push_receipts, ["note"])


def _v7_contacts(conn: Connection) -> None:
    """The contact entity's tables (contacts, stg_contacts) and the contacts' push state and receipts."""
    schema.metadata.create_all(conn)


def _v8_retired_contacts(conn: Connection) -> None:
    _add_columns(conn, schema.contact_push_state, ["retired_at"])


def _v9_record_normal_forms(conn: Connection) -> None:
    schema.metadata.create_all(conn)  # record_normal_forms


def _v10_profile_hashes(conn: Connection) -> None:
    _add_columns(conn, schema.profiles, ["profile_hash", "basis", "customer_hash"])
    _add_columns(conn, schema.push_state, ["source_hash"])
    schema.metadata.create_all(conn)  # changed_owners
    schema.ORDER_LINES_BY_ORDER.create(conn, checkfirst=True)


MIGRATIONS = [(1, "initial schema", _v1_initial),
              (2, "staging parse errors; quarantine resolution", _v2_parse_errors_and_resolution),
              (3, "last confirmed payload per target and customer", _v3_confirmed_payload),
              (4, "order line and payment tables", _v4_new_entity_tables),
              (5, "record fingerprints, scored pairs and the review queue", _v5_matching_state),
              (6, "retired CRM records; receipt notes", _v6_retired_records),
              (7, "contacts: entity tables, push state and receipts", _v7_contacts),
              (8, "retired CRM contacts", _v8_retired_contacts),
              (9, "normalised identity fields of customer records", _v9_record_normal_forms),
              (10, "profile hashes; changed document owners", _v10_profile_hashes)]
LATEST = MIGRATIONS[-1][0]


def applied_versions(conn: Connection) -> set[int]:
    if not inspect(conn).has_table("schema_migrations"):
        return set()
    return set(conn.scalars(select(schema_migrations.c.version)))


def migrate(engine: Engine) -> list[int]:
    """Bring the hub schema to the latest version; returns the versions applied now."""
    applied_now = []
    with engine.begin() as conn:
        _bookkeeping.create_all(conn)
        done = applied_versions(conn)
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            step(conn)
            conn.execute(schema_migrations.insert().values(
                version=version, name=name, applied_at=datetime.now(timezone.utc).replace(tzinfo=None)))
            applied_now.append(version)
    return applied_now
