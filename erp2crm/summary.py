"""The run summary: what was read, held back, unified, profiled and written, and how long each stage took."""
from __future__ import annotations

from erp2crm.canonical import ENTITIES
from hub import HubStore

REPLAY_DAG_ID = "erp2crm quarantine replay"  # the run history's name for `erp2crm quarantine replay` runs


def _contacts(pushes: dict) -> list[dict]:
    return [p["contacts"] for p in pushes.values() if isinstance(p.get("contacts"), dict)]


def build_summary(hub: HubStore, run_id: str) -> dict:
    run = hub.run(run_id) or {}
    stages = hub.stages(run_id)
    by_stage = dict(zip(stages["stage"], stages["counts"]))
    rows_in, rows_passed, rows_quarantined, rows_released, rows_read = {}, {}, {}, {}, {}
    rows_rechecked: dict[str, int] = {}
    for stage, counts in by_stage.items():
        if stage.startswith("extract:"):
            rows_read[stage.split(":", 1)[1]] = {e: counts.get(e, 0) for e in ENTITIES if e in counts}
            for entity, n in counts.get("rechecked", {}).items():
                rows_rechecked[entity] = rows_rechecked.get(entity, 0) + n
    staging = by_stage.get("validate:staging", {})
    for entity in ENTITIES:
        acc = staging.get(entity, {})
        rows_in[entity] = acc.get("rows_in", 0)
        rows_passed[entity] = acc.get("rows_passed", 0)
        rows_quarantined[entity] = acc.get("rows_quarantined", 0)
        rows_released[entity] = acc.get("released", 0)
    pushes = {s.split(":", 1)[1]: c for s, c in by_stage.items() if s.startswith("push:")}
    reconcile = by_stage.get("reconcile", {})
    enrich = by_stage.get("enrich", {})
    if run.get("dag_id") == REPLAY_DAG_ID:  # re-checks held rows only: the staging gate is all of it
        complete = "validate:staging" in by_stage
    else:
        expected = {"validate:staging", "reconcile", "validate:unified_customer", "enrich", "validate:profile"}
        complete = expected <= set(by_stage) and bool(pushes)
    accounted = all(rows_in[e] == rows_passed[e] + rows_quarantined[e] for e in ENTITIES)
    return {
        "run_id": run_id,
        "status": "success" if complete and accounted else "failed",
        "window_start": str(run.get("window_start")), "window_end": str(run.get("window_end")),
        "full_refresh": bool(run.get("full_refresh")),  # then every row was read, whatever the window
        "rows_read": rows_read,
        "rows_in": rows_in, "rows_passed": rows_passed, "rows_quarantined": rows_quarantined,
        "rows_accounted": accounted,
        # Held rows read again by key (included in rows_in), and held rows released because they now pass.
        "rows_rechecked": rows_rechecked, "rows_released": rows_released,
        "quarantine_held": len(hub.held_quarantine()),
        "unified_customers": reconcile.get("unified_customers", 0),
        "customers_held": by_stage.get("validate:unified_customer", {}).get("rows_quarantined", 0),
        "profiles": enrich.get("profiles", 0),
        "profiles_held": by_stage.get("validate:profile", {}).get(
            "held", by_stage.get("validate:profile", {}).get("rows_quarantined", 0)),  # every profile held now
        "segments": enrich.get("segments", {}),
        "reporting_currency": enrich.get("reporting_currency"),
        "total_net_value": enrich.get("total_net_value"),
        "profiles_pushed": sum(p.get("sent", 0) for p in pushes.values()),
        "crm_writes": sum(p.get("created", 0) + p.get("updated", 0) + p.get("retired", 0) for p in pushes.values()),
        "crm_rejected": sum(p.get("rejected", 0) for p in pushes.values()),
        "crm_unchanged": sum(p.get("unchanged", 0) for p in pushes.values()),
        # Contact persons written (created or updated) and held for a later run because their account is not there.
        "contact_writes": sum(c.get("created", 0) + c.get("updated", 0) for c in _contacts(pushes)),
        "contacts_deferred": sum(c.get("deferred", 0) for c in _contacts(pushes)),
        "targets": pushes,
        "stage_seconds": dict(zip(stages["stage"], stages["duration_s"].round(3))),
        "duration_s": round(float(stages["duration_s"].sum()), 3),
    }
