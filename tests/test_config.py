"""The sync configuration is typed and validated on load: invalid configurations, as a table of
(config, expected message)."""
from __future__ import annotations

import pytest
import yaml

from erp2crm.config import load_config
from erp2crm.errors import ConfigError
from erp2crm.paths import CONFIG

BASE = {"sources": [{"name": "odoo"}], "targets": [{"name": "salesforce", "kind": "salesforce"}]}

INVALID = [
    ({"targets": BASE["targets"]}, "sources: Field required"),
    ({**BASE, "sources": []}, "sources: List should have at least 1 item"),
    ({**BASE, "sources": [{"name": "Odoo-EU"}]}, "sources.0.name: name 'Odoo-EU' must be snake_case"),
    ({**BASE, "sources": [{"name": "odoo"}, {"name": "odoo"}]}, "duplicate source name(s): odoo"),
    ({**BASE, "targets": [{"name": "sf", "kind": "pipedrive"}]},
     "targets.0.kind: Input should be 'salesforce', 'hubspot' or 'bottlecrm'"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce", "batch_size": 500}]},
     "targets.0: batch_size: salesforce takes at most 200 records per call"),
    ({**BASE, "targets": [{"name": "hs", "kind": "hubspot", "batch_size": 200}]},
     "targets.0: batch_size: hubspot takes at most 100 records per call"),
    ({**BASE, "quality": {"max_quarantine_share": 1.5}}, "quality.max_quarantine_share: Input should be less than or equal to 1"),
    ({**BASE, "sources": [{"name": "odoo", "lookback_hours": -1}]}, "sources.0.lookback_hours: Input should be greater than or equal to 0"),
    ({**BASE, "hub_url": "postgres://x"}, "hub_url: Extra inputs are not permitted"),
    ({**BASE, "landing_keep_runs": 0}, "landing_keep_runs: Input should be greater than or equal to 1"),
    ({**BASE, "landing_dir": ["var", "landing"]}, "landing_dir: Input should be a valid string"),
    ({**BASE, "schedule": "every night"}, "schedule: 'every night' is neither an Airflow preset"),
    ({**BASE, "schedule": "0 25 * * *"}, "nor a five-field cron expression such as '0 2 * * *'"),
    ({**BASE, "schedule": "@nightly"}, "schedule: '@nightly' is neither an Airflow preset (@continuous, @daily"),
    ({**BASE, "start_date": "yesterday"}, "start_date: Input should be a valid date"),
    ({**BASE, "reporting_currency": "yuan"}, "reporting_currency: String should match pattern '^[A-Z]{3}$'"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce", "request_budget": {"requests": 0, "per": "day"}}]},
     "targets.0.request_budget.requests: Input should be greater than 0"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce", "request_budget": {"requests": "lots", "per": "day"}}]},
     "targets.0.request_budget.requests: Input should be a valid integer"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce", "request_budget": {"requests": 100}}]},
     "targets.0.request_budget.per: Field required"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce", "request_budget": {"requests": 100, "per": "week"}}]},
     "targets.0.request_budget.per: Input should be 'day' or 'hour'"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce",
                           "request_budget": {"requests": 100, "per": "day", "store": "memcached"}}]},
     "targets.0.request_budget.store: Input should be 'local' or 'redis'"),
    ({**BASE, "targets": [{"name": "sf", "kind": "salesforce",
                           "request_budget": {"requests": 100, "per": "day", "window_s": 60}}]},
     "targets.0.request_budget.window_s: Extra inputs are not permitted"),
]


@pytest.mark.parametrize("config,expected", INVALID, ids=[e for _, e in INVALID])
def test_invalid_config_names_file_and_field(tmp_path, config, expected):
    path = tmp_path / "erp2crm.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_shipped_config_is_valid_and_defaults_apply():
    config = load_config(CONFIG / "erp2crm.yaml")
    assert [s.name for s in config.sources] == ["odoo", "erpnext", "tryton"]
    assert config.source("odoo").connection_id == "odoo_default"
    assert config.source("odoo").mapping_path.name == "odoo.yaml"
    with pytest.raises(ConfigError, match="unknown source 'sap'"):
        config.source("sap")
