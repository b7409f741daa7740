"""`erp2crm connector new`: the scaffold is valid from the start and its contract test fails, saying what to
do, until it is pointed at a test server."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from click.testing import CliRunner

import connectors.mapping as mapping_module
from connectors.api import ApiSource
from connectors.mapping import class_name, load_mapping
from erp2crm.cli import main
from erp2crm.errors import ConfigError
from erp2crm.paths import ROOT
from erp2crm.scaffold import new_connector


@pytest.fixture
def root(tmp_path):
    for folder in ("mappings", "tests", "connectors"):
        (tmp_path / folder).mkdir()
    return tmp_path


@pytest.mark.parametrize("api", [False, True], ids=["sql", "api"])
def test_scaffold_files_are_valid_and_named_by_the_connector(root, monkeypatch, api):
    files = {p.relative_to(root).as_posix() for p in new_connector("acme_erp", api, root)}
    expected = {"mappings/acme_erp.yaml", "tests/test_acme_erp.py"} | ({"connectors/acme_erp.py"} if api else set())
    assert files == expected
    if api:
        monkeypatch.setattr(mapping_module, "CONNECTOR_DIR", root / "connectors")
        spec = importlib.util.spec_from_file_location("acme_erp", root / "connectors" / "acme_erp.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert issubclass(getattr(module, class_name("acme_erp")), ApiSource) and hasattr(module, "AcmeErpHook")
    mapping = load_mapping(root / "mappings" / "acme_erp.yaml")
    assert mapping.connector == ("acme_erp" if api else "sql") and {"customer_record", "order"} <= set(mapping.streams)


def test_the_scaffolded_contract_test_fails_with_instructions(root):
    new_connector("acme_erp", False, root)
    (root / "tests" / "conftest.py").write_text("")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests" / "test_acme_erp.py")],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}",
                                                                          "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stdout[-2000:]
    assert "7 errors" in done.stdout or "7 failed" in done.stdout, done.stdout[-2000:]
    assert "acme_erp: connect the contract suite to a test server" in done.stdout


@pytest.mark.parametrize("name, message", [
    ("Acme-ERP", "must be snake_case"),
    ("tryton_rpc", "is taken"),
    ("http", "is taken"),
])
def test_a_bad_or_taken_name_is_refused(root, name, message):
    with pytest.raises(ConfigError, match=message):
        new_connector(name, True, root)


def test_the_cli_refuses_to_overwrite(root, monkeypatch):
    monkeypatch.setattr("erp2crm.scaffold.ROOT", root)
    runner = CliRunner()
    first = runner.invoke(main, ["connector", "new", "acme_erp", "--api"])
    assert first.exit_code == 0 and "wrote" in first.output and (root / "connectors" / "acme_erp.py").exists()
    again = runner.invoke(main, ["connector", "new", "acme_erp"])
    assert again.exit_code == 2 and "not overwriting mappings/acme_erp.yaml" in again.output
