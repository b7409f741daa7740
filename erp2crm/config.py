"""The sync configuration: sources, targets, hub, thresholds. Typed, validated on load, with errors that say
which file and which field is wrong."""
from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from erp2crm.errors import ConfigError
from erp2crm.paths import CONFIG, MAPPINGS, var_dir

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Endpoint(_Strict):
    """A named source or target: its name picks its mapping file and its Airflow connection."""
    name: str
    mapping: str | None = None  # file in mappings/, default <name>.yaml
    conn_id: str | None = None  # Airflow connection, default <name>_default

    @field_validator("name")
    @classmethod
    def _snake(cls, v: str) -> str:
        if not SNAKE.match(v):
            raise ValueError(f"name {v!r} must be snake_case (it names the module, mapping and conn_id)")
        return v

    @property
    def mapping_path(self) -> Path:
        return MAPPINGS / (self.mapping or f"{self.name}.yaml")

    @property
    def connection_id(self) -> str:
        return self.conn_id or f"{self.name}_default"


class SourceConfig(_Endpoint):
    lookback_hours: float = Field(24, ge=0)
    chunk_size: int = Field(50_000, gt=0)


# Records per call each CRM accepts: sObject Collections 200, HubSpot batch upsert 100; BottleCRM has no batch
# endpoint (one record per call), so its "batch" is how many records one push task handles between checks.
BATCH_LIMITS = {"salesforce": 200, "hubspot": 100, "bottlecrm": 1000}


class RequestBudgetConfig(_Strict):
    """At most `requests` calls to the target per fixed UTC day or hour, retries included, shared by every task
    (connectors/budget.py); counted on this machine (local) or in Redis, connection erp2crm_redis (redis)."""
    requests: int = Field(gt=0)
    per: Literal["day", "hour"]
    store: Literal["local", "redis"] = "local"


class TargetConfig(_Endpoint):
    kind: Literal["salesforce", "hubspot", "bottlecrm"]
    batch_size: int | None = Field(None, gt=0)  # records per call; default and maximum: the CRM's own limit
    # Salesforce only: from this many records to send on, one Bulk API 2.0 job (about six calls, whatever its size)
    # instead of a Collections call per 200 records. None: always Collections.
    bulk_threshold: int | None = Field(10_000, gt=0)
    # upsert: create and update; update_only: never create; create_only: never update an existing record;
    # mirror: upsert, and also retire the records of customers that are inactive or gone from the ERP.
    # Every mode but create_only retires the records of customers merged into another.
    mode: Literal["upsert", "update_only", "create_only", "mirror"] = "upsert"
    # How a record is retired: flag (write the mapping's status_field, and merged_into_field) or archive
    # (Salesforce: delete to the recycle bin; HubSpot: archive; BottleCRM: close, is_active false).
    retire: Literal["flag", "archive"] = "flag"
    # A request budget; when it is used up the push stops (QuotaExhausted) and the next run resumes. None: no cap.
    request_budget: RequestBudgetConfig | None = None

    @model_validator(mode="after")
    def _batch_limit(self) -> "TargetConfig":
        if "bulk_threshold" in self.model_fields_set and self.kind != "salesforce":
            raise ValueError(f"bulk_threshold: only a salesforce target has a Bulk API ({self.kind} has none)")
        limit = BATCH_LIMITS[self.kind]
        if self.batch_size is None:
            self.batch_size = limit
        elif self.batch_size > limit:
            raise ValueError(f"batch_size: {self.kind} takes at most {limit} records per call")
        return self
    max_rejected_share: float = Field(0.05, ge=0, le=1)


class QualityConfig(_Strict):
    # A source whose share of quarantined rows in a run passes this stops the run before anything is pushed.
    max_quarantine_share: float = Field(0.05, ge=0, le=1)
    # The same for the unified-customer and profile gates: the share of customers held by either.
    max_held_customer_share: float = Field(0.05, ge=0, le=1)


# Airflow's schedule presets; anything else must be a five-field cron expression (checked with croniter).
SCHEDULE_PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}


class SyncConfig(_Strict):
    hub_conn_id: str = "erp2crm_hub"
    # When erp_crm_customer_sync runs: an Airflow preset or a cron expression, or null for manual runs only.
    # DAG-shaping settings are baked into dags/erp2crm_dag_config.py by `erp2crm dags generate`.
    schedule: str | None = "@daily"
    start_date: date = date(2026, 1, 1)  # first data interval (UTC); earlier intervals are not scheduled
    reporting_currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")  # overrides the enrichment file's
    sources: list[SourceConfig] = Field(min_length=1)
    targets: list[TargetConfig] = Field(min_length=1)
    quality: QualityConfig = QualityConfig()
    enrichment: str = "enrichment.yaml"  # file in config/
    fx_rates: str = "fx_rates.csv"  # file in config/
    matching: str = "matching.yaml"  # identity resolution rules, blocking, comparisons, bands (config/)
    survivorship: str = "survivorship.yaml"  # golden-record rules per field (config/)
    # Run reports and Data Docs; relative to $ERP2CRM_VAR. On several worker machines, a shared volume.
    reports_dir: str = "reports"
    # Landing partitions (each run's extracted rows, read back by its staging gate) as Parquet files, relative to
    # $ERP2CRM_VAR; on several worker machines, a shared volume. null: in the hub database's stg_ tables instead
    # (no shared volume needed, about four times slower to write and read).
    landing_dir: str | None = "landing"
    landing_keep_runs: int = Field(3, ge=1)  # the landing of the last N runs is kept, older ones removed

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        if v is None or v in SCHEDULE_PRESETS:
            return v
        from croniter import croniter
        if v.startswith("@") or len(v.split()) != 5 or not croniter.is_valid(v):
            raise ValueError(f"{v!r} is neither an Airflow preset ({', '.join(sorted(SCHEDULE_PRESETS))}) nor a "
                             "five-field cron expression such as '0 2 * * *'")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> "SyncConfig":
        for kind, items in (("source", self.sources), ("target", self.targets)):
            names = [i.name for i in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} name(s): {', '.join(dupes)}")
        return self

    @property
    def landing_path(self) -> Path | None:
        return None if self.landing_dir is None else _under_var(self.landing_dir)

    @property
    def reports_path(self) -> Path:
        return _under_var(self.reports_dir)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"unknown source {name!r}; configured: {', '.join(s.name for s in self.sources)}")

    def target(self, name: str) -> TargetConfig:
        for t in self.targets:
            if t.name == name:
                return t
        raise ConfigError(f"unknown target {name!r}; configured: {', '.join(t.name for t in self.targets)}")


_UNION_BRANCH = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|function-.*)$")


def _model_names() -> set[str]:
    """Names of the pydantic models: a union's branch shows in an error's location by its model's name."""
    names, stack = set(), [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            names.add(sub.__name__)
            stack.append(sub)
    return names
_TYPE_MISMATCH = ("Input should be a valid string", "Input should be a valid list", "Input should be a valid dictionary")


def format_validation_error(path: Path, err: ValidationError) -> str:
    """One line per problem: `field.path: message`, without pydantic's union-branch names in the path."""
    problems, models = [], _model_names()
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"] if not (_UNION_BRANCH.match(str(p)) or str(p) in models)) \
            or "(top level)"
        problems.append((where, e["msg"].removeprefix("Value error, ")))
    # A union field reports a type mismatch for every branch it did not take; keep the informative ones.
    informative = {w for w, m in problems if not m.startswith(_TYPE_MISMATCH)}
    lines = [f"{path}: invalid configuration"]
    for where, msg in dict.fromkeys(problems):
        if msg.startswith(_TYPE_MISMATCH) and any(i.startswith(where) for i in informative):
            continue
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def config_path() -> Path:
    return Path(os.environ.get("ERP2CRM_CONFIG", CONFIG / "erp2crm.yaml"))


def load_config(path: Path | None = None) -> SyncConfig:
    path = path or config_path()
    try:
        return SyncConfig.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None


def _under_var(folder: str) -> Path:
    """A configured folder: absolute as given, relative under $ERP2CRM_VAR."""
    path = Path(folder)
    return path if path.is_absolute() else var_dir() / path
