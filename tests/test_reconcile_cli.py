"""`erp2crm reconcile --input --output` (the benchmarks' interface) and `erp2crm review` on a real hub."""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from erp2crm.cli import main
from hub import HubStore


def test_reconcile_writes_one_row_per_record_with_the_dag_settings(tmp_path):
    source = tmp_path / "records.csv"
    pd.DataFrame([
        # Columns may be missing (no tax_id, no birth_date) and unknown ones are ignored (crm_owner).
        {"source_system": "odoo", "source_id": "1", "name": "张伟", "email": "ZW@Example.com", "crm_owner": "ana"},
        {"source_system": "erpnext", "source_id": "CUST-1", "name": "Wei Zhang", "email": "zw@example.com", "crm_owner": ""},
        {"source_system": "tryton", "source_id": "9", "name": "Li Na", "phone": "+86 138 0013 8000", "crm_owner": ""},
    ]).to_csv(source, index=False)
    out = tmp_path / "links.csv"
    result = CliRunner().invoke(main, ["reconcile", "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 records → 2 customers" in result.output
    links = pd.read_csv(out, dtype=str)
    assert list(links.columns) == ["source_system", "source_id", "customer_id", "match_band", "match_score"]
    assert len(links) == 3
    by_key = links.set_index("source_id")
    assert by_key.at["1", "customer_id"] == by_key.at["CUST-1", "customer_id"] != by_key.at["9", "customer_id"]
    assert by_key.at["CUST-1", "match_band"] == "auto" and float(by_key.at["CUST-1", "match_score"]) == 1.0
    assert by_key.at["9", "match_band"] == "separate"


@pytest.mark.parametrize("rows,expected", [
    ([{"source_id": "1", "name": "A"}], "missing column(s) source_system"),
    ([{"source_system": "odoo", "source_id": "", "name": "A"}], "1 record(s) without source_system or source_id (line 2)"),
    ([{"source_system": "odoo", "source_id": "1", "name": "A"}, {"source_system": "odoo", "source_id": "1", "name": "B"}],
     "2 rows share a (source_system, source_id), e.g. odoo:1"),
])
def test_reconcile_refuses_unusable_input_and_says_why(tmp_path, rows, expected):
    source = tmp_path / "records.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    result = CliRunner().invoke(main, ["reconcile", "--input", str(source), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2 and expected in result.output
    assert not (tmp_path / "out.csv").exists()


def test_review_decisions_are_recorded_and_listed(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = HubStore(url)
    hub.migrate()
    pairs = pd.DataFrame([{"left": "erpnext:A", "right": "odoo:1", "match_probability": 0.95, "match_weight": 4.2,
                           "fields": {"name_key": ["Exact match on name_key", 11.2], "city": ["All other comparisons", -3.1]}}])
    hub.save_matching_state(pairs, "m1", pairs, "run-1", pd.Timestamp("2026-11-23").to_pydatetime())
    runner = CliRunner()
    listed = runner.invoke(main, ["review", "list", "--hub", url])
    assert "erpnext:A  odoo:1  p=0.950" in listed.output and "name_key Exact match on name_key (+11.2)" in listed.output

    decided = runner.invoke(main, ["review", "reject", "odoo:1", "erpnext:A", "--hub", url, "--by", "ana"])
    assert decided.exit_code == 0 and "rejected by ana" in decided.output
    assert runner.invoke(main, ["review", "list", "--hub", url]).output.strip() == "nothing to review"
    assert "rejected by ana" in runner.invoke(main, ["review", "list", "--decided", "--hub", url]).output
    # A later run re-queues what it still finds uncertain, but never a pair a person has decided.
    hub.save_matching_state(pairs, "m1", pairs, "run-2", pd.Timestamp("2026-11-24").to_pydatetime())
    assert hub.reviews(("pending",)).empty and len(hub.reviews(("rejected",))) == 1
    # Any two records may be decided, queued or not (here: to split an automatic merge).
    unqueued = runner.invoke(main, ["review", "reject", "odoo:7", "tryton:3", "--hub", url, "--by", "ana"])
    assert "(the pair was not in the queue)" in unqueued.output
    assert set(hub.reviews(("rejected",))["left"]) == {"erpnext:A", "odoo:7"}


def test_train_names_a_missing_label_column(tmp_path):
    source = tmp_path / "records.csv"
    pd.DataFrame([{"source_system": "odoo", "source_id": "1", "name": "A"}]).to_csv(source, index=False)
    result = CliRunner().invoke(main, ["reconcile", "train", "--input", str(source), "--labels", "true_id",
                                       "--output", str(tmp_path / "model.json")])
    assert result.exit_code == 2 and "missing column(s) true_id" in result.output
    assert not (tmp_path / "model.json").exists()


def test_train_writes_a_model_the_matcher_accepts(tmp_path):
    import json

    from tests.test_matching import _bench_records

    data = _bench_records(3000, seed=3, truth=True)
    source, model_path = tmp_path / "records.csv", tmp_path / "model.json"
    data.drop(columns=["is_company", "is_active", "updated_at"]).to_csv(source, index=False)
    result = CliRunner().invoke(main, ["reconcile", "train", "--input", str(source), "--labels", "true_id",
                                       "--output", str(model_path)])
    assert result.exit_code == 0, result.output
    model = json.loads(model_path.read_text())
    assert model["erp2crm_trained_on_records"] == 3000
    levels = [lvl for c in model["comparisons"] for lvl in c["comparison_levels"] if not lvl.get("is_null_level")]
    assert levels and all(lvl["m_probability"] >= 0.005 and lvl["u_probability"] > 0 for lvl in levels)
    # Agreement on an e-mail is strong evidence, disagreement on a name is evidence against.
    email = next(c for c in model["comparisons"] if c["output_column_name"] == "email")["comparison_levels"]
    exact = next(lvl for lvl in email if lvl["label_for_charts"].startswith("Exact"))
    assert exact["m_probability"] / exact["u_probability"] > 1000

    from reconcile import load_settings, resolve

    settings = load_settings()
    linked = resolve(data.drop(columns="true_id"), settings=settings, model=model)
    assert linked.crosswalk["customer_id"].nunique() < len(data) / 2  # the trained model links records
