"""The identity-resolution benchmark data generator (bench/reconcile_data.py): shape, truth, noise, determinism."""
from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pandas as pd
import pytest

N_RECORDS = 3000
SYSTEMS = {"odoo", "erpnext", "tryton"}


def _load_generator():
    path = Path(__file__).resolve().parents[1] / "bench" / "reconcile_data.py"
    spec = importlib.util.spec_from_file_location("reconcile_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reconcile_data", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return gen.generate(N_RECORDS, seed=7)


def test_shape_and_columns(records):
    assert len(records) == N_RECORDS
    assert list(records.columns) == list(gen.COLUMNS)
    assert records["true_id"].notna().all() and records["name"].notna().all()


def test_same_seed_same_frame(records):
    pd.testing.assert_frame_equal(gen.generate(N_RECORDS, seed=7), records)


def test_different_seed_different_frame(records):
    assert not gen.generate(N_RECORDS, seed=8).equals(records)


def test_about_three_records_per_customer(records):
    ratio = len(records) / records["true_id"].nunique()
    assert 2.5 <= ratio <= 3.5


def test_three_systems_with_unique_source_ids(records):
    assert set(records["source_system"]) == SYSTEMS
    assert not records.duplicated(["source_system", "source_id"]).any()


def test_chinese_script_and_romanised_names(records):
    cjk = records["name"].str.contains(r"[\u4e00-\u9fff]", regex=True)
    romanised = (records["country"] == "CN") & ~cjk
    assert cjk.mean() > 0.10
    assert romanised.mean() > 0.10
    assert records.loc[romanised, "name"].str.fullmatch(r"[A-Za-z][A-Za-z ,.'-]*").all()


def test_different_customers_share_names(records):
    """The hard negatives: at least 50 pairs of different real customers with an identical name."""
    pairs = set()
    for ids in records.groupby("name")["true_id"].unique():
        pairs.update(itertools.combinations(sorted(ids), 2))
    assert len(pairs) >= 50


def test_present_values_are_plausible(records):
    assert records["email"].dropna().str.contains("@").all()
    assert records["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert records["birth_date"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    cn_postcodes = records.loc[records["country"] == "CN", "postcode"].dropna()
    assert cn_postcodes.str.fullmatch(r"\d{6}").all()
