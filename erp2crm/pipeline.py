"""The sync's stages as plain functions: each is one DAG task's single library call.

Each takes the run id (and its own parameters), reads and writes the hub store, records its duration and
counts in the run history, and returns those counts (small, JSON-safe: what XCom carries).
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import URL

from connectors.hooks import SqlDatabaseHook
from erp2crm.config import SyncConfig, load_config
from erp2crm.errors import ConfigError, DataError
from erp2crm.openlineage import report_lineage
from erp2crm.paths import CONFIG
from erp2crm.profile_json import profile_from_text, profile_text
from hub import HubStore
from hub.store import utcnow

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _hub_for(url: URL, landing: Path | None) -> HubStore:
    hub = HubStore(url, landing)
    hub.migrate()
    return hub


def hub_store(config: SyncConfig | None = None) -> HubStore:
    """The hub store of the configured connection; one engine (and one migration check) per database."""
    config = config or load_config()
    return _hub_for(SqlDatabaseHook(config.hub_conn_id, must_exist=False).get_url(), config.landing_path)


@contextmanager
def _stage(hub: HubStore, run_id: str, name: str):
    started = utcnow()
    counts: dict = {}
    yield counts
    hub.record_stage(run_id, name, started, counts)
    log.info("stage %s: %s", name, json.dumps(counts, default=str))
    report_lineage(name, counts)  # OpenLineage inputs and outputs of the task, when the provider listens


def _utc(moment) -> pd.Timestamp:
    """A date or timestamp as tz-aware UTC; a naive value is taken to be UTC already."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _naive(moment: datetime) -> datetime:
    return pd.Timestamp(moment).tz_convert("UTC").tz_localize(None).to_pydatetime()


# --- run bookkeeping ---------------------------------------------------------------------------------
def begin_run(run_id: str, dag_id: str, window_start: datetime, window_end: datetime, full_refresh: bool,
              only_sources: list[str] | None = None, dag_fingerprint: str | None = None) -> dict:
    """Record the run; its sources are the configured ones, or `only_sources` (a backfill), each checked.
    `dag_fingerprint` is the generated DAG settings' (erp2crm.dagconfig): a stale generation is logged."""
    from erp2crm.dagconfig import check_generated

    config = load_config()
    if dag_fingerprint is not None:
        check_generated(config, dag_fingerprint)
    names = [s.name for s in config.sources]
    for name in only_sources or []:
        config.source(name)  # a ConfigError naming the configured sources
    hub = hub_store(config)
    hub.start_run(run_id, dag_id, _naive(window_start), _naive(window_end), full_refresh)
    report_lineage("begin", {})  # reads and writes no dataset
    return {"run_id": run_id, "sources": only_sources or names, "targets": [t.name for t in config.targets]}


# --- extract -------------------------------------------------------------------------------------------
def extract_source(run_id: str, source_name: str, window_start: datetime, window_end: datetime,
                   full_refresh: bool = False, backfill: bool = False) -> dict:
    """Stage every stream of one source changed in [window_start − lookback, window_end) into the landing
    partition (run_id, source), plus this source's rows still held in quarantine, re-read by key so that a fix
    in the source or its mapping releases them. The first extraction of a source, or full_refresh, reads
    every row. A backfill reads exactly [window_start, window_end), with no look-back, and leaves the source's
    watermark alone."""
    from connectors.window import Window

    config = load_config()
    hub = hub_store(config)
    source_cfg = config.source(source_name)
    state = hub.read_table("source_state")
    everything = full_refresh or (not backfill and source_name not in set(state["source_system"]))
    lookback = pd.Timedelta(0 if backfill else source_cfg.lookback_hours * 3600, unit="s")
    start = None if everything else _utc(window_start)
    if not everything and not backfill:
        # Read on from where the last successful run of this source stopped: runs skipped while the DAG was
        # paused or failing, and schedules whose data interval is empty (cron triggers), lose nothing.
        watermark = state.loc[state["source_system"] == source_name, "last_window_end"].dropna()
        if len(watermark):
            start = min(start, _utc(watermark.iloc[0]))
    start = None if start is None else start - lookback
    window = None if everything else Window(start=start, end=pd.Timestamp(window_end))
    with _stage(hub, run_id, f"extract:{source_name}") as counts:
        counts["window_start"] = None if start is None else str(start)
        counts["window_end"] = None if window is None else str(window.end)
        counts.update(stage_source(hub, run_id, config, source_name, window, recheck_held=not everything))
        if backfill:  # a past period: the scheduled sync's watermark stays where it is
            return counts
        # Remembered so that the next run reads only its window (the first one reads everything).
        hub.upsert_rows("source_state", [{"source_system": source_name, "last_success_run_id": run_id,
                                          "last_window_end": _naive(window_end)}], ("source_system",))
    return counts


def stage_source(hub: HubStore, run_id: str, config: SyncConfig, source_name: str, window, *,
                 recheck_held: bool = True, held_only: bool = False) -> dict:
    """Write each stream's landing partition: the rows in `window` (all rows when None; none when `held_only`)
    and, with `recheck_held`, the held rows not among them. Returns rows per entity and, under "rechecked", how
    many of them were held rows read again by key."""
    from connectors.registry import open_source

    source_cfg = config.source(source_name)
    source = open_source(source_cfg)
    held = hub.held_quarantine(stage="staging")
    held = held[held["source_system"] == source_name]
    streams = [(entity, sorted(set(held.loc[held["entity"] == entity, "record_id"].dropna())))
               for entity in source.mapping.streams]
    job = (hub, run_id, source, source_cfg.chunk_size, window, recheck_held, held_only)
    sizes = _parallel_stream_sizes(hub, source, window, held_only)
    if sizes:
        global _PENDING_EXTRACT
        _PENDING_EXTRACT = job
        try:  # the largest streams first, so that the two processes finish close together
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
                ordered = sorted(streams, key=lambda stream: -sizes[stream[0]])
                staged = dict(zip([entity for entity, _ in ordered], pool.map(_stage_stream_forked, ordered)))
        finally:
            _PENDING_EXTRACT = None
    else:
        staged = {entity: _stage_stream(*job, entity, held_ids) for entity, held_ids in streams}
    counts: dict = {"rechecked": {}}
    for entity, _ in streams:
        counts[entity], counts["rechecked"][entity] = staged[entity]
    return counts


PARALLEL_EXTRACT_FROM = 200_000  # rows in a source's tables; below this, forking costs more than it saves
_PENDING_EXTRACT: tuple | None = None  # what forked extract workers read, instead of pickling it to them


def _parallel_stream_sizes(hub: HubStore, source, window, held_only: bool) -> dict[str, int] | None:
    """The rows of each stream's table when the source's streams are to be extracted two at a time, in forked
    processes: a full read of a large database source into landing files. Otherwise None: an API source is paced
    by its server and its client must not be shared across a fork; landing tables in the hub would have two
    writers; a daemonic process (a Celery prefork child, say) may not start children."""
    from connectors.sql import SqlSource

    full_read = window is None or window.start is None
    if not (isinstance(source, SqlSource) and full_read and not held_only and hub.landing is not None
            and (os.cpu_count() or 1) >= 2 and not multiprocessing.current_process().daemon):
        return None
    sizes = source.table_rows()
    return sizes if sum(sizes.values()) >= PARALLEL_EXTRACT_FROM else None


def _stage_stream_forked(stream: tuple[str, list[str]]) -> tuple[int, int]:
    hub, run_id, source, chunk_size, window, recheck_held, held_only = _PENDING_EXTRACT
    source.after_fork()
    return _stage_stream(hub, run_id, source, chunk_size, window, recheck_held, held_only, *stream)


def _stage_stream(hub: HubStore, run_id: str, source, chunk_size: int, window, recheck_held: bool, held_only: bool,
                  entity: str, held_ids: list[str]) -> tuple[int, int]:
    """One stream's landing partition; returns its rows and how many of them were held rows read again by key."""
    seen: set[str] = set()
    rechecked = 0

    def chunks():
        nonlocal rechecked
        if not held_only:
            for chunk in source.extract(entity, window, chunk_size):
                seen.update(chunk["source_id"].dropna())
                yield chunk
        if recheck_held or held_only:
            wanted = [k for k in held_ids if k not in seen]
            for chunk in source.extract_keys(entity, wanted, chunk_size):
                rechecked += len(chunk)
                yield chunk

    return hub.write_staged(entity, run_id, source.name, chunks()), rechecked


# --- quality gates -----------------------------------------------------------------------------------------
def validate_staged(run_id: str, enforce_threshold: bool = True) -> dict:
    """Staging gate: per entity, passing rows become the current version, failing rows are quarantined with
    their reasons. Customers go first so that documents can be checked against known customers.

    The stop threshold counts rows that were not already held before this run: a held row re-checked without
    a fix counted once, when it first failed."""
    import quality
    from erp2crm.canonical import ENTITIES

    config = load_config()
    hub = hub_store(config)
    held_before = hub.held_quarantine(stage="staging")
    per_source: dict[str, dict] = {}
    _check_landing_reachable(hub, config, run_id)
    # Which customers this run's document changes reach, for enrich (erp2crm.refresh): not on a full refresh,
    # which recomputes every profile anyway, nor past a size where recomputing every profile is as quick.
    track = not (hub.run(run_id) or {}).get("full_refresh", False)
    with _stage(hub, run_id, "validate:staging") as counts, ThreadPoolExecutor(1) as writer:
        known = None  # current customer keys, read once after the customer records are through the gate
        results, landings = [], {}

        def land(entity: str, result, staged: pd.DataFrame, track_owners: bool) -> dict:
            if track_owners:  # before the upsert: an owner replaced or removed counts too
                _record_changed_owners(hub, run_id, entity, staged)
            hub.upsert_entity(entity, result.passed, run_id)
            hub.delete_entity_rows(entity, result.quarantined)  # a newer bad version must not leave a stale good one
            settled = hub.settle_quarantine(run_id, "staging", entity, result.quarantined,
                                            ("source_system", "source_id"), checked=staged)
            return {**_gate_counts(result), "released": settled["released"], "warnings": result.warnings}

        # One entity's rows are written (SQLite's inserts run outside the GIL) while the next one is validated.
        for entity in ENTITIES:  # customer_record first
            staged = hub.read_staged(entity, run_id)
            if entity != "customer_record" and known is None:
                landings["customer_record"].result()  # documents are checked against the customers just written
                known = hub.read_entity("customer_record", ["source_system", "source_id"])
            result = quality.validate(staged, entity, known_customers=known)
            results.append(replace(result, passed=result.passed.iloc[:0]))  # for Data Docs: not the rows
            track = track and len(staged) <= MAX_TRACKED_ROWS
            for earlier in landings.values():
                earlier.result()  # one entity waits to be written at most; a failed write stops the gate here
            landings[entity] = writer.submit(land, entity, result, staged, track and entity in OWNER_COLUMNS)
            was_held = held_before.loc[held_before["entity"] == entity]
            _count_new_failures(per_source, staged, result.quarantined,
                                set(zip(was_held["source_system"], was_held["record_id"])))
            del staged, result  # the writer holds them until they are written
        for entity, landed in landings.items():
            counts[entity] = landed.result()
        counts["sources"] = per_source
        counts["owners_tracked"] = track
        if not track:  # the next enrich recomputes every profile (erp2crm.refresh)
            hub.record_changed_owners(run_id, "*", pd.DataFrame({"source_system": ["*"], "owner_id": ["*"]}))
        counts["data_docs"] = _data_docs(config, run_id, "staging", results)
    if enforce_threshold:
        _check_quarantine_share(per_source, config.quality.max_quarantine_share)
    return counts


# The column naming each document's owner, as erp2crm.refresh reads it: a customer record (an order, for a line).
OWNER_COLUMNS = {"order": "customer_source_id", "order_line": "order_source_id", "invoice": "customer_source_id",
                 "service_ticket": "customer_source_id", "payment": "customer_source_id"}
MAX_TRACKED_ROWS = 500_000  # rows of one entity in one run


def _record_changed_owners(hub: HubStore, run_id: str, entity: str, staged: pd.DataFrame) -> None:
    """The owners of the staged rows, as they arrive and as the hub holds them now."""
    column = OWNER_COLUMNS[entity]
    current = hub.read_entity(entity, ["source_system", column], where=("source_id", staged))
    hub.record_changed_owners(run_id, entity, pd.concat([staged[["source_system", column]], current])
                              .rename(columns={column: "owner_id"}))


def _check_landing_reachable(hub: HubStore, config: SyncConfig, run_id: str) -> None:
    """Stop when the run's extracts landed rows that this worker cannot find: an empty landing must not pass as a
    run without changes."""
    from erp2crm.canonical import ENTITIES

    if hub.landing is None or hub.landing.has_run(run_id):
        return
    stages = hub.stages(run_id)
    written = sum(n for stage, counts in zip(stages["stage"], stages["counts"]) if stage.startswith("extract:")
                  for entity, n in counts.items() if entity in ENTITIES and isinstance(n, int))
    if written:
        raise ConfigError(
            f"run {run_id}: its extract tasks landed {written} rows, but {config.landing_path} holds none of them. "
            "Either this worker does not see the folder they wrote to (with workers on several machines, set "
            "landing_dir to a shared volume, an absolute path, or to null to land in the hub database), or the run "
            f"is older than the last {config.landing_keep_runs} runs, whose landing is kept: re-run its extracts.")


def _count_new_failures(per_source: dict, staged: pd.DataFrame, quarantined: pd.DataFrame, was_held: set) -> None:
    """Per source: rows checked and rows newly held (with their reasons), leaving out rows already held."""
    def fresh(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty or not was_held:
            return frame
        keys = pd.Series(list(zip(frame["source_system"], frame["source_id"])), index=frame.index, dtype=object)
        return frame[~keys.isin(was_held)]

    for system, frame in fresh(staged).groupby("source_system"):
        per_source.setdefault(system, {"rows": 0, "held": 0, "reasons": {}})["rows"] += len(frame)
    for system, frame in fresh(quarantined).groupby("source_system", dropna=False):
        acc = per_source.setdefault(str(system), {"rows": 0, "held": 0, "reasons": {}})
        acc["held"] += len(frame)
        for code in frame["reason_code"].str.split(";").explode():
            acc["reasons"][code] = acc["reasons"].get(code, 0) + 1


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
    from reconcile import Previous, resolve
    from reconcile.normalize import normaliser_version

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "reconcile") as counts:
        records = hub.read_entity("customer_record")
        existing = hub.read_table("customers")
        pairs, model = hub.match_pairs()
        normal_forms = hub.normal_forms(normaliser_version())
        previous = Previous(crosswalk=hub.read_table("crosswalk"), pairs=pairs, model_fingerprint=model,
                            created_at=dict(zip(existing["customer_id"], existing["created_at"])),
                            decisions=hub.reviews(("accepted", "rejected")), customers=_golden(existing),
                            normalised=normal_forms)
        result = resolve(records, previous, reconcile_settings(config))
        now = utcnow()
        crosswalk = result.crosswalk.assign(linked_at=now, run_id=run_id)
        customers = result.customers.assign(
            created_at=result.customers["customer_id"].map(previous.created_at).where(
                result.customers["customer_id"].isin(previous.created_at), now),
            updated_at=now, run_id=run_id, held=False)
        from hub.frames import for_sql
        from hub.schema import customers as customers_table

        customers = customers[[c.name for c in customers_table.columns]]
        # Only links and golden records that changed are written: a link's linked_at and a customer's updated_at
        # say when it last changed. The customer gate sets `held` on every customer after this.
        links = hub.merge_frame("crosswalk", crosswalk, previous.crosswalk, ("source_system", "source_id"),
                                ignore=("linked_at", "run_id"))
        golden = hub.merge_frame("customers", for_sql(customers, {"birth_date": "date"}), existing, ("customer_id",),
                                 ignore=("created_at", "updated_at", "run_id", "held"))
        hub.save_matching_state(result.pairs, result.model_fingerprint, result.reviews, run_id, now)
        hub.insert_rows("customer_events", [
            {"run_id": run_id, "event": e["event"], "customer_id": e["customer_id"],
             "previous_ids": json.dumps(e["previous_ids"]), "occurred_at": now} for e in result.events])
        gone = [] if normal_forms is None else list(normal_forms["unique_id"][
            ~normal_forms["unique_id"].isin(pd.Index(result.normalised["unique_id"].to_numpy(dtype=object)))])
        hub.save_normal_forms(result.normalised[result.renormalised], gone, normaliser_version())
        counts.update({"customer_records": len(records), "unified_customers": len(customers),
                       "links_written": links["written"], "customers_written": golden["written"],
                       "refused_links": result.refused_links, "records_scored": result.scored_records,
                       "records_rebuilt": result.rebuilt_records,
                       "records_normalised": int(result.renormalised.sum()),
                       "reviews_pending": len(result.reviews) if result.reviews is not None else 0,
                       "events": {k: sum(1 for e in result.events if e["event"] == k) for k in ("created", "merged", "split")},
                       "rules": result.crosswalk["match_rule"].value_counts().to_dict(),
                       "bands": result.crosswalk["match_band"].value_counts().to_dict()})
    return counts


def _golden(customers: pd.DataFrame) -> pd.DataFrame | None:
    """The hub's customers as the golden records reconcile builds (same columns and types), so that a run
    rebuilds only the customers its changes reach. None when there are none yet."""
    from erp2crm.canonical import ENTITIES
    from hub.frames import coerce
    from reconcile.settings import GOLDEN_FIELDS

    if customers.empty:
        return None
    fields = {f: ENTITIES["customer_record"].fields[f] for f in GOLDEN_FIELDS}
    golden = coerce(customers, fields)
    golden.insert(0, "customer_id", customers["customer_id"].astype(object))
    return golden.assign(source_ids=customers["source_ids"], source_count=customers["source_count"])


def reconcile_settings(config: SyncConfig):
    from reconcile import load_settings

    return load_settings(config.matching, config.survivorship)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _gate_counts(result) -> dict:
    return {"rows_in": result.rows_in, "rows_passed": result.rows_passed, "rows_quarantined": result.rows_quarantined}


def _data_docs(config: SyncConfig, run_id: str, gate: str, results: list) -> str | None:
    """Build this gate's Data Docs for the run report; a failure to render is logged, never fails the sync."""
    import quality
    from erp2crm.report import data_docs_folder

    try:
        return str(quality.build_data_docs(results, data_docs_folder(config.reports_path, run_id, gate), run_name=run_id))
    except Exception:  # noqa: BLE001 - documentation output must not decide whether customers are synced
        log.warning("Data Docs for the %s gate of run %s could not be built", gate, run_id, exc_info=True)
        return None


def _customer_gate(config: SyncConfig, hub: HubStore, run_id: str, frame: pd.DataFrame, suite: str, table, flag: str,
                   held_value: bool, present: set | None = None) -> dict:
    """Validate one row per customer; set `flag` to `held_value` on failing customers (the opposite on the
    others) and quarantine them. `frame` holds every customer, or with `present` (the ids of every one) only
    those to check again: the others keep their flag."""
    import quality

    result = quality.validate(frame, suite)
    held = result.quarantined["customer_id"].tolist() if len(result.quarantined) else []
    checked = frame["customer_id"].tolist() if present is not None else []
    with hub.engine.begin() as conn:
        if present is None:
            conn.execute(table.update().values({flag: not held_value}))
        for ids, value in ((checked, not held_value), (held, held_value)):
            for start in range(0, len(ids), 500):
                conn.execute(table.update().where(table.c.customer_id.in_(ids[start:start + 500])).values({flag: value}))
    settled = hub.settle_quarantine(run_id, suite, suite, result.quarantined, ("customer_id",), checked=frame,
                                    whole=present is None, present=present)
    reasons = (result.quarantined["reason_code"].str.split(";").explode().value_counts().to_dict()
               if len(result.quarantined) else {})
    return {**_gate_counts(result), "released": settled["released"], "reasons": reasons,
            "data_docs": _data_docs(config, run_id, suite, [result])}


def _check_held_share(what: str, counts: dict, limit: float) -> None:
    """Stop the run before the push when too many customers fail a customer-level gate."""
    if counts["rows_in"] and counts["rows_quarantined"] / counts["rows_in"] > limit:
        top = sorted(counts["reasons"].items(), key=lambda kv: -kv[1])[:3]
        raise DataError(
            f"{counts['rows_quarantined']} of {counts['rows_in']} {what} "
            f"({counts['rows_quarantined'] / counts['rows_in']:.1%}) failed their checks, above the {limit:.0%} limit; "
            "nothing was pushed. Main reasons: " + ", ".join(f"{code} ({n})" for code, n in top)
            + ". See `erp2crm quarantine list` and the run report.")


def validate_customers(run_id: str) -> dict:
    """Unified-customer gate: a failing golden record is held (not profiled, not pushed) and quarantined."""
    from hub.schema import customers

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "validate:unified_customer") as counts:
        counts.update(_customer_gate(config, hub, run_id, hub.read_table("customers"), "unified_customer",
                                     customers, "held", True))
    _check_held_share("unified customers", counts, config.quality.max_held_customer_share)
    return counts


# --- enrich ------------------------------------------------------------------------------------------
def enrich_profiles(run_id: str, as_of: datetime) -> dict:
    """Build the profiles of every customer not held, or of those this run's changes reach (erp2crm.refresh)."""
    from enrich import INPUT_COLUMNS, build_profiles, load_fx_rates, load_settings
    from erp2crm import refresh

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "enrich") as counts:
        settings = load_settings(CONFIG / config.enrichment)
        if config.reporting_currency:  # the sync configuration's, when it names one
            settings = settings.model_copy(update={"reporting_currency": config.reporting_currency})
        fx_rates = load_fx_rates(CONFIG / config.fx_rates)
        basis = refresh.basis(settings, fx_rates, _utc(as_of))
        customers = hub.read_table("customers")
        customers = customers[~customers["held"].fillna(False).astype(bool)].reset_index(drop=True)
        hashes = refresh.customer_hashes(customers)
        crosswalk = hub.read_table("crosswalk", ["source_system", "source_id", "customer_id"])
        scope = refresh.scope(hub, run_id, customers, hashes, basis, crosswalk)
        customer_hash = dict(zip(customers["customer_id"], hashes))
        where = None
        if scope.customer_ids is not None:
            chosen = customers["customer_id"].isin(scope.customer_ids)
            customers = customers[chosen].reset_index(drop=True)
            crosswalk = crosswalk[crosswalk["customer_id"].isin(scope.customer_ids)]
            where = ("customer_source_id", crosswalk.rename(columns={"source_id": "customer_source_id"}))
        orders, invoices, payments, tickets, lines = _read_documents(hub, INPUT_COLUMNS, where)
        result = build_profiles(customers, crosswalk, orders, invoices, tickets, fx_rates, settings, _utc(as_of),
                                payments=payments, order_lines=lines)
        profiles = result.profiles.merge(customers[["customer_id", "street", "postcode", "source_ids"]],
                                         on="customer_id", how="left")
        reranked = [] if where is None else refresh.rerank(hub, profiles, settings, scope)
        now = utcnow()
        rows = [_profile_row(p, now, run_id, basis, customer_hash[p["customer_id"]])
                for p in _records(profiles) + reranked]
        if where is None:
            hub.replace_rows("profiles", rows)
        else:
            hub.upsert_rows("profiles", rows, ("customer_id",), remove=[(c,) for c in scope.stale])
        hub.clear_changed_owners(scope.runs)  # their changes are in the profiles now
        hub.replace_rows("profile_history", [{k: r[k] for k in ("customer_id", "segment", "net_value", "clv",
                                                                 "churn_risk", "computed_at", "run_id")} for r in rows],
                         where=lambda t: t.c.run_id == run_id)
        unconverted = result.unconverted.assign(reason_code="missing_fx_rate", expectation="fx_rate_available",
                                                reason="no exchange rate at or before the document date")
        for entity, checked in (("order", orders), ("invoice", invoices), ("payment", payments)):
            hub.settle_quarantine(run_id, "enrich", entity, unconverted[unconverted["entity"] == entity],
                                  ("source_system", "source_id"), checked=checked, whole=where is None)
        stored = hub.read_table("profiles", ["segment", "net_value"])
        counts.update({"profiles": len(stored), "recomputed": len(rows), "recomputed_because": scope.why,
                       "removed": len(scope.stale), "ledger_lines": len(result.ledger),
                       "unconverted_documents": len(unconverted),
                       "segments": stored["segment"].value_counts().to_dict() if len(stored) else {},
                       "reporting_currency": settings.reporting_currency,
                       "total_net_value": round(float(stored["net_value"].sum()), 2) if len(stored) else 0.0})
    return counts


def _read_documents(hub: HubStore, columns: dict[str, list[str]], where) -> tuple[pd.DataFrame, ...]:
    """Orders, invoices, payments, tickets and order lines: every row, or with `where` those of some customers'
    records (and the lines of their orders). In threads: a SQLite hub is read through ADBC, outside the GIL
    (the medium hub's documents in 8.3 s instead of 13.8 s)."""
    def read(entity: str, condition=where) -> pd.DataFrame:
        return hub.read_entity(entity, columns[entity], condition)

    with ThreadPoolExecutor(3) as pool:
        lines = pool.submit(read, "order_line", None) if where is None else None
        docs = {e: pool.submit(read, e) for e in ("order", "invoice", "payment", "service_ticket")}
        if lines is None:  # the lines of the orders read
            orders = docs["order"].result().rename(columns={"source_id": "order_source_id"})
            lines = pool.submit(read, "order_line", ("order_source_id", orders))
        return (*(docs[e].result() for e in ("order", "invoice", "payment", "service_ticket")), lines.result())


def _profile_row(profile: dict, now: datetime, run_id: str, basis: str, customer_hash: str) -> dict:
    """A recomputed profile's row: not push-ready (null) until the profile gate has checked it."""
    text = profile_text(profile)
    return {"customer_id": profile["customer_id"], "profile": text, "segment": profile.get("segment"),
            "net_value": profile.get("net_value"), "clv": profile.get("clv"), "churn_risk": profile.get("churn_risk"),
            "push_ready": None, "computed_at": now, "run_id": run_id, "basis": basis, "customer_hash": customer_hash,
            "profile_hash": hashlib.sha256(text.encode()).hexdigest()}


def validate_profiles(run_id: str) -> dict:
    """Profile gate, before the push: a failing profile is quarantined and not pushed."""
    from hub.schema import profiles

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, "validate:profile") as counts:
        every = hub.read_table("profiles", ["customer_id", "run_id", "push_ready"])
        # Those enrich recomputed this run, and any an earlier run recomputed but did not get to check.
        fresh = every.loc[every["run_id"].eq(run_id) | every["push_ready"].isna(), "customer_id"].tolist()
        stored = hub.read_keyed("profiles", ["profile"], "customer_id", fresh)
        frame = pd.DataFrame([profile_from_text(p) for p in stored["profile"]]) if len(stored) else pd.DataFrame(
            columns=["customer_id"])
        counts.update(_customer_gate(config, hub, run_id, frame, "profile", profiles, "push_ready", False,
                                     present=None if len(fresh) == len(every) else set(every["customer_id"])))
        counts["held"] = int((~hub.read_table("profiles", ["push_ready"])["push_ready"].fillna(False).astype(bool)).sum())
    _check_held_share("profiles", counts, config.quality.max_held_customer_share)
    return counts


# --- push --------------------------------------------------------------------------------------------------
def push_target(run_id: str, target_name: str) -> dict:
    from erp2crm.push import push

    config = load_config()
    hub = hub_store(config)
    with _stage(hub, run_id, f"push:{target_name}") as counts:
        counts.update(push(hub, run_id, config.target(target_name)))
    limit = config.target(target_name).max_rejected_share
    attempted = counts["sent"] + counts["to_retire"]
    if attempted and counts["rejected"] / attempted > limit:
        raise DataError(f"target {target_name!r}: {counts['rejected']} of {attempted} records rejected, above "
                        f"the {limit:.0%} limit; see the push receipts")
    contacts = counts.get("contacts") or {}
    tried = contacts.get("sent", 0) + contacts.get("to_retire", 0)
    if tried and contacts["rejected"] / tried > limit:
        raise DataError(f"target {target_name!r}: {contacts['rejected']} of {tried} contacts rejected, "
                        f"above the {limit:.0%} limit; see the contact receipts")
    return counts


def finish_run(run_id: str) -> dict:
    from erp2crm.report import write_report
    from erp2crm.summary import build_summary

    config = load_config()
    hub = hub_store(config)
    summary = build_summary(hub, run_id)
    summary["report"] = str(write_report(hub, summary, config.reports_path))
    hub.finish_run(run_id, summary["status"], summary)
    hub.prune_landing(config.landing_keep_runs)
    report_lineage("finish", {})
    if summary["status"] != "success":
        # The summary is written either way; failing here keeps the DAG run red when an earlier stage failed.
        raise DataError(f"run {run_id} did not complete: stages run: {', '.join(summary['stage_seconds'])}")
    return {k: summary[k] for k in ("status", "unified_customers", "profiles_pushed", "crm_writes")}


# --- replay ------------------------------------------------------------------------------------------------
def replay_quarantine(sources: list[str] | None = None) -> dict:
    """Re-check the held staging rows now, outside the schedule: re-read each from its source by key with the
    current mapping and run the staging gate on them. Fixed rows are released and become current; the next sync
    unifies, profiles and pushes them. Returns the run's summary."""
    from datetime import timezone

    from erp2crm.report import write_report
    from erp2crm.summary import REPLAY_DAG_ID, build_summary

    config = load_config()
    hub = hub_store(config)
    now = datetime.now(timezone.utc)
    run_id = f"replay__{now:%Y%m%dT%H%M%S%fZ}"
    held = hub.held_quarantine(stage="staging")
    configured = [s.name for s in config.sources]
    unknown = sorted(set(sources or ()) - set(configured))
    if unknown:
        raise DataError(f"unknown source(s) {', '.join(unknown)}; configured: {', '.join(configured)}")
    names = [n for n in configured if n in set(held["source_system"]) and (not sources or n in sources)]
    hub.start_run(run_id, REPLAY_DAG_ID, _naive(now), _naive(now), False)
    for name in names:
        with _stage(hub, run_id, f"extract:{name}") as counts:
            counts.update(stage_source(hub, run_id, config, name, None, held_only=True))
    validate_staged(run_id, enforce_threshold=False)
    summary = build_summary(hub, run_id)
    summary["report"] = str(write_report(hub, summary, config.reports_path))
    hub.finish_run(run_id, summary["status"], summary)
    hub.prune_landing(config.landing_keep_runs)
    return summary


# --- connection check ---------------------------------------------------------------------------------------
def list_endpoints() -> dict:
    config = load_config()
    return {"sources": [s.name for s in config.sources], "targets": [t.name for t in config.targets]}


def check_hub() -> dict:
    """The hub store is reachable and at the latest schema (migrating it if needed)."""
    hub = hub_store()
    return {"database": hub.engine.url.get_backend_name(), "runs": hub.count("runs")}


def check_source(source_name: str) -> dict:
    """Connect with the source's connection, check every table and column its mapping names, count rows."""
    from connectors.registry import open_source

    return {"source": source_name, "rows": open_source(load_config().source(source_name)).check()}


def check_target(target_name: str) -> dict:
    """One authenticated call to the CRM that writes nothing."""
    from connectors.outbound import load_outbound
    from connectors.registry import open_sink

    target = load_config().target(target_name)
    mapping = load_outbound(target.mapping_path)
    out = {"target": target_name, **open_sink(target, mapping.sobject, mapping.external_id_field).check()}
    if mapping.contacts is not None:  # the contact object too: its scopes, and (BottleCRM) its custom field
        section = mapping.contacts
        out["contacts"] = open_sink(target, section.sobject, section.external_id_field, bulk=False).check()
    return out
