"""Benchmark: extraction throughput of the generic SQL source, and API calls per 1,000 rows of API sources.

SQL: an Odoo-shaped `sale_order` table of 1M rows (`--scale` multiplies it) built in the machine's
PostgreSQL with generate_series, read by `SqlSource` through the shipped `mappings/odoo.yaml` order stream
(server-side cursor, 50k-row chunks, mapping to canonical rows included). Timed: a full extraction, and an
incremental one whose window holds the 1% most recently written rows. Median of `--runs`.

API (`--api`): calls per 1,000 rows of each API source, every stream extracted: the Tryton JSON-RPC and REST
sources against the real Tryton 8.2 test server (tests/servers/tryton.py) after adding `--api-parties` parties to its
database with SQL, and the ERPNext REST and Odoo JSON-RPC sources against our emulators on demo databases of
`--api-customers` customers. Calls include lookups (each lookup object read once per stream).

    .venv/bin/python bench/extract_bench.py                 # 1M orders from PostgreSQL, 3 runs
    .venv/bin/python bench/extract_bench.py --scale 0.01    # smoke run
    .venv/bin/python bench/extract_bench.py --api           # also the Tryton API calls
"""
from __future__ import annotations

import gc
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common  # noqa: E402  (bench/ is sys.path[0] when run as a script)

NAME = "extract_bench"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
ROWS = 1_000_000
TARGET_ROWS_PER_S = None  # the issue asks for the figure, with no target


def build_orders(engine, rows: int) -> datetime:
    """sale_order and res_currency as Odoo has them (the columns the mapping reads); returns the newest write."""
    from sqlalchemy import text

    newest = datetime(2026, 7, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS sale_order; DROP TABLE IF EXISTS res_currency"))
        conn.execute(text("CREATE TABLE res_currency (id serial PRIMARY KEY, name varchar NOT NULL)"))
        conn.execute(text("INSERT INTO res_currency (name) VALUES ('CNY'), ('USD'), ('EUR')"))
        conn.execute(text(
            "CREATE TABLE sale_order (id serial PRIMARY KEY, name varchar NOT NULL, partner_id integer NOT NULL, "
            "state varchar, date_order timestamp, amount_total numeric, currency_id integer, "
            "create_date timestamp, write_date timestamp)"))
        conn.execute(text(
            "INSERT INTO sale_order (name, partner_id, state, date_order, amount_total, currency_id, create_date, "
            "write_date) SELECT 'S' || lpad(g::text, 8, '0'), 1 + g % 300000, "
            "(ARRAY['draft','sent','sale','done','cancel'])[1 + g % 5], "
            ":newest - make_interval(mins => (:rows - g)), round((g % 997) * 1.37, 2), 1 + g % 3, "
            ":newest - make_interval(mins => (:rows - g)), :newest - make_interval(mins => (:rows - g)) "
            "FROM generate_series(1, :rows) g"), {"rows": rows, "newest": newest.replace(tzinfo=None)})
        conn.execute(text("ANALYZE sale_order"))
    return newest


def sql_runs(rows: int, runs: int) -> dict:
    from sqlalchemy import create_engine, text

    from connectors.mapping import load_mapping
    from connectors.sql import SqlSource
    from connectors.window import Window
    from erp2crm.paths import MAPPINGS

    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    database = "erp2crm_bench_extract"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine = create_engine(f"{PG}/{database}")
    t = time.perf_counter()
    newest = build_orders(engine, rows)
    print(f"built {rows:,} orders in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    source = SqlSource("odoo", load_mapping(MAPPINGS / "odoo.yaml"), engine)
    recent = Window(newest - timedelta(minutes=rows // 100), newest + timedelta(minutes=1))
    timings = {"full": [], "incremental_1pct": []}
    counts, peaks = {}, []
    gc.collect()
    rss_before = _common.rss_mib()
    reset_ok = True
    for _ in range(runs):
        for label, window in (("full", None), ("incremental_1pct", recent)):
            gc.collect()
            reset_ok = _common.reset_peak_rss() and reset_ok
            t = time.perf_counter()
            n = sum(len(chunk) for chunk in source.extract("order", window))
            timings[label].append(time.perf_counter() - t)
            counts[label] = n
            peaks.append(_common.peak_rss_mib())
    assert counts["full"] == rows and counts["incremental_1pct"] in (rows // 100, rows // 100 + 1), counts
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
    full = _common.median(timings["full"])
    return {
        "rows": rows, "rows_read": counts,
        "median_s": {k: round(_common.median(v), 3) for k, v in timings.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in timings.items()},
        "rows_per_s_full": round(rows / full),
        "memory": _common.memory_report("the interpreter, pandas and SQLAlchemy", reset_ok, rss_before, peaks),
    }


def tryton_api(parties: int) -> dict:
    """Calls the Tryton JSON-RPC and REST sources make per stream, on the test server's database plus `parties`."""
    sys.path.insert(0, str(_common.REPO_ROOT / "tests"))
    from servers import tryton as harness
    from sqlalchemy import create_engine, text

    from connectors.http import HttpClient
    from connectors.mapping import load_mapping
    from connectors.tryton_rest import TrytonRest, TrytonRestClient
    from connectors.tryton_rpc import TrytonRpc, TrytonRpcClient
    from erp2crm.paths import MAPPINGS

    server = harness.start()
    try:
        engine = create_engine(server.sql_url)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO party_party (name, code, active, create_uid, create_date) "
                "SELECT 'Bench party ' || g, 'B' || g, true, 1, now() AT TIME ZONE 'UTC' "
                "FROM generate_series(1, :n) g"), {"n": parties})
        engine.dispose()
        client = TrytonRpcClient(HttpClient(server.url), server.database, server.login, server.password)
        rpc = {"added_parties": parties, **_calls_per_stream(
            TrytonRpc("tryton_rpc", load_mapping(MAPPINGS / "tryton_rpc.yaml"), client), client)}
        client = TrytonRestClient(HttpClient(server.url), server.database, server.rest_key)
        rest = {"added_parties": parties, **_calls_per_stream(
            TrytonRest("tryton_rest", load_mapping(MAPPINGS / "tryton_rest.yaml"), client), client)}
        return {"tryton_rpc": rpc, "tryton_rest": rest}
    finally:
        harness.stop(server)


def _calls_per_stream(source, client) -> dict:
    out = {"page_size": source.page_size, "streams": {}}
    for entity in source.mapping.streams:
        before = client.calls
        t = time.perf_counter()
        rows = sum(len(c) for c in source.extract(entity, None))
        calls = client.calls - before
        out["streams"][entity] = {"rows": rows, "calls": calls, "seconds": round(time.perf_counter() - t, 2),
                                  "calls_per_1000_rows": round(1000 * calls / rows, 2) if rows else None}
    rows = sum(s["rows"] for s in out["streams"].values())
    calls = sum(s["calls"] for s in out["streams"].values())
    out["total"] = {"rows": rows, "calls": calls, "calls_per_1000_rows": round(1000 * calls / rows, 2)}
    return out


def emulated_apis(customers: int) -> dict:
    """Calls of the ERPNext REST and Odoo JSON-RPC sources against our emulators, on demo databases."""
    import tempfile

    from connectors.erpnext_api import ErpnextApi, ErpnextApiClient
    from connectors.http import HttpClient
    from connectors.mapping import load_mapping
    from connectors.odoo_rpc import OdooRpc, OdooRpcClient
    from demodata import generate
    from emulators.erpnext import ErpnextEmulator
    from emulators.odoo import OdooEmulator
    from erp2crm.paths import MAPPINGS

    folder = Path(tempfile.mkdtemp(prefix="erp2crm-extract-bench-"))
    generate(folder, n_customers=customers, seed=3)
    out = {"demo_customers": customers}
    with ErpnextEmulator(folder / "erpnext.db", "bench-key", "bench-secret") as erpnext:
        client = ErpnextApiClient(HttpClient(erpnext.url), "bench-key", "bench-secret")
        out["erpnext_api"] = _calls_per_stream(
            ErpnextApi("erpnext_api", load_mapping(MAPPINGS / "erpnext_api.yaml"), client), client)
    with OdooEmulator(folder / "odoo.db", "odoo", "bench", "bench-key") as odoo:
        client = OdooRpcClient(HttpClient(odoo.url), "odoo", "bench", "bench-key")
        out["odoo_rpc"] = _calls_per_stream(OdooRpc("odoo_rpc", load_mapping(MAPPINGS / "odoo_rpc.yaml"), client), client)
    return out


def main(argv=None) -> int:
    ap = _common.arg_parser(NAME, __doc__.splitlines()[0], "multiplier on 1M order rows (default 1.0)")
    ap.add_argument("--api", action="store_true", help="also count the API sources' calls (Tryton, ERPNext, Odoo)")
    ap.add_argument("--api-parties", type=int, default=20_000, help="parties added to Tryton for --api")
    ap.add_argument("--api-customers", type=int, default=3_000, help="demo customers behind the ERPNext and Odoo emulators")
    args = ap.parse_args(argv)
    payload = {"benchmark": NAME, "date": _common.now_iso(), "scale": args.scale,
               "sql_postgresql": sql_runs(int(ROWS * args.scale), args.runs)}
    if args.api:
        payload["api_calls"] = {**tryton_api(args.api_parties), **emulated_apis(args.api_customers)}
    payload["machine"] = _common.machine_info()
    payload["versions"] = _common.library_versions("pandas", "SQLAlchemy", "psycopg")
    out = _common.save(NAME, args.scale, args.out, payload)
    sql = payload["sql_postgresql"]
    print(f"SQL source, PostgreSQL: {sql['rows']:,} orders in {sql['median_s']['full']} s "
          f"({sql['rows_per_s_full']:,} rows/s); 1% window {sql['median_s']['incremental_1pct']} s; "
          f"peak {sql['memory']['peak_rss_mib']} MiB → {out}")
    for api, result in payload.get("api_calls", {}).items():
        if api == "demo_customers":
            continue
        for entity, s in {**result["streams"], "all streams": result["total"]}.items():
            print(f"{api} {entity}: {s['rows']:,} rows, {s['calls']} calls ({s['calls_per_1000_rows']}/1,000 rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
