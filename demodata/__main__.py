"""`python -m demodata --out DIR [--customers N] [--seed S] [--anchor-date YYYY-MM-DD]`: write the demo ERPs."""
from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from .generate import generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demodata", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--customers", type=int, default=300, help="number of true customers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--anchor-date", type=date.fromisoformat, default=date(2026, 6, 30),
                        help="the demo's 'today'; all timestamps are at or before its end")
    args = parser.parse_args(argv)
    counts = generate(args.out, n_customers=args.customers, seed=args.seed, anchor_date=args.anchor_date)
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
