"""The sync's stages as plain functions: each is one DAG task's single library call.

Each takes the run id (and its own parameters), reads and writes the hub store, records its duration and
counts in the run history, and returns those counts (small, JSON-safe: what XCom carries).
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache

import pandas as pd
from sqlalchemy.engine import URL

from connectors.hooks import SqlDatabaseHook
from erp2crm.config import SyncConfig, load_config
from erp2crm.errors import DataError
from erp2crm.paths import CONFIG
from hub import HubStore
from hub.store import utcnow

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _hub_for(url: URL) -> HubStore:
    hub = HubStore(url)
    hub.migrate()
    return hub


def hub_store(config: SyncConfig | None = None) -> HubStore:
    """The hub store of the configured connection; one engine (and one migration check) per database."""
    return _hub_for(SqlDatabaseHook((config or load_config()).hub_conn_id, must_exist=False).get_url())


@contextmanager
def _stage(hub: HubStore, run_id: str, name: str):
    started = utcnow()
    counts: dict = {}
    yield counts
    hub.record_stage(run_id, name, started, counts)
    log.info("stage %s: %s", name, json.dumps(counts, default=str))


def _utc(moment) -> pd.Timestamp:
    """A date or timestamp as tz-aware UTC; a naive value is taken to be UTC already."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _naive(moment: datetime) -> datetime:
    return pd.Timestamp(moment).tz_convert("UTC").tz_localize(None).to_pydatetime()


# --- run bookkeeping ---------------------------------------------------------------------------------
def begin_run(run_id: str, dag_id: str, window_start: datetime, window_end: datetime, full_refresh: bool) -> dict:
    config = load_config()
    hub = hub_store(config)
    hub.start_run(run_id, dag_id, _naive(window_start), _naive(window_end), full_refresh)
    return {"run_id": run_id, "sources": [s.name for s in config.sources], "targets": [t.name for t in config.targets]}


# --- extract -------------------------------------------------------------------------------------------
def extract_source(run_id: str, source_name: str, window_start: datetime, window_end: datetime,
                   full_refresh: bool = False) -> dict:
    """Stage every stream of one source changed in [window_start − lookback, window_end) into the landing
    partition (run_id, source). The first extraction of a source, or full_refresh, reads everything."""
    from connectors.registry import open_source
    from connectors.sql import Window

    config = load_config()
    hub = hub_store(config)
    source_cfg = config.source(source_name)
    source = open_source(source_cfg)
    state = hub.read_table("source_state")
    first_time = source_name not in set(state["source_system"])
    start = None if (full_refresh or first_time) else pd.Timestamp(window_start) - pd.Timedelta(hours=source_cfg.lookback_hours)
    window = Window(start=start, end=pd.Timestamp(window_end))
    with _stage(hub, run_id, f"extract:{source_name}") as counts:
        counts["window_start"] = None if start is None else str(start)
        counts["window_end"] = str(window.end)
        for entity in source.mapping.streams:
            counts[entity] = hub.write_staged(entity, run_id, source_name,
                                              source.extract(entity, window, source_cfg.chunk_size))
        # Remembered so that the next run reads only its window (the first one reads everything).
        hub.upsert_rows("source_state", [{"source_system": source_name, "last_success_run_id": run_id,
                                          "last_window_end": _naive(window.end)}], ("source_system",))
    return counts


# --- quality gates -----------------------------------------------------------------------------------------
def validate_staged(run_id: str) -> dict:
    """Staging gate: per entity, passing rows become the current version, failing rows are quarantined with
    their reasons. Customers go first so that documents can be checked against known customers."""
    import quality
    from erp2crm.canonical import ENTITIES

    config = load_config()
    hub = hub_store(config)
    per_source: dict[str, dict] = {}
    with _stage(hub, run_id, "validate:staging") as counts:
        known = None  # current customer keys, read once after the customer records are through the gate
        for entity in ENTITIES:  # customer_record first
            staged = hub.read_staged(entity, run_id)
            if entity != "customer_record" and known is None:
                known = hub.read_entity("customer_record")[["source_system", "source_id"]]
            result = quality.validate(staged, entity, known_customers=known)
            hub.upsert_entity(entity, result.passed, run_id)
            hub.delete_entity_rows(entity, result.quarantined)  # a newer bad version must not leave a stale good one
            hub.add_quarantine(run_id, "staging", entity, result.quarantined, ("source_system", "source_id"))
            released = hub.release_quarantine(run_id, entity, result.passed)
            counts[entity] = {**_gate_counts(result), "released": released, "warnings": result.warnings}
            for system, frame in staged.groupby("source_system"):
                acc = per_source.setdefault(system, {"rows": 0, "held": 0, "reasons": {}})
                acc["rows"] += len(frame)
            for system, frame in result.quarantined.groupby("source_system", dropna=False):
                acc = per_source.setdefault(str(system), {"rows": 0, "held": 0, "reasons": {}})
                acc["held"] += len(frame)
                for code in frame["reason_code"].str.split(";").explode():
                    acc["reasons"][code] = acc["reasons"].get(code, 0) + 1
        counts["sources"] = per_source
    _check_quarantine_share(per_source, config.quality.max_quarantine_share)
    return counts


def _check_quarantine_share(per_source: dict, limit: float) -> None:
    for system, acc in sorted(per_source.items()):
        if acc["rows"] and acc["held"] / acc["rows"] > limit:
            top = sorted(acc["reasons"].items(), key=lambda kv: -kv[1])[:3]
            raise DataError(
                f"source {system!r}: {acc['held']} of {acc['rows']} rows ({acc['held'] / acc['rows']:.1%}) failed the "
                f"staging checks, above the {limit:.0%} limit; nothing was pushed. Main reasons: "
                + ", ".join(f"{code} ({n})" for code, n in top)
                + ". Fix the source or its mapping, then re-run; see `erp2crm quarantine list`.")


# --- reconcile -------------------------------------------------------------------------------------------
def reconcile_customers(run_id: str) -> dict:
    from reconcile import ReconcileSettings, resolve

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "reconcile") as counts:
        records = hub.read_entity("customer_record")
        previous = hub.read_table("crosswalk")
        existing = hub.read_table("customers")
        created_at = dict(zip(existing["customer_id"], existing["created_at"]))
        result = resolve(records, previous, created_at, ReconcileSettings(source_priority=config.source_priority))
        now = utcnow()
        crosswalk = result.crosswalk.assign(linked_at=now, run_id=run_id)
        customers = result.customers.assign(
            created_at=result.customers["customer_id"].map(created_at).where(
                result.customers["customer_id"].isin(created_at), now),
            updated_at=now, run_id=run_id, held=False)
        from hub.frames import for_sql
        from hub.schema import customers as customers_table

        customers = customers[[c.name for c in customers_table.columns]]
        hub.replace_rows("crosswalk", _records(crosswalk))
        hub.replace_rows("customers", _records(for_sql(customers, {"birth_date": "date"})))
        hub.insert_rows("customer_events", [
            {"run_id": run_id, "event": e["event"], "customer_id": e["customer_id"],
             "previous_ids": json.dumps(e["previous_ids"]), "occurred_at": now} for e in result.events])
        counts.update({"customer_records": len(records), "unified_customers": len(customers),
                       "refused_links": result.refused_links,
                       "events": {k: sum(1 for e in result.events if e["event"] == k) for k in ("created", "merged", "split")},
                       "rules": result.crosswalk["match_rule"].value_counts().to_dict()})
    return counts


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _gate_counts(result) -> dict:
    return {"rows_in": result.rows_in, "rows_passed": result.rows_passed, "rows_quarantined": result.rows_quarantined}


def _customer_gate(hub: HubStore, run_id: str, frame: pd.DataFrame, suite: str, table, flag: str, held_value: bool) -> dict:
    """Validate one row per customer; set `flag` to `held_value` on failing customers (the opposite on the
    others) and quarantine them."""
    import quality

    result = quality.validate(frame, suite)
    held = result.quarantined["customer_id"].tolist() if len(result.quarantined) else []
    with hub.engine.begin() as conn:
        conn.execute(table.update().values({flag: not held_value}))
        if held:
            conn.execute(table.update().where(table.c.customer_id.in_(held)).values({flag: held_value}))
    hub.add_quarantine(run_id, suite, suite, result.quarantined, ("customer_id",))
    return _gate_counts(result)


def validate_customers(run_id: str) -> dict:
    """Unified-customer gate: a failing golden record is held (not profiled, not pushed) and quarantined."""
    from hub.schema import customers

    hub = hub_store()
    with _stage(hub, run_id, "validate:unified_customer") as counts:
        counts.update(_customer_gate(hub, run_id, hub.read_table("customers"), "unified_customer",
                                     customers, "held", True))
    return counts


# --- enrich ------------------------------------------------------------------------------------------
def enrich_profiles(run_id: str, as_of: datetime) -> dict:
    from enrich import build_profiles, load_fx_rates, load_settings
    from hub.schema import profile_history

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "enrich") as counts:
        settings = load_settings(CONFIG / config.enrichment)
        customers = hub.read_table("customers")
        customers = customers[~customers["held"].fillna(False).astype(bool)]
        result = build_profiles(customers, hub.read_table("crosswalk"), hub.read_entity("order"),
                                hub.read_entity("invoice"), hub.read_entity("service_ticket"),
                                load_fx_rates(CONFIG / config.fx_rates), settings, _utc(as_of))
        profiles = result.profiles.merge(customers[["customer_id", "street", "postcode", "source_ids"]],
                                         on="customer_id", how="left")
        now = utcnow()
        rows = [{"customer_id": p["customer_id"], "profile": json.dumps(p, default=str, ensure_ascii=False),
                 "segment": p.get("segment"), "net_value": p.get("net_value"), "clv": p.get("clv"),
                 "churn_risk": p.get("churn_risk"), "push_ready": True, "computed_at": now, "run_id": run_id}
                for p in _records(profiles)]
        hub.replace_rows("profiles", rows)
        hub.replace_rows("profile_history", [{k: r[k] for k in ("customer_id", "segment", "net_value", "clv",
                                                                 "churn_risk", "computed_at", "run_id")} for r in rows],
                         where=lambda t: t.c.run_id == run_id)
        unconverted = result.unconverted.assign(reason_code="missing_fx_rate", expectation="fx_rate_available",
                                                reason="no exchange rate at or before the document date")
        for entity, frame in unconverted.groupby("entity"):
            hub.add_quarantine(run_id, "enrich", entity, frame, ("source_system", "source_id"))
        counts.update({"profiles": len(rows), "ledger_lines": len(result.ledger),
                       "unconverted_documents": len(unconverted),
                       "segments": profiles["segment"].value_counts().to_dict() if len(profiles) else {},
                       "reporting_currency": settings.reporting_currency,
                       "total_net_value": round(float(profiles["net_value"].sum()), 2) if len(profiles) else 0.0})
    return counts


def validate_profiles(run_id: str) -> dict:
    """Profile gate, before the push: a failing profile is quarantined and not pushed."""
    from hub.schema import profiles

    hub = hub_store()
    with _stage(hub, run_id, "validate:profile") as counts:
        stored = hub.read_table("profiles")
        frame = pd.DataFrame([json.loads(p) for p in stored["profile"]]) if len(stored) else pd.DataFrame(
            columns=["customer_id"])
        counts.update(_customer_gate(hub, run_id, frame, "profile", profiles, "push_ready", False))
    return counts


# --- push --------------------------------------------------------------------------------------------------
def push_target(run_id: str, target_name: str) -> dict:
    from erp2crm.push import push

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, f"push:{target_name}") as counts:
        counts.update(push(hub, run_id, config.target(target_name)))
    if counts["sent"] and counts["rejected"] / counts["sent"] > config.target(target_name).max_rejected_share:
        raise DataError(f"target {target_name!r}: {counts['rejected']} of {counts['sent']} records rejected, above "
                        f"the {config.target(target_name).max_rejected_share:.0%} limit; see the push receipts")
    return counts


def finish_run(run_id: str) -> dict:
    from erp2crm.summary import build_summary

    hub = hub_store()
    summary = build_summary(hub, run_id)
    hub.finish_run(run_id, summary["status"], summary)
    if summary["status"] != "success":
        # The summary is written either way; failing here keeps the DAG run red when an earlier stage failed.
        raise DataError(f"run {run_id} did not complete: stages run: {', '.join(summary['stage_seconds'])}")
    return {k: summary[k] for k in ("status", "unified_customers", "profiles_pushed", "crm_writes")}
