"""The shipped mappings and the matcher reproduce the generator's ground truth exactly, over several seeds:
every real customer is one cluster (no missed merge) and no cluster mixes customers (no wrong merge)."""
from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine

import quality
from connectors.mapping import load_mapping
from connectors.sql import SqlSource
from demodata import generate
from erp2crm.paths import MAPPINGS
from reconcile import load_settings, resolve


@pytest.mark.parametrize("seed", [7, 11, 23, 42])
def test_mappings_and_matcher_reproduce_ground_truth(tmp_path, seed):
    generate(tmp_path, n_customers=300, seed=seed)
    frames = []
    for system in ("odoo", "erpnext", "tryton"):
        source = SqlSource(system, load_mapping(MAPPINGS / f"{system}.yaml"), create_engine(f"sqlite:///{tmp_path / f'{system}.db'}"))
        frames += list(source.extract("customer_record", None))
    records = pd.concat(frames, ignore_index=True)
    gate = quality.validate(records, "customer_record")
    bad = pd.read_csv(tmp_path / "bad_rows.csv", dtype=str).query("entity == 'customer_record'")
    bad_keys = set(bad["source_system"] + ":" + bad["source_id"])
    held = set(gate.quarantined["source_system"] + ":" + gate.quarantined["source_id"])
    assert held == bad_keys

    result = resolve(gate.passed, settings=load_settings())  # the shipped matching and survivorship settings
    keys = result.crosswalk["source_system"] + ":" + result.crosswalk["source_id"]
    got = {frozenset(g) for _, g in keys.groupby(result.crosswalk["customer_id"])}
    truth = pd.read_csv(tmp_path / "ground_truth.csv", dtype=str)
    truth["key"] = truth["source_system"] + ":" + truth["source_id"]
    expected = {frozenset(g) for _, g in truth[~truth["key"].isin(bad_keys)].groupby("true_customer_id")["key"]}
    assert got - expected == set(), f"wrong or missed merges: {sorted(map(sorted, got - expected))[:5]}"
    assert got == expected
