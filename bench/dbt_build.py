"""dbt benchmark: a full `dbt build` and a one-day incremental rerun.

Two datasets: the UCI Online Retail export (541,909 lines) and a generated multi-tenant
dataset about ten times larger. For each: load, time a full `dbt build` (models + tests), append
one more day of sales, load it, and time the rerun. Target: rerun < 15% of the full build at
the 10x size.

    python bench/dbt_build.py [--scale 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from ingestion.generator import DEMO_TENANTS, END_DATE, generate_sample
from ingestion.landing import ingest_tenant
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from storepulse.dbt_runtime import dbt_executable, dbt_paths
from storepulse.tenants import Tenant, add_tenant
from storepulse.warehouse import dbt_environment, get_engine
from tests.ingestion_helpers import publish

DBT_PATHS = dbt_paths()


def dbt_build(url) -> float:
    """``dbt build`` of what is loaded, timed. The loads are published first, as the raw gate
    publishes a passing batch (the gate's own cost is not what this measures)."""
    publish(get_engine(url))
    env = {**os.environ, **DBT_PATHS.environment(), **dbt_environment(url),
           "DBT_TARGET_PATH": str(DBT_PATHS.runs_dir / "bench")}
    started = time.perf_counter()
    done = subprocess.run([dbt_executable(), "build"], env=env, cwd=DBT_PATHS.project_dir,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stdout[-3000:])
    return time.perf_counter() - started


def count_lines(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("select count(*) from raw.sales_lines").scalar_one()


def bench_uci() -> dict:
    with scratch_database() as (url, engine), tempfile.TemporaryDirectory() as tmp:
        add_tenant(engine, Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB"))
        load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
        full = dbt_build(url)
        # One more trading day: the export's last full day again, re-dated and re-numbered.
        import pandas as pd
        lines = pd.read_csv(UCI_CSV, dtype=str)
        last = lines[lines.InvoiceDate.str.startswith("2011-12-08")].copy()
        last["InvoiceDate"] = last.InvoiceDate.str.replace("2011-12-08", "2011-12-10")
        last["InvoiceNo"] = last.InvoiceNo + "-next"
        extra = Path(tmp) / "next_day.csv"
        last.to_csv(extra, index=False)
        load_file(engine, extra, "uci", shipped_specs()["uci_online_retail_csv"])
        rows = count_lines(engine)
        rerun = dbt_build(url)
    return {"dataset": "UCI Online Retail", "rows": rows, "full": full, "rerun": rerun}


def bench_generated(scale: float) -> dict:
    with scratch_database() as (url, engine), tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing"
        generate_sample(landing, seed=42, scale=scale, broken_rows=False)
        for p in DEMO_TENANTS:
            add_tenant(engine, Tenant(p.tenant_id, p.name, p.timezone, p.currency,
                                      p.country_code))
            ingest_tenant(engine, landing, p.tenant_id)
        full = dbt_build(url)
        extra = Path(tmp) / "next_day"
        generate_sample(extra, seed=43, scale=scale, end_date=END_DATE + timedelta(days=1),
                        history_days=1, broken_rows=False, order_offset=9_000_000)
        for p in DEMO_TENANTS:
            for path in (extra / p.tenant_id / p.source).iterdir():
                shutil.copy(path, landing / p.tenant_id / p.source / path.name)
            ingest_tenant(engine, landing, p.tenant_id)
        rows = count_lines(engine)
        rerun = dbt_build(url)
    return {"dataset": f"generated, {len(DEMO_TENANTS)} tenants, scale {scale:g}", "rows": rows,
            "full": full, "rerun": rerun}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=9.0,
                        help="generator scale; 9 gives about ten times the UCI row count")
    args = parser.parse_args()
    announce_machine()
    results = []
    for run in (bench_uci, lambda: bench_generated(args.scale)):
        results.append(run())
        r = results[-1]
        print(f"  {r['dataset']}: {r['rows']:,} rows, full {r['full']:.1f}s, "
              f"rerun {r['rerun']:.1f}s", flush=True)
    print_table("dbt build (models + tests), full vs one appended day",
                ["dataset", "rows", "full build s", "one-day rerun s", "rerun / full"],
                [[r["dataset"], f"{r['rows']:,}", f"{r['full']:.1f}", f"{r['rerun']:.1f}",
                  f"{r['rerun'] / r['full']:.1%}"] for r in results])
    uci, big = results
    emit_json({"full_build_s": round(big["full"], 2), "one_day_rerun_s": round(big["rerun"], 2),
               "rerun_ratio": round(big["rerun"] / big["full"], 4), "rows": big["rows"],
               "uci_full_build_s": round(uci["full"], 2),
               "uci_one_day_rerun_s": round(uci["rerun"], 2)})


if __name__ == "__main__":
    main()
