"""The `erp2crm` command line."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from erp2crm.paths import VAR


def _hub(url: str | None):
    from hub import HubStore

    url = url or os.environ.get("ERP2CRM_HUB_URL") or f"sqlite:///{(VAR / 'demo' / 'hub.db').resolve()}"
    hub = HubStore(url)
    hub.migrate()
    return hub


@click.group()
def main() -> None:
    """erp2crm: ERP orders, invoices and tickets in; unified, enriched CRM customer profiles out."""


@main.command()
@click.option("--customers", default=300, show_default=True, help="True customers in the generated demo ERPs.")
@click.option("--seed", default=7, show_default=True)
@click.option("--var-dir", type=click.Path(path_type=Path), default=None, help="State folder (default var/demo).")
def demo(customers: int, seed: int, var_dir: Path | None) -> None:
    """Run a full sync through Airflow on the embedded default and summarise it (var/demo/summary.json)."""
    from erp2crm.demo import render, run_demo

    summary = run_demo(var_dir, customers=customers, seed=seed)
    click.echo(render(summary))
    click.echo(f"\nSummary written to {(var_dir or VAR / 'demo') / 'summary.json'}")
    sys.exit(0 if summary.get("status") == "success" else 1)


@main.command()
@click.option("--hub", "hub_url", default=None, help="Hub store SQLAlchemy URL (default: the demo's).")
@click.option("-n", "limit", default=10, show_default=True)
def status(hub_url: str | None, limit: int) -> None:
    """The last runs: status, window and what they did."""
    runs = _hub(hub_url).last_runs(limit)
    if not runs:
        click.echo("no runs yet")
        return
    for run in runs:
        summary = json.loads(run["summary"]) if run["summary"] else {}
        click.echo(f"{run['started_at']:%Y-%m-%d %H:%M:%S}  {run['status']:<8} {run['run_id']}  "
                   f"in={sum(summary.get('rows_in', {}).values())} quarantined={sum(summary.get('rows_quarantined', {}).values())} "
                   f"customers={summary.get('unified_customers', '-')} writes={summary.get('crm_writes', '-')}")


@main.group()
def quarantine() -> None:
    """Rows held back by the quality gates."""


@quarantine.command("list")
@click.option("--hub", "hub_url", default=None)
@click.option("--entity", default=None)
def quarantine_list(hub_url: str | None, entity: str | None) -> None:
    """What is held and why."""
    held = _hub(hub_url).held_quarantine(entity)
    if held.empty:
        click.echo("nothing is held")
        return
    for row in held.itertuples():
        click.echo(f"{row.stage:<16} {row.entity:<16} {row.source_system or '-':<10} {row.record_id or '-':<20} "
                   f"{row.reason_code:<24} {row.reason}")
    click.echo(f"{len(held)} held")


@quarantine.command("replay")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable; default: every source).")
@click.option("--demo", "demo_dir", is_flag=False, flag_value=str(VAR / "demo"), default=None,
              type=click.Path(path_type=Path), help="Use the demo's ERP databases and hub store (default var/demo).")
def quarantine_replay(sources: tuple[str, ...], demo_dir: Path | None) -> None:
    """Re-check held rows now: re-read them from their sources by key with the current mappings and release
    those that pass. The next sync unifies, profiles and pushes them.

    Connections come from Airflow (environment variables or the metadata database), as for the DAG."""
    from erp2crm.errors import ConfigError, DataError, TransientError

    if demo_dir is not None:
        from erp2crm import local
        from erp2crm.demo import connections

        demo_dir = Path(demo_dir).resolve()
        local.configure(demo_dir, connections(demo_dir, demo_dir / "erp"), log_level="WARNING")
    from erp2crm.pipeline import replay_quarantine

    try:
        summary = replay_quarantine(list(sources) or None)
    except (ConfigError, DataError, TransientError) as e:
        click.echo(f"replay failed: {e}", err=True)
        sys.exit(2)
    for entity, n in summary["rows_in"].items():
        if n:
            click.echo(f"{entity:<16} re-checked {n:>5}  released {summary['rows_released'][entity]:>5}  "
                       f"still held {summary['rows_quarantined'][entity]:>5}")
    click.echo(f"{sum(summary['rows_released'].values())} released, {summary['quarantine_held']} held in all "
               f"(run {summary['run_id']}; report {summary['report']})")


@main.command()
@click.option("--dry-run", is_flag=True, help="Show what would be sent; write nothing.")
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable; default: every target).")
@click.option("--hub", "hub_url", default=None, help="Hub store SQLAlchemy URL (default: the demo's).")
@click.option("--limit", default=20, show_default=True, help="Records listed per target (0: all).")
@click.option("--json", "as_json", is_flag=True, help="The full plan as JSON.")
def push(dry_run: bool, targets: tuple[str, ...], hub_url: str | None, limit: int, as_json: bool) -> None:
    """What the next push would create, update (field by field) and leave unchanged, per CRM target.

    Pushing itself is the sync DAG's push task; this command never calls a CRM."""
    from erp2crm.config import load_config
    from erp2crm.errors import ConfigError
    from erp2crm.push import dry_run as plan_push

    if not dry_run:
        click.echo("erp2crm push only previews (--dry-run); the sync DAG's push task writes to the CRM.", err=True)
        sys.exit(2)
    try:
        config = load_config()
        chosen = [config.target(t) for t in targets] if targets else config.targets
        plans = [plan_push(_hub(hub_url), t) for t in chosen]
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(plans, indent=2, default=str, ensure_ascii=False))
        return
    for plan in plans:
        click.echo(f"{plan['target']}: {plan['create']} to create, {plan['update']} to update, "
                   f"{plan['unchanged']} unchanged (dry run: nothing was sent)")
        for change in plan["changes"][:limit or None]:
            fields = change["fields"]
            if fields is None:
                detail = "fields changed since the last confirmed write (not recorded before this version)"
            elif change["action"] == "create":
                detail = ", ".join(f"{k}={v[1]!r}" for k, v in fields.items())
            else:
                detail = "; ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in fields.items())
            click.echo(f"  {change['action']:<7} {change['customer_id']}  {detail}")
        hidden = len(plan["changes"]) - limit
        if limit and hidden > 0:
            click.echo(f"  ... and {hidden} more (--limit 0 lists all)")


@main.group()
def mapping() -> None:
    """Mapping files."""


@mapping.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mapping_check(file: Path) -> None:
    """Validate a source mapping file; errors name the file and the field."""
    from connectors.mapping import load_mapping
    from erp2crm.errors import ConfigError

    try:
        m = load_mapping(file)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    click.echo(f"{file}: ok ({m.connector} source {m.source!r}; streams: {', '.join(m.streams)})")


@main.group()
def connectors() -> None:
    """Source connectors and CRM targets."""


@connectors.command("list")
def connectors_list() -> None:
    from connectors.registry import SOURCE_CONNECTORS, TARGET_KINDS
    from erp2crm.paths import MAPPINGS

    click.echo("sources:")
    for name, what in SOURCE_CONNECTORS.items():
        click.echo(f"  {name:<12} {what}")
    click.echo("targets:")
    for name, what in TARGET_KINDS.items():
        click.echo(f"  {name:<12} {what}")
    click.echo("mappings: " + ", ".join(sorted(p.stem for p in MAPPINGS.glob("*.yaml"))))


if __name__ == "__main__":  # pragma: no cover
    main()
