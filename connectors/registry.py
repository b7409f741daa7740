"""Which class serves a source or target, by the `connector` of its mapping file or the `kind` of its config."""
from __future__ import annotations

from connectors.api import ApiSource
from connectors.hooks import SqlDatabaseHook
from connectors.mapping import load_mapping
from connectors.odoo_rpc import OdooRpc, OdooRpcHook
from connectors.salesforce import SalesforceHook, SalesforceSink
from connectors.sql import SqlSource
from connectors.tryton_rpc import TrytonRpc, TrytonRpcHook
from erp2crm.config import SourceConfig, TargetConfig
from erp2crm.errors import ConfigError

SOURCE_CONNECTORS = {"sql": "generic SQL source: any SQLAlchemy database, read through a mapping file",
                     "tryton_rpc": "Tryton 8 JSON-RPC API (search_read), read through a mapping file",
                     "odoo_rpc": "Odoo 16/17 external JSON-RPC API (execute_kw search_read), read through a mapping file"}
TARGET_KINDS = {"salesforce": "Salesforce sObject Collections upsert by external id"}


def open_source(config: SourceConfig) -> SqlSource | ApiSource:
    mapping = load_mapping(config.mapping_path)
    mapping_file = f"mappings/{config.mapping_path.name}"
    if mapping.connector == "sql":
        engine = SqlDatabaseHook(config.connection_id).get_engine()
        return SqlSource(config.name, mapping, engine, mapping_file=mapping_file)
    if mapping.connector == "tryton_rpc":
        return TrytonRpc(config.name, mapping, TrytonRpcHook(config.connection_id).get_client(), mapping_file)
    if mapping.connector == "odoo_rpc":
        return OdooRpc(config.name, mapping, OdooRpcHook(config.connection_id).get_client(), mapping_file)
    raise ConfigError(f"{config.mapping_path}: connector {mapping.connector!r} is not registered")  # pragma: no cover


def open_sink(config: TargetConfig, sobject: str, external_id_field: str) -> SalesforceSink:
    if config.kind == "salesforce":
        client, version = SalesforceHook(config.connection_id).get_client()
        return SalesforceSink(client, version, sobject, external_id_field, config.batch_size)
    raise ConfigError(f"target {config.name!r}: kind {config.kind!r} is not registered")  # pragma: no cover
