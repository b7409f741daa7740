"""Matching and survivorship settings, declared as data (config/matching.yaml, config/survivorship.yaml),
typed and validated on load.

matching.yaml says which deterministic rules run and in what order, how the probabilistic model blocks
and compares records, and where the three bands lie. Its trained parameters (m and u probabilities) live
in the model file it names, written by `erp2crm reconcile train`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from erp2crm.errors import ConfigError
from erp2crm.paths import CONFIG

RULES = ("same_tax_id", "same_email", "same_phone_similar_name")
# Comparison columns the normaliser produces; blocking and comparisons may only name these.
MATCH_COLUMNS = ("name_key", "email", "phone", "tax_id", "postcode", "city", "street", "birth_date")
GOLDEN_FIELDS = ("name", "given_name", "family_name", "company_name", "is_company", "email", "phone", "tax_id",
                 "street", "city", "postcode", "region", "country", "birth_date", "is_active")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Comparison(_Strict):
    """One field compared by the probabilistic model: exact, or Jaro-Winkler similarity levels."""
    column: Literal[MATCH_COLUMNS]  # type: ignore[valid-type]
    method: Literal["exact", "jaro_winkler"] = "exact"
    thresholds: list[float] = []  # jaro_winkler only: similarity levels, highest first
    # Weigh an exact agreement by how common the value is: two records sharing "Wang Fang" say less than
    # two sharing "Ouyang Nana" (Splink's term frequency adjustment).
    term_frequency: bool = False

    @model_validator(mode="after")
    def _thresholds_fit_method(self) -> "Comparison":
        if self.method == "exact" and self.thresholds:
            raise ValueError(f"comparison {self.column!r}: thresholds apply to jaro_winkler only")
        if self.method == "jaro_winkler":
            if not self.thresholds:
                raise ValueError(f"comparison {self.column!r}: jaro_winkler needs at least one threshold")
            if any(not 0 < t < 1 for t in self.thresholds) or self.thresholds != sorted(self.thresholds, reverse=True):
                raise ValueError(f"comparison {self.column!r}: thresholds must lie between 0 and 1, highest first")
        return self


class Probabilistic(_Strict):
    enabled: bool = True
    # Match probability at or above which a pair merges automatically; between review_at and auto_merge_at it
    # waits for a person in the review queue; below review_at the records stay separate.
    auto_merge_at: float = Field(0.9995, gt=0, lt=1)
    review_at: float = Field(0.9, gt=0, lt=1)
    # Candidate pairs: records that agree on every column of at least one of these lists.
    blocking: list[list[Literal[MATCH_COLUMNS]]] = Field(min_length=1)  # type: ignore[valid-type]
    comparisons: list[Comparison] = Field(min_length=1)
    model: str = "matching_model.json"  # trained parameters, in config/
    # Term frequencies are counted in the records being matched; in a small set they are noise (any shared
    # value looks common), so below this many records comparisons are made without them.
    term_frequency_min_records: int = Field(10_000, ge=0)
    # DuckDB's working memory for scoring; past it DuckDB spills to disk (the system temp directory) instead
    # of growing. 1GB keeps a million records under 4 GB in all, at no measurable cost in time.
    memory_limit: str = Field("1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")

    @model_validator(mode="after")
    def _bands_ordered(self) -> "Probabilistic":
        if self.review_at > self.auto_merge_at:
            raise ValueError(f"review_at ({self.review_at}) must not be above auto_merge_at ({self.auto_merge_at})")
        columns = [c.column for c in self.comparisons]
        if len(set(columns)) != len(columns):
            raise ValueError("each column may be compared once")
        return self

    @property
    def model_path(self) -> Path:
        return CONFIG / self.model


class MatchingSettings(_Strict):
    rules: list[Literal[RULES]] = list(RULES)  # type: ignore[valid-type]
    name_similarity: float = Field(90, ge=0, le=100)  # 0–100, for same_phone_similar_name
    default_phone_region: str = Field("CN", pattern="^[A-Z]{2}$")
    probabilistic: Probabilistic | None = None

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[str]) -> list[str]:
        if len(set(rules)) != len(rules):
            raise ValueError("a rule may be listed once")
        return rules


FieldRule = Literal["source_priority", "most_recent", "most_complete", "most_frequent"]


class FieldGroup(_Strict):
    """Fields taken together from one record (an address is not mixed from two)."""
    fields: list[Literal[GOLDEN_FIELDS]] = Field(min_length=1)  # type: ignore[valid-type]
    rule: Literal["source_priority", "most_recent", "most_complete"]


class SurvivorshipSettings(_Strict):
    source_priority: list[str] = []  # earlier sources win; unlisted sources come last
    default: FieldRule = "source_priority"
    fields: dict[Literal[GOLDEN_FIELDS], FieldRule] = {}  # type: ignore[valid-type]
    groups: dict[str, FieldGroup] = {}

    @model_validator(mode="after")
    def _each_field_once(self) -> "SurvivorshipSettings":
        seen: dict[str, str] = {name: "fields" for name in self.fields}
        for group_name, group in self.groups.items():
            for name in group.fields:
                if name in seen:
                    raise ValueError(f"field {name!r} is given a rule twice (in {seen[name]} and group {group_name!r})")
                seen[name] = f"group {group_name!r}"
        return self

    def rule_of(self, field: str) -> str:
        return self.fields.get(field, self.default)


class ReconcileSettings(_Strict):
    matching: MatchingSettings = MatchingSettings()
    survivorship: SurvivorshipSettings = SurvivorshipSettings()


def load_settings(matching_file: str = "matching.yaml", survivorship_file: str = "survivorship.yaml",
                  folder: Path = CONFIG) -> ReconcileSettings:
    from erp2crm.config import format_validation_error, read_yaml

    parts = {}
    for key, name, model in (("matching", matching_file, MatchingSettings),
                             ("survivorship", survivorship_file, SurvivorshipSettings)):
        path = folder / name
        try:
            parts[key] = model.model_validate(read_yaml(path) or {})
        except ValidationError as e:
            raise ConfigError(format_validation_error(path, e)) from None
    return ReconcileSettings(**parts)
