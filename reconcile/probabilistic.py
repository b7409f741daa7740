"""Probabilistic matching: Splink 5 (Fellegi-Sunter) on an in-process DuckDB.

The blocking rules and comparisons come from config/matching.yaml; the trained m and u probabilities from
the model file next to it. `score_pairs` returns scored candidate pairs with each field's weight, so that
every probabilistic link can be explained; `train` re-estimates the parameters on a set of records.
Splink's API is used only here.
"""
from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from erp2crm.errors import ConfigError
from reconcile.settings import Probabilistic

# Match column (as named in matching.yaml) → normalised column of the record frame.
FRAME_COLUMNS = {"name_key": "n_name_key", "email": "n_email", "phone": "n_phone", "tax_id": "n_tax_id",
                 "postcode": "n_postcode", "city": "n_city", "street": "n_street", "birth_date": "n_birth_date"}
PAIR_COLUMNS = ["left", "right", "match_probability", "match_weight", "fields"]  # fields: JSON text
TRAINED_ON = "erp2crm_trained_on_records"  # our key in the model file; Splink never sees it
# No level is impossible for a true match: a typo in a birth date or a tax id happens. Without a floor, a
# level never seen among the training matches gets m = 0, an infinitely negative weight.
MIN_M_PROBABILITY = 0.005
MIN_U_PROBABILITY = 1e-7


def _creator(prob: Probabilistic, probability_two_random_records_match: float = 1e-4, term_frequencies: bool = True):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons = []
    for c in prob.comparisons:
        comparison = cl.ExactMatch(c.column) if c.method == "exact" else cl.JaroWinklerAtThresholds(c.column, c.thresholds)
        adjusted = c.term_frequency and term_frequencies
        comparisons.append(comparison.configure(term_frequency_adjustments=True) if adjusted else comparison)
    return SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="unique_id", comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(*columns) for columns in prob.blocking],
        probability_two_random_records_match=probability_two_random_records_match,
        retain_intermediate_calculation_columns=True, retain_matching_columns=True,
        additional_columns_to_retain=[])


def size_class(n_records: int) -> int:
    """The order of magnitude of a record count (1000 for 700 to 3,162 records)."""
    return 10 ** round(math.log10(max(n_records, 1)))


def _prior(model: dict, n_records: int) -> float:
    """The chance that two random records are the same customer. It falls as 1/n (each customer has about
    the same number of records whatever the size of the set), so the trained value is rescaled from the
    number of records the model was trained on to the order of magnitude of the number being matched.
    Rounding keeps pairs scored in earlier runs comparable while the set grows within its size class."""
    trained = model.get("probability_two_random_records_match", 1e-4)
    trained_on = model.get(TRAINED_ON)
    if not trained_on or n_records < 2:
        return trained
    return min(0.5, trained * trained_on / size_class(n_records))


def _settings(prob: Probabilistic, model: dict, n_records: int = 0) -> dict:
    """The Splink settings of matching.yaml, with the trained parameters of `model` filled in."""
    term_frequencies = n_records >= prob.term_frequency_min_records
    settings = _creator(prob, _prior(model, n_records), term_frequencies).create_settings_dict("duckdb")
    trained = {c["output_column_name"]: {lvl["label_for_charts"]: lvl for lvl in c["comparison_levels"]}
               for c in model.get("comparisons", [])}
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            found = trained.get(name, {}).get(level["label_for_charts"], {})
            if "m_probability" not in found or "u_probability" not in found:
                raise ConfigError(
                    f"{prob.model_path}: no trained parameters for {name!r} level {level['label_for_charts']!r}; the "
                    "comparisons in matching.yaml changed since the model was trained. Run `erp2crm reconcile train`.")
            level["m_probability"], level["u_probability"] = found["m_probability"], found["u_probability"]
    return settings


def load_model(prob: Probabilistic) -> dict:
    try:
        return json.loads(prob.model_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{prob.model_path}: no trained matching model; run `erp2crm reconcile train` "
                          "or set probabilistic.enabled: false in matching.yaml") from None


def _input(frame: pd.DataFrame, prob: Probabilistic) -> pd.DataFrame:
    columns = {FRAME_COLUMNS[c.column]: c.column for c in prob.comparisons}
    columns.update({FRAME_COLUMNS[col]: col for rule in prob.blocking for col in rule})
    return frame[["unique_id", *columns]].rename(columns=columns)


def _linker(records: pd.DataFrame, settings: dict, prob: Probabilistic):
    """A Splink linker over `records` on a fresh in-process DuckDB, and that database (to register more)."""
    import duckdb
    from splink import DuckDBAPI, Linker

    spill = Path(tempfile.gettempdir()) / "erp2crm-duckdb"  # not DuckDB's default, ./.tmp in the working directory
    connection = duckdb.connect(config={"memory_limit": prob.memory_limit, "temp_directory": str(spill)})
    db_api = DuckDBAPI(connection=connection)
    return Linker(db_api.register(records), settings, log_level=None), db_api


def score_pairs(frame: pd.DataFrame, prob: Probabilistic, model: dict, is_new: np.ndarray | None = None) -> pd.DataFrame:
    """Candidate pairs of `frame` (normalised records with a `unique_id`) scoring at least review_at.
    With `is_new` (a mask over the rows), only pairs that involve a new record are scored: the new records
    against the rest and among themselves. Columns: left, right, match_probability, match_weight, fields ({column: [level, weight]})."""
    if len(frame) < 2:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    settings = _settings(prob, model, len(frame))
    records = _input(frame, prob)
    # The linker holds every record, so that term frequencies count the whole set even when only the new
    # records are scored.
    linker, db_api = _linker(records, settings, prob)
    if is_new is None:
        scored = linker.inference.predict(threshold_match_probability=prob.review_at, warning_mode="never")
    else:
        if not is_new.any():
            return pd.DataFrame(columns=PAIR_COLUMNS)
        for c in prob.comparisons:
            if c.term_frequency and len(records) >= prob.term_frequency_min_records:
                linker.table_management.compute_tf_table(c.column)
        new = db_api.register(records[is_new])
        scored = [linker.inference.predict_within(new, threshold_match_probability=prob.review_at, warning_mode="never")]
        if (~is_new).any():
            base = db_api.register(records[~is_new])
            scored.append(linker.inference.predict_between(new, base, threshold_match_probability=prob.review_at,
                                                           warning_mode="never"))
    tables = [_needed_columns(part, settings) for part in (scored if isinstance(scored, list) else [scored])]
    return _explained(pa.concat_tables(tables), settings)


def _needed_columns(scored, settings: dict) -> pa.Table:
    """Only what explaining a pair needs, straight from DuckDB to Arrow (not every compared value)."""
    relation = scored.as_duckdbpyrelation()
    wanted = ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        wanted += [c for c in (f"gamma_{name}", f"mw_{name}", f"mw_tf_adj_{name}") if c in relation.columns]
    return relation.select(*(f'"{c}"' for c in wanted)).to_arrow_table()


def _explained(pairs: pa.Table, settings: dict) -> pd.DataFrame:
    if pairs.num_rows == 0:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    # Each pair's evidence, as JSON text: per compared field, the level it reached and that level's match
    # weight (log2 of its Bayes factor, term frequency included): positive for agreement, negative for
    # disagreement, absent when a value was missing. Built in Arrow: a million pairs are common.
    parts = []
    for comparison in settings["comparisons"]:
        name = comparison["output_column_name"]
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        # gamma is -1 for a missing value, 0 for the last (else) level, up to len-1 for the first.
        prefixes = pa.array([None] + [f"{json.dumps(name)}: [{json.dumps(lvl['label_for_charts'], ensure_ascii=False)}, "
                                      for lvl in reversed(levels)], pa.string())
        prefix = pc.take(prefixes, pc.add(pc.cast(pairs[f"gamma_{name}"], pa.int64()), 1))
        weight = pairs[f"mw_{name}"]
        if f"mw_tf_adj_{name}" in pairs.column_names:  # how common the shared value is, in the field's weight
            weight = pc.add(weight, pc.fill_null(pairs[f"mw_tf_adj_{name}"], 0.0))
        parts.append(pc.binary_join_element_wise(prefix, pc.cast(pc.round(weight, 2), pa.string()), "], ", ""))
    joined = pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")
    fields = pc.binary_join_element_wise("{", pc.utf8_rtrim(joined, characters=", "), "}", "")
    left, right = pairs["unique_id_l"].to_numpy(zero_copy_only=False), pairs["unique_id_r"].to_numpy(zero_copy_only=False)
    swap = left > right  # Splink orders each pair by its own id rule; reconcile keeps left < right
    return pd.DataFrame({
        "left": np.where(swap, right, left).astype(object), "right": np.where(swap, left, right).astype(object),
        "match_probability": pairs["match_probability"].to_numpy(zero_copy_only=False).astype(float),
        "match_weight": pairs["match_weight"].to_numpy(zero_copy_only=False).astype(float),
        "fields": fields.to_numpy(zero_copy_only=False).astype(object)})


def train(frame: pd.DataFrame, prob: Probabilistic, label_column: str | None = None,
          out_path: Path | None = None, seed: int = 7) -> dict:
    """Estimate the model's parameters from records: u by random sampling; m from a column of true labels
    when the records have one, otherwise by expectation maximisation on the blocking rules."""
    from splink import block_on

    records = _input(frame, prob)
    if label_column:
        records = records.assign(**{label_column: frame[label_column].values})
    settings = _creator(prob).create_settings_dict("duckdb")
    linker, _ = _linker(records, settings, prob)
    logging.getLogger("splink").setLevel(logging.WARNING)
    deterministic = [block_on(col) for col in ("email", "phone", "tax_id") if col in records]
    if deterministic:
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=min(5e6, len(records) ** 2 / 4), seed=seed)
    if label_column:
        linker.training.estimate_m_from_label_column(label_column)
    else:
        for columns in prob.blocking[:2]:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
    model = linker.misc.save_model_to_json()
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):  # Splink leaves out a probability that came out as 0
                level["m_probability"] = max(level.get("m_probability") or 0.0, MIN_M_PROBABILITY)
                level["u_probability"] = max(level.get("u_probability") or 0.0, MIN_U_PROBABILITY)
    model[TRAINED_ON] = len(records)
    if out_path is not None:
        Path(out_path).write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return model
