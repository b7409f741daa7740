"""Which class serves a source or target: by the `connector` of its mapping file or the `kind` of its config.

An API connector is found by its name alone (one snake_case name for module, class, hook and mapping):
`connector: tryton_rpc` is class TrytonRpc, built with a client from TrytonRpcHook, in connectors/tryton_rpc.py.
"""
from __future__ import annotations

import importlib

from connectors.api import ApiSource
from connectors.budget import request_budget
from connectors.hooks import SqlDatabaseHook
from connectors.mapping import class_name, load_mapping, source_connectors
from connectors.salesforce import SalesforceHook, SalesforceSink
from connectors.sql import SqlSource
from erp2crm.config import SourceConfig, TargetConfig
from erp2crm.errors import ConfigError

TARGET_KINDS = {"salesforce": "Salesforce sObject Collections upsert by external id",
                "hubspot": "HubSpot CRM v3 batch upsert by a unique property",
                "bottlecrm": "BottleCRM (django-crm) REST: find by stored CRM id or customer id, then create or update"}


def source_connector_descriptions() -> dict[str, str]:
    """Each source connector and the first line of its module's docstring."""
    out = {"sql": "generic SQL source: any SQLAlchemy database, read through a mapping file"}
    for name in source_connectors()[1:]:
        doc = importlib.import_module(f"connectors.{name}").__doc__ or ""
        out[name] = doc.strip().split(":")[0].replace("\n", " ") if doc.strip() else ""  # "<ERP> through <API>"
    return out


def open_source(config: SourceConfig) -> SqlSource | ApiSource:
    mapping = load_mapping(config.mapping_path)
    mapping_file = f"mappings/{config.mapping_path.name}"
    if mapping.connector == "sql":
        engine = SqlDatabaseHook(config.connection_id).get_engine()
        return SqlSource(config.name, mapping, engine, mapping_file=mapping_file)
    module = importlib.import_module(f"connectors.{mapping.connector}")
    name = class_name(mapping.connector)
    source_class, hook_class = getattr(module, name, None), getattr(module, f"{name}Hook", None)
    if source_class is None or hook_class is None:
        raise ConfigError(f"connectors/{mapping.connector}.py must define {name} (an ApiSource) and {name}Hook")
    return source_class(config.name, mapping, hook_class(config.connection_id).get_client(), mapping_file)


def open_sink(config: TargetConfig, sobject: str, external_id_field: str, bulk: bool = True):
    """The target's sink: `upsert(payloads, known_ids=None) -> [PushResult]` in payload order, and `check()`.
    Its client takes every request from the target's request budget, when it has one (connectors/budget.py).
    `bulk=False`: Salesforce never uses a Bulk API job (contacts name their account by a relationship, which this
    project writes through sObject Collections only)."""
    budget = request_budget(config)
    if config.kind == "salesforce":
        client, version = SalesforceHook(config.connection_id).get_client()
        client.budget = budget
        return SalesforceSink(client, version, sobject, external_id_field, config.batch_size,
                              config.bulk_threshold if bulk else None)
    if config.kind == "hubspot":  # sobject is the CRM v3 object type (companies, contacts)
        from connectors.hubspot import HubspotHook, HubspotSink

        client = HubspotHook(config.connection_id).get_client()
        client.budget = budget
        return HubspotSink(client, sobject, external_id_field, config.batch_size)
    if config.kind == "bottlecrm":
        from connectors.bottlecrm import BottlecrmHook, BottlecrmSink

        client = BottlecrmHook(config.connection_id).get_client()
        client.budget = budget
        return BottlecrmSink(client, sobject, external_id_field, config.batch_size)
    raise ConfigError(f"target {config.name!r}: kind {config.kind!r} is not registered")  # pragma: no cover
