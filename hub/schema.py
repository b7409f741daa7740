"""Table definitions of the hub store (SQLAlchemy Core), generated from the canonical model where they can be.

Two tables per canonical entity: `stg_<table>` is the landing zone when the configuration's `landing_dir` is null
(otherwise landing partitions are Parquet files, `hub.landing`), partitioned by (run_id, source_system) so that
re-running an extraction overwrites its own partition; `<table>` holds the current, validated version of every row.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, Float, Index, Integer, MetaData,
                        PrimaryKeyConstraint, String, Table, Text)

from erp2crm.canonical import BOOLEAN, DATE, ENTITIES, FLOAT, INTEGER, PARSE_ERRORS, STRING, TIMESTAMP

metadata = MetaData()

SQL_TYPES = {STRING: Text, INTEGER: BigInteger, FLOAT: Float, BOOLEAN: Boolean, DATE: Date, TIMESTAMP: DateTime}
KEY_TYPE = String(255)  # keys are bounded so that PostgreSQL and MariaDB can index them


def _entity_columns(entity, keys_bounded: bool = True) -> list[Column]:
    return [Column(name, KEY_TYPE if name in entity.key and keys_bounded else SQL_TYPES[kind]())
            for name, kind in entity.fields.items()]


ENTITY_TABLES: dict[str, Table] = {}
STAGING_TABLES: dict[str, Table] = {}
for _entity in ENTITIES.values():
    ENTITY_TABLES[_entity.name] = Table(
        _entity.table, metadata, *_entity_columns(_entity), Column("run_id", KEY_TYPE),
        PrimaryKeyConstraint(*_entity.key))
    STAGING_TABLES[_entity.name] = Table(
        f"stg_{_entity.table}", metadata, Column("run_id", KEY_TYPE, nullable=False), *_entity_columns(_entity),
        Column(PARSE_ERRORS, Text),
        Index(f"ix_stg_{_entity.table}_partition", "run_id", "source_system"))
    if "customer_source_id" in _entity.fields:
        Index(f"ix_{_entity.table}_customer", ENTITY_TABLES[_entity.name].c.source_system,
              ENTITY_TABLES[_entity.name].c.customer_source_id)

# Enrich reads the lines of the orders it recomputes (erp2crm.refresh): by their order, not by a scan of every line.
ORDER_LINES_BY_ORDER = Index("ix_order_lines_order", ENTITY_TABLES["order_line"].c.source_system,
                             ENTITY_TABLES["order_line"].c.order_source_id)

crosswalk = Table(
    "crosswalk", metadata,
    Column("source_system", KEY_TYPE, nullable=False), Column("source_id", KEY_TYPE, nullable=False),
    Column("customer_id", KEY_TYPE, nullable=False, index=True),
    Column("match_rule", String(64)), Column("match_band", String(16)), Column("match_score", Float),
    Column("explanation", Text), Column("linked_at", DateTime), Column("run_id", KEY_TYPE),
    Column("fingerprint", String(32)),  # hash of the identity fields it was linked with: changed → re-linked
    PrimaryKeyConstraint("source_system", "source_id"))

# Each customer record's identity fields in normalised form ("system:id", the record's fingerprint and the
# normaliser that produced them): the next reconcile normalises only new and changed records.
record_normal_forms = Table(
    "record_normal_forms", metadata,
    Column("unique_id", KEY_TYPE, primary_key=True), Column("fingerprint", String(32)),
    Column("normaliser", String(32)),
    *(Column(name, Text) for name in ("n_name", "n_email", "n_phone", "n_tax_id", "n_name_key", "n_street", "n_city",
                                      "n_postcode", "n_birth_date")))

# Scored candidate pairs ("system:id" both ends, left < right) at or above the review threshold, kept so
# that the next run scores only pairs involving new or changed records; `model` names the parameters used.
match_pairs = Table(
    "match_pairs", metadata,
    Column("left_id", KEY_TYPE, nullable=False), Column("right_id", KEY_TYPE, nullable=False),
    Column("match_probability", Float), Column("match_weight", Float), Column("fields", Text),  # JSON
    Column("model", String(32)), Column("run_id", KEY_TYPE),
    PrimaryKeyConstraint("left_id", "right_id"))

# The review queue: pairs scored between review_at and auto_merge_at. A person's decision (accepted or
# rejected) is kept and respected by every later run; pending entries are refreshed each run.
match_reviews = Table(
    "match_reviews", metadata,
    Column("left_id", KEY_TYPE, nullable=False), Column("right_id", KEY_TYPE, nullable=False),
    Column("match_probability", Float), Column("fields", Text),
    Column("status", String(16), nullable=False),  # pending | accepted | rejected
    Column("decided_by", String(128)), Column("decided_at", DateTime), Column("note", Text),
    Column("queued_at", DateTime), Column("run_id", KEY_TYPE),
    PrimaryKeyConstraint("left_id", "right_id"))

customers = Table(
    "customers", metadata,
    Column("customer_id", KEY_TYPE, primary_key=True),
    *(Column(name, SQL_TYPES[kind]()) for name, kind in ENTITIES["customer_record"].fields.items()
      if name not in ("source_system", "source_id", "updated_at")),
    Column("source_count", Integer), Column("source_ids", Text),  # JSON list of "system:id"
    Column("held", Boolean, default=False),  # failed the unified-customer gate: not profiled, not pushed
    Column("created_at", DateTime), Column("updated_at", DateTime), Column("run_id", KEY_TYPE))

customer_events = Table(
    "customer_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", KEY_TYPE), Column("event", String(16)),  # created | merged | split
    Column("customer_id", KEY_TYPE), Column("previous_ids", Text), Column("occurred_at", DateTime))

profiles = Table(
    "profiles", metadata,
    Column("customer_id", KEY_TYPE, primary_key=True),
    Column("profile", Text, nullable=False),  # JSON: the profile's fields; columns below are the queried ones
    Column("segment", String(32)), Column("net_value", Float), Column("clv", Float),
    Column("churn_risk", Float),
    Column("push_ready", Boolean, default=True),  # null: recomputed, not yet checked by the profile gate
    Column("computed_at", DateTime), Column("run_id", KEY_TYPE),
    Column("profile_hash", String(64)),  # of the profile's JSON: a push rebuilds a payload only when it changed
    Column("basis", String(64)),  # of what every profile depends on besides its data (erp2crm.refresh.basis)
    Column("customer_hash", String(16)))  # of its customer's columns it was built from (erp2crm.refresh)

# Per run, the owners of the documents its staging gate changed or removed (customer records; orders, for order
# lines), as they were before the change and after it: the next enrich recomputes those customers' profiles, then
# deletes the rows. Entity "*": that run's changes were not recorded one by one; every profile is recomputed.
changed_owners = Table(
    "changed_owners", metadata,
    Column("run_id", KEY_TYPE, nullable=False), Column("entity", String(32), nullable=False),
    Column("source_system", KEY_TYPE, nullable=False), Column("owner_id", KEY_TYPE, nullable=False),
    PrimaryKeyConstraint("run_id", "entity", "source_system", "owner_id"))

profile_history = Table(
    "profile_history", metadata,
    Column("run_id", KEY_TYPE, nullable=False), Column("customer_id", KEY_TYPE, nullable=False),
    Column("segment", String(32)), Column("net_value", Float), Column("clv", Float), Column("churn_risk", Float),
    Column("computed_at", DateTime), PrimaryKeyConstraint("run_id", "customer_id"))

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", KEY_TYPE, index=True), Column("stage", String(32)),  # staging | unified_customer | profile
    Column("entity", String(32)), Column("source_system", KEY_TYPE), Column("record_id", KEY_TYPE),
    Column("reason_code", String(255)), Column("expectation", Text), Column("reason", Text),
    Column("record", Text),  # JSON of the row as it arrived
    Column("quarantined_at", DateTime), Column("released_at", DateTime), Column("released_run_id", KEY_TYPE),
    # Why a held row stopped being held: passed (a later check let it through), superseded (re-checked and
    # failed again: the newer entry holds it now) or gone (the customer no longer exists).
    Column("resolution", String(16)),
    Index("ix_quarantine_record", "entity", "source_system", "record_id"))

push_state = Table(
    "push_state", metadata,
    Column("target", String(64), nullable=False), Column("customer_id", KEY_TYPE, nullable=False),
    Column("payload_hash", String(64)), Column("crm_id", String(64)), Column("confirmed_at", DateTime),
    Column("payload", Text),  # JSON of the last confirmed payload: what `push --dry-run` compares field by field
    Column("retired_at", DateTime),  # when its record was flagged or archived (merged away, inactive, gone)
    # Of the profile and the mapping the confirmed payload was built from (erp2crm.push.source_hash): while both
    # are the same, the payload is too, and the push does not rebuild it.
    Column("source_hash", String(64)),
    PrimaryKeyConstraint("target", "customer_id"))

# Contact persons pushed to a target (erp2crm/contacts.py): keyed by the contact's CRM external id (`contact_key`,
# "<source_system>:<source_id>" of the source record that represents it), with the unified customer whose account
# it was linked to at its last confirmed write.
contact_push_state = Table(
    "contact_push_state", metadata,
    Column("target", String(64), nullable=False), Column("contact_key", KEY_TYPE, nullable=False),
    Column("customer_id", KEY_TYPE), Column("payload_hash", String(64)), Column("crm_id", String(64)),
    Column("confirmed_at", DateTime), Column("payload", Text),
    Column("retired_at", DateTime),  # when its record was flagged or archived (merged into another contact, gone)
    PrimaryKeyConstraint("target", "contact_key"))

contact_receipts = Table(
    "contact_receipts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", KEY_TYPE, index=True), Column("target", String(64)), Column("contact_key", KEY_TYPE),
    Column("customer_id", KEY_TYPE),
    Column("result", String(16)),  # created | updated | unchanged | retired | skipped | deferred | rejected | unsent
    Column("crm_id", String(64)), Column("error", Text), Column("payload_hash", String(64)),
    Column("pushed_at", DateTime), Column("note", Text))

push_receipts = Table(
    "push_receipts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", KEY_TYPE, index=True), Column("target", String(64)), Column("customer_id", KEY_TYPE),
    Column("result", String(16)),  # created | updated | unchanged | retired | skipped | rejected
    Column("crm_id", String(64)), Column("error", Text), Column("payload_hash", String(64)),
    Column("pushed_at", DateTime), Column("note", Text))  # why a record was retired (merged into …) or skipped

runs = Table(
    "runs", metadata,
    Column("run_id", KEY_TYPE, primary_key=True), Column("dag_id", String(255)),
    Column("status", String(16)),  # running | success | failed
    Column("window_start", DateTime), Column("window_end", DateTime), Column("full_refresh", Boolean),
    Column("started_at", DateTime), Column("finished_at", DateTime), Column("summary", Text))

run_stages = Table(
    "run_stages", metadata,
    Column("run_id", KEY_TYPE, nullable=False), Column("stage", String(64), nullable=False),
    Column("started_at", DateTime), Column("finished_at", DateTime), Column("duration_s", Float),
    Column("counts", Text),  # JSON
    PrimaryKeyConstraint("run_id", "stage"))

source_state = Table(
    "source_state", metadata,
    Column("source_system", KEY_TYPE, primary_key=True),
    Column("last_success_run_id", KEY_TYPE), Column("last_window_end", DateTime))
