"""`erp2crm demo`: a full sync through real Airflow on the embedded default, then a readable summary.

Demo ERP databases (SQLite, generated once, deterministic), the hub store in SQLite, and a local
Salesforce emulator keeping its records in a file, so that a second run can be compared with the first.
"""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from erp2crm.paths import VAR

DEMO_SOURCES = ("odoo", "erpnext", "tryton")
DEMO_AS_OF = "2026-07-01T00:00:00+00:00"  # the demo data ends on 2026-06-30: profiles are computed as of then


def connections(var_dir: Path, erp_dir: Path, crm_url: str | None = None, crm_token: str | None = None) -> dict[str, dict]:
    """The demo's Airflow connections: its ERP databases and hub store, and the CRM emulator when given."""
    conns = {f"{s}_default": {"conn_type": "sqlite", "host": str(erp_dir / f"{s}.db")} for s in DEMO_SOURCES}
    conns["erp2crm_hub"] = {"conn_type": "sqlite", "host": str(var_dir / "hub.db")}
    if crm_url:
        conns["salesforce_default"] = {"conn_type": "http", "host": crm_url, "password": crm_token,
                                       "extra": {"api_version": "v60.0"}}
    return conns


def run_demo(var_dir: Path | None = None, customers: int = 300, seed: int = 7) -> dict:
    from demodata import generate
    from emulators.salesforce import SalesforceEmulator
    from erp2crm import local

    var_dir = Path(var_dir or VAR / "demo").resolve()
    erp_dir = var_dir / "erp"
    if not (erp_dir / "ground_truth.csv").exists():
        generate(erp_dir, n_customers=customers, seed=seed)
    started = time.monotonic()
    token = secrets.token_urlsafe(24)  # a fresh secret per run: it lives only in this process's environment
    with SalesforceEmulator(state_file=var_dir / "crm_state.json", token=token) as crm:
        local.configure(var_dir, connections(var_dir, erp_dir, crm.url, token), log_level="WARNING")
        local.init_airflow_db()
        from erp2crm.pipeline import hub_store  # after configure: it imports Airflow
        from erp2crm.progress import StageProgress, expected_stages

        with StageProgress(hub_store().engine.url, expected_stages(list(DEMO_SOURCES), ["salesforce"])):
            dag_run = local.run_dag("erp_crm_customer_sync", {"full_refresh": True, "as_of": DEMO_AS_OF})
        crm_records, crm_contacts = len(crm.records("Account")), len(crm.records("Contact"))
    summary = run_summary(dag_run.run_id)
    summary.update({"airflow_state": str(dag_run.state), "crm_records": crm_records, "crm_contacts": crm_contacts,
                    "wall_time_s": round(time.monotonic() - started, 1)})
    if summary.get("status") is None:
        summary["status"] = "failed"
    (var_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return summary


def run_summary(run_id: str) -> dict:
    from erp2crm.pipeline import hub_store

    run = hub_store().run(run_id)
    return dict(run["summary"]) if run and run["summary"] else {"run_id": run_id, "status": None}


def render(summary: dict) -> str:
    """The summary as a person reads it."""
    lines = [f"erp2crm demo: {summary.get('status', 'unknown').upper()} (Airflow run state: {summary.get('airflow_state')})", ""]
    read = summary.get("rows_read", {})
    if read:
        entities = sorted({e for counts in read.values() for e in counts})
        lines.append("Rows read per ERP and entity:")
        lines.append("  " + "source".ljust(10) + "".join(e.rjust(17) for e in entities))
        for source, counts in read.items():
            lines.append("  " + source.ljust(10) + "".join(str(counts.get(e, 0)).rjust(17) for e in entities))
        lines.append("")
    lines.append("Quality gate at staging (in = passed + quarantined):")
    for entity, n in summary.get("rows_in", {}).items():
        lines.append(f"  {entity:<16} {n:>7} in  {summary['rows_passed'][entity]:>7} passed  "
                     f"{summary['rows_quarantined'][entity]:>5} quarantined")
    lines += ["",
              f"Unified customers:  {summary.get('unified_customers')} (held by the quality gate: {summary.get('customers_held')})",
              f"Profiles built:     {summary.get('profiles')} (held: {summary.get('profiles_held')})  "
              f"segments: {summary.get('segments')}",
              f"Profiles pushed:    {summary.get('profiles_pushed')}  CRM writes: {summary.get('crm_writes')}  "
              f"unchanged: {summary.get('crm_unchanged')}  rejected: {summary.get('crm_rejected')}",
              f"Contacts written:   {summary.get('contact_writes')}  (waiting for their account: "
              f"{summary.get('contacts_deferred')})",
              f"CRM records now:    {summary.get('crm_records')} accounts, {summary.get('crm_contacts')} contacts", "",
              "Time per stage (s): " + ", ".join(f"{k} {v}" for k, v in summary.get("stage_seconds", {}).items()),
              f"Total stage time {summary.get('duration_s')} s, wall time {summary.get('wall_time_s')} s", "",
              "Run report (what was synced, held back and why, segments and value; links to the Data Docs):",
              f"  {summary.get('report')}",
              "Held rows: `erp2crm quarantine list`; after fixing a source, `erp2crm quarantine replay --demo`."]
    return "\n".join(lines)
