"""Ingest benchmark: the full UCI Online Retail export (.csv.gz) into raw.sales_lines.

Compared in the same run with:
  * the same loader sending CSV instead of binary COPY rows (its fallback format);
  * pandas ``to_sql`` (the naive way): read the CSV with pandas, insert with ``to_sql``;
  * a bare ``COPY`` of the same rows into a typed table with no validation (the ceiling);
and the peak memory of loading a generated 5-million-row file in a separate process. Where
the server runs on this machine, the CPU time its processes spend on each load is reported
too (from /proc).

    python bench/ingest.py [--skip-5m] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from unittest import mock

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from ingestion import copy_binary
from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from storepulse.tenants import Tenant, add_tenant

UCI_ROWS = 541_909


def server_cpu_seconds() -> float | None:
    """CPU time used so far by this machine's PostgreSQL processes (None without /proc)."""
    if not Path("/proc/self/stat").exists():
        return None
    ticks = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().startswith("postgres"):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:  # a process that ended meanwhile
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def bench_storepulse(engine: sa.Engine, attempt: int, copy_format: str = "binary"
                     ) -> tuple[float, float | None, object]:
    """One load of the UCI export: seconds, the server's CPU seconds, the result."""
    tenant = f"uci{copy_format}{attempt}"  # a tenant per attempt: bytes load once per tenant
    add_tenant(engine, Tenant(tenant, "UCI Online Retail", "Europe/London", "GBP", "GB"))
    with contextlib.ExitStack() as patches:
        if copy_format == "csv":  # the loader's fallback, as for a zone Arrow does not know
            patches.enter_context(mock.patch.object(copy_binary, "knows_timezone",
                                                    return_value=False))
        cpu_before = server_cpu_seconds()
        started = time.perf_counter()
        result = load_file(engine, UCI_CSV, tenant, shipped_specs()["uci_online_retail_csv"])
        seconds = time.perf_counter() - started
    time.sleep(0.2)  # the server's background writers finish accounting for the load
    cpu_after = server_cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return seconds, cpu, result


def bench_bare_copy(engine: sa.Engine) -> float:
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists bench_bare_copy"))
        conn.execute(sa.text(
            "create table bench_bare_copy (invoice_no text, stock_code text, description text, "
            "quantity integer, invoice_date timestamp, unit_price numeric, customer_id text, "
            "country text)"))
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with gzip.open(UCI_CSV, "rb") as fh, cursor.copy(
                "copy bench_bare_copy from stdin with (format csv, header true)") as copy:
            while block := fh.read(1 << 20):
                copy.write(block)
    return time.perf_counter() - started


def bench_to_sql(engine: sa.Engine) -> float:
    started = time.perf_counter()
    frame = pd.read_csv(UCI_CSV, dtype={"CustomerID": "string", "InvoiceNo": "string",
                                        "StockCode": "string"}, parse_dates=["InvoiceDate"])
    frame.to_sql("bench_to_sql", engine, index=False, if_exists="replace", chunksize=10_000)
    return time.perf_counter() - started


def write_big_file(path: Path, copies: int) -> int:
    """The UCI export repeated with distinct invoice numbers: ~5.4M realistic rows."""
    rows = 0
    with gzip.open(UCI_CSV, "rt", encoding="utf-8") as src:
        header, *lines = src.read().splitlines()
    with path.open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for i in range(copies):
            suffix = f"-{i}"
            for line in lines:
                invoice, rest = line.split(",", 1)
                out.write(f"{invoice}{suffix},{rest}\n")
                rows += 1
    return rows


def bench_peak_memory(url_string: str, path: Path) -> tuple[float, float, int]:
    script = textwrap.dedent(f"""
        import resource, time
        from pathlib import Path
        from ingestion.loader import load_file
        from ingestion.spec import shipped_specs
        from storepulse.tenants import Tenant, add_tenant
        from storepulse.warehouse import get_engine, parse_database_url
        engine = get_engine(parse_database_url({url_string!r}))
        add_tenant(engine, Tenant("big", "Big", "Europe/London", "GBP", "GB"))
        started = time.perf_counter()
        result = load_file(engine, Path({str(path)!r}), "big",
                           shipped_specs()["uci_online_retail_csv"])
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(result.rows_read, seconds, peak)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    rows, seconds, peak_mib = done.stdout.split()
    return float(seconds), float(peak_mib), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-5m", action="store_true", help="skip the 5M-row memory run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="attempts of the loader (binary, then CSV, or the other way round "
                             "on odd attempts) and of bare COPY, alternating; the median of "
                             "each is reported (this machine's timings vary run to run)")
    args = parser.parse_args()
    announce_machine()
    with scratch_database() as (url, engine):
        times: dict[str, list[float]] = {"binary": [], "csv": [], "bare": []}
        cpu: dict[str, list[float]] = {"binary": [], "csv": []}
        for attempt in range(args.repeat):
            for copy_format in ("binary", "csv")[::1 if attempt % 2 == 0 else -1]:
                seconds, server_cpu, loaded = bench_storepulse(engine, attempt, copy_format)
                times[copy_format].append(seconds)
                if server_cpu is not None:
                    cpu[copy_format].append(server_cpu)
                if copy_format == "binary":
                    result = loaded
            times["bare"].append(bench_bare_copy(engine))
        sp_seconds, csv_seconds, copy_seconds = (statistics.median(times[k])
                                                 for k in ("binary", "csv", "bare"))
        print("attempts (loader binary / loader CSV / bare COPY, s): " + ", ".join(
            f"{a:.2f} / {b:.2f} / {c:.2f}"
            for a, b, c in zip(times["binary"], times["csv"], times["bare"], strict=True)))
        to_sql_seconds = bench_to_sql(engine)
        assert result.rows_loaded + result.rows_quarantined == UCI_ROWS
        big = None
        if not args.skip_5m:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "uci_x10.csv"
                write_big_file(path, copies=10)
                big = bench_peak_memory(url.render_as_string(hide_password=False), path)
                os.unlink(path)
    figures = {
        "rows": UCI_ROWS,
        "rows_per_s": round(UCI_ROWS / sp_seconds),
        "copy_rows_per_s": round(UCI_ROWS / copy_seconds),
        "to_sql_rows_per_s": round(UCI_ROWS / to_sql_seconds),
        "share_of_bare_copy": round(copy_seconds / sp_seconds, 3),
        "speedup_vs_to_sql": round(to_sql_seconds / sp_seconds, 1),
        "rows_quarantined": result.rows_quarantined,
        "csv_format_rows_per_s": round(UCI_ROWS / csv_seconds),
    }
    rows = [
        ["StorePulse loader (validate + quarantine + COPY)", f"{sp_seconds:.2f}",
         f"{figures['rows_per_s']:,}", "yes"],
        ["  the same, sending CSV instead of binary rows", f"{csv_seconds:.2f}",
         f"{figures['csv_format_rows_per_s']:,}", "yes"],
        ["bare COPY into a typed table (ceiling)", f"{copy_seconds:.2f}",
         f"{figures['copy_rows_per_s']:,}", "no"],
        ["pandas read_csv + to_sql (naive)", f"{to_sql_seconds:.2f}",
         f"{figures['to_sql_rows_per_s']:,}", "no"],
    ]
    print_table(f"UCI Online Retail, {UCI_ROWS:,} rows from .csv.gz",
                ["method", "seconds", "rows/s", "validated"], rows)
    print(f"\nStorePulse reaches {figures['share_of_bare_copy']:.0%} of bare COPY and is "
          f"{figures['speedup_vs_to_sql']}x faster than to_sql; "
          f"{result.rows_quarantined} rows quarantined.")
    if cpu["binary"] and cpu["csv"]:
        figures.update({"server_cpu_s_binary": round(statistics.median(cpu["binary"]), 2),
                        "server_cpu_s_csv": round(statistics.median(cpu["csv"]), 2)})
        print(f"Server CPU per load (median): {figures['server_cpu_s_binary']:.2f} s with "
              f"binary rows, {figures['server_cpu_s_csv']:.2f} s with CSV.")
    if big:
        seconds, peak_mib, big_rows = big
        figures.update({"big_rows": big_rows, "big_rows_per_s": round(big_rows / seconds),
                        "big_peak_mib": round(peak_mib)})
        print_table("Generated file (UCI x10), separate process",
                    ["rows", "seconds", "rows/s", "peak RSS MiB"],
                    [[f"{big_rows:,}", f"{seconds:.1f}", f"{big_rows / seconds:,.0f}",
                      f"{peak_mib:,.0f}"]])
    emit_json(figures)


if __name__ == "__main__":
    main()
