"""Render the results table of bench/README.md from bench/results/*.json (scale 1.0 results only).

    .venv/bin/python bench/report.py                  # print the table
    .venv/bin/python bench/report.py --update-readme  # rewrite the table between the markers in README.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

ROWS = [
    ("enrich_bench", "`enrich.build_profiles` — 100k customers, 3M orders, 1M invoices, 300k tickets",
     "median_s"),
    ("quality_bench", "`quality.validate`, 6 staging suites — 1M rows (6 × 166,666)", "median_total_s"),
]


def _machine(m: dict) -> str:
    return (f"{m['cpu_model']}, {m['cpu_count']} CPUs, {m['mem_total_gib']} GiB RAM, "
            f"{m['platform']}, Python {m['python']}")


def table() -> str:
    lines = ["| benchmark | target | measured median | met? | peak RSS | machine | date |",
             "|---|---|---|---|---|---|---|"]
    for name, what, key in ROWS:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            lines.append(f"| {what} | – | not run | – | – | – | – |")
            continue
        r = json.loads(path.read_text())
        if r.get("scale") != 1.0:
            raise SystemExit(f"{path} is not a scale 1.0 result")
        runs = ", ".join(f"{t:.2f}" for t in r.get("run_times_s") or r.get("run_totals_s"))
        met = "yes" if r["target_met"] else f"**NO** (missed by {r[key] - r['target_s']:.2f} s)"
        lines.append(f"| {what} | ≤ {r['target_s']:g} s | {r[key]:.2f} s (runs: {runs}) | {met} | "
                     f"{r['memory']['peak_rss_mib']:.0f} MiB | {_machine(r['machine'])} | {r['date']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args(argv)
    text = table()
    if args.update_readme:
        readme = README.read_text()
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
