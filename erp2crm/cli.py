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
        click.echo(f"{plan['target']} ({plan['mode']}): {plan['create']} to create, {plan['update']} to update, "
                   f"{plan['retire']} to retire, {plan['skipped']} skipped, {plan['unchanged']} unchanged "
                   f"(dry run: nothing was sent)")
        if "contacts" in plan:
            c = plan["contacts"]
            click.echo(f"  contacts: {c['create']} to create, {c['update']} to update, {c['retire']} to retire, "
                       f"{c['unchanged']} unchanged, "
                       f"{c['skipped']} skipped, {c['deferred']} deferred until their account is in the CRM")
        for change in plan["changes"][:limit or None]:
            fields = change["fields"]
            if change["action"].startswith("retire"):
                into = f" into {change['merged_into']}" if change.get("merged_into") else ""
                detail = f"{change['reason']}{into}"
            elif fields is None:
                detail = "fields changed since the last confirmed write (not recorded before this version)"
            elif change["action"] == "create":
                detail = ", ".join(f"{k}={v[1]!r}" for k, v in fields.items())
            else:
                detail = "; ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in fields.items())
            click.echo(f"  {change['action']:<7} {change['customer_id']}  {detail}")
        hidden = len(plan["changes"]) - limit
        if limit and hidden > 0:
            click.echo(f"  ... and {hidden} more (--limit 0 lists all)")


def _settings(config_file: Path | None):
    from erp2crm.config import load_config
    from erp2crm.pipeline import reconcile_settings

    return reconcile_settings(load_config(config_file))


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


@main.group(invoke_without_command=True)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Canonical customer records (CSV).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write one row per record: source_system, source_id, customer_id, match_band, match_score.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sync configuration naming matching.yaml and survivorship.yaml (default: config/erp2crm.yaml).")
@click.pass_context
def reconcile(ctx: click.Context, input_path: Path | None, output_path: Path | None, config_file: Path | None) -> None:
    """Identity resolution over a file, with the DAG's code and configuration."""
    if ctx.invoked_subcommand:
        return
    if not input_path or not output_path:
        raise click.UsageError("give --input and --output (or a subcommand: train)")
    import logging

    from erp2crm.errors import Erp2CrmError
    from reconcile.batch import reconcile_file

    logging.getLogger("splink").setLevel(logging.WARNING)  # its timings belong in task logs, not on a terminal
    try:
        result = reconcile_file(input_path, output_path, _settings(config_file))
    except Erp2CrmError as e:
        _fail(e)
    bands = result.crosswalk["match_band"].value_counts().to_dict()
    click.echo(f"{len(result.crosswalk)} records → {result.crosswalk['customer_id'].nunique()} customers "
               f"({', '.join(f'{k} {v}' for k, v in sorted(bands.items()))}); "
               f"{len(result.reviews) if result.reviews is not None else 0} pairs to review; links in {output_path}")


@reconcile.command("train")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--labels", "label_column", default=None,
              help="A column holding each record's true customer: m probabilities come from it instead of EM.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to write (default: the model matching.yaml names).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
def reconcile_train(input_path: Path, label_column: str | None, output_path: Path | None, config_file: Path | None) -> None:
    """Estimate the probabilistic model's parameters from customer records."""
    from erp2crm.errors import Erp2CrmError
    from reconcile.batch import read_records
    from reconcile.normalize import normalise_records
    from reconcile.probabilistic import train

    try:
        settings = _settings(config_file)
        prob = settings.matching.probabilistic
        if prob is None:
            raise click.UsageError("matching.yaml has no probabilistic section to train")
        records = read_records(input_path, keep=(label_column,) if label_column else ())
        frame = normalise_records(records, settings.matching.default_phone_region)
        frame["unique_id"] = frame["source_system"] + ":" + frame["source_id"]
        out = output_path or prob.model_path
        train(frame, prob, label_column, out)
    except Erp2CrmError as e:
        _fail(e)
    click.echo(f"model trained on {len(frame)} records → {out}")


@main.group()
def review() -> None:
    """The review queue: record pairs the matcher is unsure about, and people's decisions on them."""


@review.command("list")
@click.option("--hub", "hub_url", default=None, help="Hub store SQLAlchemy URL (default: the demo's).")
@click.option("--decided", is_flag=True, help="List decisions instead of pending pairs.")
def review_list(hub_url: str | None, decided: bool) -> None:
    """Pairs waiting for a decision, most likely first, with each compared field's level and weight."""
    frame = _hub(hub_url).reviews(("accepted", "rejected") if decided else ("pending",))
    if frame.empty:
        click.echo("no decisions yet" if decided else "nothing to review")
        return
    for row in frame.itertuples(index=False):
        fields = ", ".join(f"{name} {level} ({weight:+.1f})" for name, (level, weight) in row.fields.items())
        who = f"  {row.decision} by {row.decided_by}" if decided else ""
        click.echo(f"{row.left}  {row.right}  p={row.match_probability:.3f}{who}\n    {fields}")


def _decide(decision: str, left: str, right: str, hub_url: str | None, by: str | None, note: str | None) -> None:
    by = by or os.environ.get("USER") or "unknown"
    queued = _hub(hub_url).decide_review(left, right, decision, by, note)
    click.echo(f"{left} and {right}: {decision} by {by}" + ("" if queued else " (the pair was not in the queue)")
               + "; the next sync applies it")


for _decision, _verb, _help in (("accepted", "accept", "The two records are the same customer: merge them."),
                                ("rejected", "reject", "The two records are different customers: never merge them.")):
    @review.command(_verb, help=_help)
    @click.argument("left")
    @click.argument("right")
    @click.option("--hub", "hub_url", default=None)
    @click.option("--by", default=None, help="Who decides (default: $USER).")
    @click.option("--note", default=None)
    def _command(left, right, hub_url, by, note, _decision=_decision):
        _decide(_decision, left, right, hub_url, by, note)


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


@main.command("lineage")
@click.argument("source_system")
@click.argument("source_id")
@click.option("--entity", default="customer_record", show_default=True,
              help="The row's entity: a document (order, invoice, ...) is followed through its customer.")
@click.option("--hub", "hub_url", default=None, help="Hub store SQLAlchemy URL (default: the demo's).")
@click.option("--json", "as_json", is_flag=True, help="The whole trace as JSON.")
def lineage_command(source_system: str, source_id: str, entity: str, hub_url: str | None, as_json: bool) -> None:
    """Where an ERP row went: its unified customer (and why it was linked) and its record in each CRM."""
    from erp2crm.errors import ConfigError
    from erp2crm.lineage import lineage, render

    try:
        trace = lineage(_hub(hub_url), source_system, source_id, entity)
    except ConfigError as e:
        _fail(e)
    click.echo(json.dumps(trace, default=str, indent=2, ensure_ascii=False) if as_json else render(trace))
    if trace["record"] is None and not trace["quarantine"]:
        sys.exit(1)  # nothing known about this row


@main.command("emulator", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("kind", type=click.Choice(["salesforce", "hubspot"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator_command(kind: str, args: tuple[str, ...]) -> None:
    """Start a local CRM emulator: erp2crm emulator salesforce|hubspot --port N [--fault-rate F] [--state-file F]
    (--help after the kind lists its options). The token comes from $SALESFORCE_EMULATOR_TOKEN or
    $HUBSPOT_EMULATOR_TOKEN. Try mappings without touching a production CRM."""
    import importlib

    module = importlib.import_module(f"emulators.{kind}")
    try:
        sys.exit(module.main(list(args)))
    except SystemExit as e:  # argparse's --help and usage errors
        sys.exit(e.code)


@main.group()
def connector() -> None:
    """One source connector."""


@connector.command("new")
@click.argument("name")
@click.option("--api", is_flag=True, help="An API source: also write connectors/NAME.py (client, hook, class).")
def connector_new(name: str, api: bool) -> None:
    """Scaffold a source: mappings/NAME.yaml, tests/test_NAME.py (the shared contract suite) and, with --api,
    connectors/NAME.py. Then follow the README's "Adding a connector and a mapping"."""
    from erp2crm.errors import ConfigError
    from erp2crm.scaffold import new_connector

    try:
        files = new_connector(name, api)
    except ConfigError as e:
        _fail(e)
    for path in files:
        click.echo(f"wrote {path}")
    click.echo(f"next: fill in the mapping, `erp2crm mapping check mappings/{name}.yaml`, point tests/test_{name}.py "
               f"at a test server, add `- name: {name}` to config/erp2crm.yaml and create the {name}_default connection")


@connectors.command("list")
def connectors_list() -> None:
    from connectors.registry import TARGET_KINDS, source_connector_descriptions
    from erp2crm.paths import MAPPINGS

    click.echo("sources:")
    for name, what in source_connector_descriptions().items():
        click.echo(f"  {name:<12} {what}")
    click.echo("targets:")
    for name, what in TARGET_KINDS.items():
        click.echo(f"  {name:<12} {what}")
    click.echo("mappings: " + ", ".join(sorted(p.stem for p in MAPPINGS.glob("*.yaml"))))


if __name__ == "__main__":  # pragma: no cover
    main()


@main.group()
def dags() -> None:
    """The DAGs generated from the configuration (schedule, start date, sources, targets)."""


@dags.command("generate")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Configuration file (default $ERP2CRM_CONFIG or config/erp2crm.yaml).")
def dags_generate(config_file: Path | None) -> None:
    """Validate the configuration and write dags/erp2crm_dag_config.py, the constants the DAG files import."""
    from erp2crm.dagconfig import generate
    from erp2crm.errors import ConfigError

    try:
        path = generate(config_file)
    except ConfigError as e:
        _fail(e)
    click.echo(f"wrote {path}; deploy the dags folder for Airflow to pick it up")


@dags.command("check")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Configuration file (default $ERP2CRM_CONFIG or config/erp2crm.yaml).")
def dags_check(config_file: Path | None) -> None:
    """Exit 1 when the generated DAG settings no longer match the configuration (for CI and deploy scripts)."""
    from erp2crm.config import load_config
    from erp2crm.dagconfig import GENERATED, generated, stale
    from erp2crm.errors import ConfigError

    try:
        reason = stale(load_config(config_file), generated(GENERATED).FINGERPRINT)
    except (ConfigError, ImportError) as e:
        _fail(e)
    if reason:
        click.echo(f"{GENERATED}: {reason}", err=True)
        sys.exit(1)
    click.echo(f"{GENERATED}: up to date")


@main.command()
@click.option("--scale", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True,
              help="small: 10k customer records; medium: 300k records, 3M orders; large: 1M records, 10M orders.")
@click.option("--db", type=click.Choice(["sqlite", "postgres"]), default="sqlite", show_default=True,
              help="Where the ERP databases and the hub store live (postgres: 127.0.0.1:5432, user postgres).")
@click.option("--runs", type=int, default=None, help="Runs, median reported (default 3 at small, 1 otherwise).")
@click.option("--incremental", is_flag=True, help="After each full run, change 1% of the source rows and sync again.")
@click.option("--profile", is_flag=True, help="Run under py-spy (installed separately) and report hot spots per stage.")
def bench(scale: str, db: str, runs: int | None, incremental: bool, profile: bool) -> None:
    """End-to-end sync benchmark (bench/sync_bench.py): demo ERPs at scale, a real DAG run, the Salesforce emulator;
    writes bench/results/sync_<scale>_<db>.json and the table in bench/README.md."""
    from erp2crm.paths import ROOT

    script = ROOT / "bench" / "sync_bench.py"
    if not script.exists():
        _fail(f"{script} not found: the benchmark runs from a source checkout")
    sys.path.insert(0, str(script.parent))
    import sync_bench

    argv = ["--scale", scale, "--db", db] + (["--runs", str(runs)] if runs else []) \
        + (["--incremental"] if incremental else []) + (["--profile"] if profile else [])
    sys.exit(sync_bench.main(argv))
