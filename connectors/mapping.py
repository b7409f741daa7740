"""Declarative mapping files (mappings/<source>.yaml): ERP tables and columns → canonical entities.

A field is a column name, or an object built from a closed set of steps applied in this order:
`column` (a list means the first non-null), `lookup` (one or a chain of key→value tables), `values`
(a value map; `otherwise` for unmapped values, else they pass through so that quality can flag them),
`transform` (a named transform), `divide_by`, `times` (another column's value), `negate_when`, `default` (for nulls), `when` (rows whose
other column has given values take a constant). There are no
expression strings: table and column names are checked against the database before any query runs.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from erp2crm.canonical import CUSTOMER_LINKED_ENTITIES, ENTITIES
from erp2crm.config import format_validation_error, read_yaml
from erp2crm.errors import ConfigError

# ERPNext tables contain spaces ("tabSales Order"), Tryton's relation tables single hyphens
# ("account_invoice-account_move_line"), API objects and fields dots ("party.party", "currency.code");
# never two hyphens in a row (an SQL comment) nor two dots.
IDENTIFIER = re.compile(r"^(?!.*--)(?!.*\.\.)[A-Za-z_][A-Za-z0-9_ .\-]{0,62}$")
CONNECTOR_DIR = Path(__file__).parent


def class_name(connector: str) -> str:
    """The class a connector module defines for its one snake_case name: tryton_rpc → TrytonRpc."""
    return "".join(part.capitalize() for part in connector.split("_"))


def source_connectors() -> list[str]:
    """"sql" and every API source in connectors/: a module <name>.py defining class <Name>(ApiSource)."""
    return ["sql"] + sorted(p.stem for p in CONNECTOR_DIR.glob("*.py")
                            if f"class {class_name(p.stem)}(ApiSource)" in p.read_text())
TRANSFORMS = ("strip", "lower", "upper", "boolean", "not", "number")


def _identifier(value: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain table or column name (letters, digits, _, spaces, single - or .)")
    return value


def _where_columns(where: dict) -> dict:
    """A `where` filter's keys are column names."""
    for column in where:
        _identifier(column)
    return where


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lookup(_Strict):
    table: str
    key: str
    value: str
    where: dict[str, str | int | bool | list[str | int | bool]] = {}  # a list means any of these values
    # A key the table does not hold passes through as it is, rather than becoming empty: a document whose partner
    # is missing keeps that partner's id, and is held as orphan_customer naming it.
    keep_unmatched: bool = False

    _check = field_validator("table", "key", "value")(classmethod(lambda cls, v: _identifier(v)))
    _where = field_validator("where")(classmethod(lambda cls, v: _where_columns(v)))


def lookup_id(lookup: Lookup) -> tuple:
    """The identity of a lookup table, so that each is read once per extraction."""
    where = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in lookup.where.items()))
    return (lookup.table, lookup.key, lookup.value, where)


class NegateWhen(_Strict):
    column: str
    equals: list[str | int | bool] = Field(min_length=1)
    _check = field_validator("column")(classmethod(lambda cls, v: _identifier(v)))


class When(_Strict):
    """Rows whose `column` equals one of `equals` take the constant `value`, whatever the other steps gave."""
    column: str
    equals: list[str | int | bool] = Field(min_length=1)
    value: Any
    _check = field_validator("column")(classmethod(lambda cls, v: _identifier(v)))


class FieldSpec(_Strict):
    column: str | list[str] | None = None
    lookup: Lookup | list[Lookup] | None = None
    values: dict[str, Any] | None = None
    otherwise: Any = None
    transform: Literal[TRANSFORMS] | None = None
    divide_by: float | None = Field(None, gt=0)
    times: str | None = None  # multiply by this column's value (an amount stored as quantity × unit price)
    negate_when: NegateWhen | None = None
    default: Any = None
    when: list[When] = []

    @field_validator("column")
    @classmethod
    def _columns(cls, v):
        for column in [v] if isinstance(v, str) else (v or []):
            _identifier(column)
        return v

    @field_validator("times")
    @classmethod
    def _times_column(cls, v):
        return v if v is None else _identifier(v)

    @field_validator("values", mode="before")
    @classmethod
    def _string_keys(cls, v):
        # YAML reads `1:` and `true:` as numbers and booleans; source values are compared as text.
        return {_as_text(k): val for k, val in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _has_source(self) -> "FieldSpec":
        if self.column is None and self.default is None:
            raise ValueError("needs a `column` or a constant `default`")
        if self.lookup is not None and self.column is None:
            raise ValueError("a `lookup` needs the `column` holding its key")
        return self

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column or [])

    @property
    def other_columns(self) -> list[str]:
        """Columns read only to decide a step (negate_when, when)."""
        return (([self.negate_when.column] if self.negate_when else []) + [w.column for w in self.when]
                + ([self.times] if self.times else []))

    @property
    def lookups(self) -> list[Lookup]:
        return [] if self.lookup is None else [self.lookup] if isinstance(self.lookup, Lookup) else list(self.lookup)


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class UpdatedFrom(_Strict):
    """The parent row whose last change is the row's: `column` holds the parent's `key` in `table`."""
    table: str
    key: str
    column: str
    _check = field_validator("table", "key", "column")(classmethod(lambda cls, v: _identifier(v)))


class Exists(_Strict):
    """Only rows that have a row in `table` whose `key` is the row's `column` and whose columns hold the values of
    `where` (e.g. contacts of a customer, not of a supplier). SQL sources only: a correlated EXISTS subquery."""
    table: str
    key: str
    column: str
    where: dict[str, str | int | bool | list[str | int | bool]] = {}
    _check = field_validator("table", "key", "column")(classmethod(lambda cls, v: _identifier(v)))
    _where = field_validator("where")(classmethod(lambda cls, v: _where_columns(v)))


class StreamMapping(_Strict):
    table: str
    primary_key: str
    updated_at: str | list[str]  # first non-null of these columns is the row's last change
    # Rows with no time of their own (order lines, payment allocations) take their parent row's: updated_at then
    # names columns of the parent table (SQL sources only).
    updated_from: UpdatedFrom | None = None
    # Only rows whose columns hold one of these values belong to the stream (e.g. an ERP table that keeps
    # customer invoices, vendor bills and journal entries together). Filtered in SQL, with bound values.
    where: dict[str, str | int | bool | list[str | int | bool]] = {}
    present: list[str] = []  # only rows where these columns hold a value (e.g. a move line that pays an invoice)
    absent: list[str] = []  # only rows where these columns hold no value (e.g. partners that have no parent)
    exists: Exists | None = None  # only rows with a matching row in another table (SQL sources)
    fields: dict[str, str | FieldSpec]

    _check = field_validator("table", "primary_key")(classmethod(lambda cls, v: _identifier(v)))

    @field_validator("present", "absent")
    @classmethod
    def _present_columns(cls, v: list) -> list:
        return [_identifier(column) for column in v]

    @model_validator(mode="after")
    def _present_or_absent(self) -> "StreamMapping":
        both = sorted(set(self.present) & set(self.absent))
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both present and absent: the stream would have no rows")
        return self

    @field_validator("where")
    @classmethod
    def _where_columns(cls, v: dict) -> dict:
        for column, wanted in v.items():
            _identifier(column)
            if isinstance(wanted, list) and not wanted:
                raise ValueError(f"where.{column}: an empty list would select no rows")
        return v

    @field_validator("updated_at")
    @classmethod
    def _updated(cls, v):
        for column in [v] if isinstance(v, str) else v:
            _identifier(column)
        return v

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, v):
        if isinstance(v, dict):
            return {k: ({"column": spec} if isinstance(spec, str) else spec) for k, spec in v.items()}
        return v

    @property
    def updated_columns(self) -> list[str]:
        return [self.updated_at] if isinstance(self.updated_at, str) else list(self.updated_at)


class SourceMapping(_Strict):
    source: str
    connector: str = "sql"  # "sql", or the API connector module connectors/<connector>.py that reads it
    source_timezone: str = "UTC"  # naive timestamps in the source are in this zone
    # The source writes timestamps as text with their UTC offset (ISO 8601): one without is a data error,
    # quarantined as missing_utc_offset rather than guessed.
    timestamps_with_offset: bool = False
    default_phone_region: str = Field("CN", min_length=2, max_length=2)
    streams: dict[str, StreamMapping]

    @field_validator("connector")
    @classmethod
    def _known_connector(cls, v: str) -> str:
        known = source_connectors()
        if v not in known:
            raise ValueError(f"{v!r} is not a source connector: no module connectors/{v}.py (known: {', '.join(known)})")
        return v

    @model_validator(mode="after")
    def _canonical_fields(self) -> "SourceMapping":
        for name, stream in self.streams.items():
            if name not in ENTITIES:
                raise ValueError(f"streams.{name}: unknown entity; expected one of {', '.join(ENTITIES)}")
            allowed = set(ENTITIES[name].fields) - {"source_system", "source_id", "updated_at"}
            unknown = sorted(set(stream.fields) - allowed)
            if unknown:
                raise ValueError(f"streams.{name}.fields: unknown canonical field(s) {', '.join(unknown)}; "
                                 f"allowed: {', '.join(sorted(allowed))}")
            if name in CUSTOMER_LINKED_ENTITIES and "customer_source_id" not in stream.fields:
                raise ValueError(f"streams.{name}.fields: customer_source_id is required (the {name}'s customer)")
            if stream.updated_from is not None and self.connector != "sql":
                raise ValueError(f"streams.{name}.updated_from: only the sql connector reads a parent's timestamp")
            if stream.exists is not None and self.connector != "sql":
                raise ValueError(f"streams.{name}.exists: only the sql connector filters on another table")
        if "customer_record" not in self.streams:
            raise ValueError("streams: a source needs a customer_record stream")
        return self


def load_mapping(path: Path) -> SourceMapping:
    try:
        mapping = SourceMapping.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None
    if mapping.source != path.stem:
        raise ConfigError(f"{path}: source: {mapping.source!r} must match the file name {path.stem!r}")
    return mapping
