"""OpenLineage for the sync: each stage reports what it read and wrote, and the Airflow OpenLineage provider
turns that into the inputs and outputs of its task's events (job = DAG.task, run = the task try).

Datasets are Airflow Assets with erp2crm:// URIs: `erp2crm://erp.<source>/<table>` (an ERP's canonical
stream), `erp2crm://hub/<table>` (the hub store) and `erp2crm://crm.<target>/<object>` (a CRM's records).
This package declares itself an Airflow provider (entry point `apache_airflow_provider`) whose converter
maps them to OpenLineage datasets: namespace `erp2crm://erp.odoo`, name `orders`. Names only, never hosts or
credentials. Without the provider, or outside a task, reporting does nothing.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
SCHEME = "erp2crm"

# What each fixed stage reads and writes in the hub store (extract and push are per source and per target).
_HUB_STAGES = {
    "validate:staging": (["staging"], ["customer_records", "contacts", "quarantine"]),
    "reconcile": (["customer_records"], ["unified_customers", "customer_events"]),
    "validate:unified_customer": (["unified_customers"], ["unified_customers", "quarantine"]),
    "enrich": (["unified_customers", "customer_records"], ["customer_profiles"]),
    "validate:profile": (["customer_profiles"], ["customer_profiles", "quarantine"]),
}


def get_provider_info() -> dict:
    """Airflow provider metadata: the erp2crm:// asset scheme and its OpenLineage converter."""
    return {"package-name": "erp2crm", "name": "erp2crm",
            "description": "ERP to CRM sync: erp2crm:// assets and their OpenLineage datasets",
            "asset-uris": [{"schemes": [SCHEME], "handler": None,
                            "to_openlineage_converter": "erp2crm.openlineage.to_openlineage"}]}


def to_openlineage(asset, lineage_context=None):
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    return Dataset(namespace=f"{SCHEME}://{parts.netloc}", name=parts.path.lstrip("/"))


def stage_datasets(stage: str, counts: dict) -> tuple[list[str], list[str]]:
    """(input URIs, output URIs) of one stage, from its name and counts."""
    from erp2crm.canonical import ENTITIES

    hub = lambda table: f"{SCHEME}://hub/{table}"  # noqa: E731
    kind, _, name = stage.partition(":")
    if kind == "extract":
        tables = [ENTITIES[e].table for e in counts if e in ENTITIES]
        return [f"{SCHEME}://erp.{name}/{t}" for t in tables], [hub("staging")]
    if kind == "push":
        inputs, outputs = [hub("customer_profiles")], [f"{SCHEME}://crm.{name}/{counts.get('crm_object', 'records')}"]
        if isinstance(counts.get("contacts"), dict):  # contact persons, after the accounts
            inputs.append(hub("contacts"))
            outputs.append(f"{SCHEME}://crm.{name}/{counts['contacts'].get('crm_object', 'contacts')}")
        return inputs, outputs
    inputs, outputs = _HUB_STAGES.get(stage, ([], []))
    return [hub(t) for t in inputs], [hub(t) for t in outputs]


def report_lineage(stage: str, counts: dict) -> None:
    """Hand a stage's datasets to Airflow's hook-lineage collector; lineage never fails a stage."""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        inputs, outputs = stage_datasets(stage, counts)
        # One collector per process: a task in its own process starts empty, but `dag.test()` runs every task
        # in one, so each stage starts a new one rather than inherit the previous task's datasets.
        get_hook_lineage_collector.cache_clear()
        collector = get_hook_lineage_collector()
        for uri in inputs:
            collector.add_input_asset(context=_CONTEXT, uri=uri)
        for uri in outputs:
            collector.add_output_asset(context=_CONTEXT, uri=uri)
    except Exception:  # noqa: BLE001 - lineage is an observer: log it, carry on
        log.debug("OpenLineage: could not report the datasets of stage %s", stage, exc_info=True)


class _Stage:
    """What the collector files these datasets under (it expects a hook-like context object)."""


_CONTEXT = _Stage()
