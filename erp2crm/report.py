"""The run report: one self-contained HTML page per run for business users (what was synced, what was held
back and why, what the CRM refused, segments and value), next to the run's Great Expectations Data Docs.

Layout on disk: <reports_dir>/<run>/report.html and <reports_dir>/<run>/data_docs/<gate>/index.html.
Only counts, identifiers, reasons and profile figures go in; never connection details.
"""
from __future__ import annotations

import html
import json
import numbers
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from hub import HubStore

GATES = ("staging", "unified_customer", "profile")  # each gate's Data Docs live in their own folder
_EXAMPLES = 50  # held rows listed by name in the report (all of them are in `erp2crm quarantine list`)


def run_folder(reports_dir: Path, run_id: str) -> Path:
    return Path(reports_dir) / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def data_docs_folder(reports_dir: Path, run_id: str, gate: str) -> Path:
    return run_folder(reports_dir, run_id) / "data_docs" / gate


def write_report(hub: HubStore, summary: dict, reports_dir: Path) -> Path:
    folder = run_folder(reports_dir, summary["run_id"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render(hub, summary, folder), encoding="utf-8")
    return path


# --- rendering ---------------------------------------------------------------------------------------------
def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _label(code) -> str:
    """An identifier as a person reads it: customer_record → customer record."""
    return str(code).replace("_", " ")


def _when(moment) -> str:
    """A hub timestamp (naive, UTC) to the minute."""
    try:
        return pd.Timestamp(moment).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(moment)


def _table(headers: list[str], rows: list[list], numeric_from: int = 1, wrap: int | None = None) -> str:
    """Column `wrap` (free text: a reason, an error) wraps; names, identifiers and numbers stay on one line."""
    if not rows:
        return "<p class=muted>None.</p>"

    def kind(i: int) -> str:
        return "'txt wrap'" if i == wrap else "num" if i >= numeric_from else "txt"

    head = "".join(f"<th class={kind(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class={kind(i)}>{_e(_fmt(v))}</td>" for i, v in enumerate(r)) + "</tr>"
                   for r in rows)
    # Wide tables (many sources or entities) scroll inside their box instead of widening the page.
    return f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _bars(items: dict[str, float], unit: str = "") -> str:
    """A horizontal bar chart in plain HTML and CSS (the page needs no script and no network)."""
    if not items:
        return "<p class=muted>No data.</p>"
    top = max(abs(v) for v in items.values()) or 1
    rows = []
    for label, value in items.items():
        width = max(1.0, 100 * abs(value) / top)
        sign = "neg" if value < 0 else "pos"
        rows.append(f"<div class=bar><span class=label>{_e(label)}</span><span class=track>"
                    f"<span class='fill {sign}' style='width:{width:.1f}%'></span></span>"
                    f"<span class=value>{_e(_fmt(value))}{_e(unit)}</span></div>")
    return "<div class=chart>" + "".join(rows) + "</div>"


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:,.2f}"
    return str(value)


def _held_this_run(hub: HubStore, run_id: str) -> pd.DataFrame:
    held = hub.held_quarantine()
    return held[held["run_id"] == run_id]


def _rejections(hub: HubStore, run_id: str) -> pd.DataFrame:
    """Accounts and contact persons the CRM refused in this run (a contact as "customer (contact key)")."""
    receipts = hub.read_table("push_receipts")
    contacts = hub.read_table("contact_receipts")
    labels = contacts["customer_id"].fillna("") + " (contact " + contacts["contact_key"] + ")"
    contacts = contacts.assign(customer_id=labels)
    both = pd.concat([receipts, contacts[["run_id", "target", "customer_id", "result", "error"]]], ignore_index=True)
    return both[(both["run_id"] == run_id) & (both["result"] == "rejected")]


def _value_by_segment(hub: HubStore) -> tuple[dict, dict]:
    profiles = hub.read_table("profiles", ["segment", "net_value"])
    if profiles.empty:
        return {}, {}
    counts = profiles["segment"].value_counts().to_dict()  # largest segment first; both charts in this order
    value = profiles.groupby("segment")["net_value"].sum().round(2)
    return counts, {segment: value[segment] for segment in counts}


def render(hub: HubStore, summary: dict, folder: Path) -> str:
    run_id = summary["run_id"]
    currency = summary.get("reporting_currency") or ""
    held = _held_this_run(hub, run_id)
    rejected = _rejections(hub, run_id)
    segment_counts, segment_value = _value_by_segment(hub)

    read_rows = [[source, *(counts.get(e, 0) for e in summary.get("rows_in", {}))]
                 for source, counts in summary.get("rows_read", {}).items()]
    gate_rows = [[_label(entity), n, summary["rows_passed"][entity], summary["rows_quarantined"][entity],
                  summary.get("rows_released", {}).get(entity, 0)] for entity, n in summary.get("rows_in", {}).items()]
    target_rows = [[name, t.get("sent", 0), t.get("created", 0), t.get("updated", 0), t.get("retired", 0),
                    t.get("unchanged", 0), t.get("skipped", 0), t.get("rejected", 0)]
                   for name, t in summary.get("targets", {}).items()]
    contact_rows = [[name, c.get("sent", 0), c.get("created", 0), c.get("updated", 0), c.get("retired", 0),
                     c.get("unchanged", 0), c.get("deferred", 0), c.get("skipped", 0), c.get("rejected", 0)]
                    for name, c in ((n, t.get("contacts")) for n, t in summary.get("targets", {}).items()) if c]
    codes = held.assign(code=held["reason_code"].str.split(";")).explode("code")
    reasons = codes.groupby(["stage", "entity", "code"]).size().sort_values(ascending=False, kind="stable")
    # A reason code alone means little to a reader: each comes with the reason one of its rows was held for,
    # from a row held for that reason only where there is one.
    codes = codes.assign(other=codes["reason_code"] != codes["code"]).sort_values("other", kind="stable")
    example = codes.groupby(["stage", "entity", "code"])["reason"].first()
    reason_rows = [[stage, _label(entity), _label(code), example[stage, entity, code], int(n)]
                   for (stage, entity, code), n in reasons.items()]
    example_rows = [[_label(r.entity), r.source_system or "", r.record_id or "", r.reason]
                    for r in held.head(_EXAMPLES).itertuples()]
    rejected_rows = [[r.target, r.customer_id, r.error] for r in rejected.head(_EXAMPLES).itertuples()]
    docs = []
    for gate in GATES:
        site = folder / "data_docs" / gate
        if not (site / "index.html").exists():
            continue
        # Linked one by one: the site index lists its pages with scripts GX loads from a CDN.
        pages = sorted(site.glob("validations/*/**/*.html"))
        links = ", ".join(f"<a href='{_e(quote(p.relative_to(folder).as_posix()))}'>"
                          f"{_e(_label(p.relative_to(site).parts[1]))}</a>" for p in pages)
        docs.append(f"<li>{_e(_label(gate))} checks: {links} "
                    f"(<a href='data_docs/{gate}/index.html'>site index</a>, needs internet)</li>")

    status = summary.get("status", "unknown")
    sections = [
        f"<h1>erp2crm run report <span class='status {_e(status)}'>{_e(status)}</span></h1>",
        f"<p class=muted>Run {_e(run_id)} · "
        + ("full refresh (every row read)" if summary.get("full_refresh") else
           f"changes from {_e(_when(summary.get('window_start')))} to {_e(_when(summary.get('window_end')))}")
        + f" · {_e(summary.get('duration_s'))} s of stage time</p>",
        "<div class=cards>" + "".join(f"<div class=card><b>{_e(_fmt(v))}</b><span>{_e(k)}</span></div>" for k, v in {
            "unified customers": summary.get("unified_customers", 0), "profiles": summary.get("profiles", 0),
            "CRM writes": summary.get("crm_writes", 0), "rows held back": int(len(held)),
            "CRM rejections": summary.get("crm_rejected", 0),
            f"net value ({currency})": summary.get("total_net_value") or 0.0}.items()) + "</div>",
        "<h2>What was read</h2>", _table(["source", *map(_label, summary.get("rows_in", {}))], read_rows),
        "<h2>Quality checks</h2><p>Every row read is either passed on or held back with a reason: "
        "rows in = passed + held. Released rows were held before and pass now.</p>",
        _table(["entity", "rows in", "passed", "held back", "released"], gate_rows),
        "<h2>Held back and why</h2>",
        _table(["stage", "entity", "reason", "for example", "rows"], reason_rows, numeric_from=4, wrap=3),
        f"<details><summary>First {_EXAMPLES} held rows</summary>"
        + _table(["entity", "source", "record", "reason"], example_rows, numeric_from=9, wrap=3) + "</details>",
        "<p class=muted>Fix the row in its ERP (or the mapping); the next run re-checks held rows and releases "
        "those that pass. <code>erp2crm quarantine list</code> shows everything held.</p>",
        "<h2>Sent to the CRM</h2>",
        _table(["target", "sent", "created", "updated", "retired", "unchanged", "skipped", "rejected"], target_rows),
        *(["<h3>Contact persons</h3><p class=muted>Sent after their accounts; deferred: their account is not in "
           "the CRM yet (a later run sends them); retired: merged into another contact of the same person, or "
           "(mirror) gone from the ERP.</p>",
           _table(["target", "sent", "created", "updated", "retired", "unchanged", "deferred", "skipped", "rejected"],
                  contact_rows)] if contact_rows else []),
        "<h3>Refused by the CRM</h3>", _table(["target", "customer", "error"], rejected_rows, numeric_from=9, wrap=2),
        "<h2>Customers by segment</h2>", _bars({_label(k): int(v) for k, v in segment_counts.items()}, " customers"),
        f"<h2>Net value by segment ({_e(currency)})</h2>",
        _bars({_label(k): float(v) for k, v in segment_value.items()}),
        "<h2>Data Docs</h2>" + (f"<ul>{''.join(docs)}</ul>" if docs else "<p class=muted>Not built for this run.</p>"),
    ]
    return _PAGE.format(title=_e(f"erp2crm run {run_id}"), body="\n".join(sections),
                        data=_e(json.dumps({k: summary.get(k) for k in ("run_id", "status")})))


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<meta name=viewport content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #1d2733; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ margin-top: 2rem; border-bottom: 1px solid #dde3ea; padding-bottom: .2rem; }}
.muted {{ color: #66707c; }}
.status {{ font-size: .9rem; padding: .15rem .6rem; border-radius: 1rem; vertical-align: middle; }}
.status.success {{ background: #d9f2e1; color: #136b34; }} .status.failed {{ background: #fbe0e0; color: #8f1d1d; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }}
.card {{ background: #f3f6f9; border-radius: .5rem; padding: .7rem 1rem; min-width: 9rem; }}
.card b {{ display: block; font-size: 1.35rem; }} .card span {{ color: #66707c; font-size: .85rem; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0; }}
th, td {{ border-bottom: 1px solid #e5e9ee; padding: .3rem .5rem; text-align: left; white-space: nowrap; }}
td.wrap {{ white-space: normal; overflow-wrap: anywhere; width: 100%; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.chart {{ margin: .5rem 0; }} .bar {{ display: flex; align-items: center; gap: .6rem; margin: .25rem 0; }}
.bar .label {{ width: 10rem; }} .bar .track {{ flex: 1; background: #eef1f4; height: 1rem; border-radius: .2rem; }}
.bar .fill {{ display: block; height: 100%; border-radius: .2rem; }}
.fill.pos {{ background: #3b7dd8; }} .fill.neg {{ background: #d8563b; }}
.bar .value {{ width: 11rem; text-align: right; font-variant-numeric: tabular-nums; }}
</style></head>
<body data-run='{data}'>
{body}
</body></html>
"""
