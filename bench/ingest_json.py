"""JSON ingest benchmark: the UCI Online Retail export as JSON-lines orders (one order per
invoice, its lines nested, as ``json_orders`` reads them) into raw.sales_lines.

Compared in the same run with:
  * the JSON reader alone, and the same reader without its check for keys an object names
    twice (what that check costs);
  * pandas (the naive way): parse each line with ``json.loads``, flatten with
    ``json_normalize``, insert with ``to_sql``, without validation.

Each is timed ``--repeat`` times, alternating, and the median is reported.

    python bench/ingest_json.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import UCI_CSV, announce_machine, emit_json, print_table, scratch_database
from ingestion.loader import load_file
from ingestion.readers import json_orders
from ingestion.spec import shipped_specs
from storepulse.tenants import Tenant, add_tenant

SPEC = shipped_specs()["json_orders"]


def write_orders(path: Path) -> tuple[int, int]:
    """UCI's invoices as JSON-lines orders; returns (orders, lines)."""
    frame = pd.read_csv(UCI_CSV, dtype={"CustomerID": "string", "InvoiceNo": "string",
                                        "StockCode": "string", "Description": "string"})
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    orders = 0
    with path.open("w", encoding="utf-8") as out:
        for invoice, lines in frame.groupby("InvoiceNo", sort=False):
            first = lines.iloc[0]
            customer = first["CustomerID"]
            out.write(json.dumps({
                "id": invoice, "location_id": "online", "created_at": first["InvoiceDate"],
                "currency": "GBP", "kind": "return" if invoice.startswith("C") else "sale",
                "customer": {"id": None if pd.isna(customer) else customer},
                "lines": [{"line": n, "sku": sku, "title": None if pd.isna(title) else title,
                           "qty": int(qty), "price": float(price)}
                          for n, (sku, title, qty, price) in enumerate(zip(
                              lines["StockCode"], lines["Description"], lines["Quantity"],
                              lines["UnitPrice"], strict=True), start=1)],
            }) + "\n")
            orders += 1
    return orders, len(frame)


def time_load(engine: sa.Engine, path: Path, attempt: int) -> tuple[float, object]:
    tenant = f"uci_json{attempt}"  # a tenant per attempt: the same bytes load once per tenant
    add_tenant(engine, Tenant(tenant, "UCI Online Retail", "Europe/London", "GBP", "GB"))
    started = time.perf_counter()
    result = load_file(engine, path, tenant, SPEC)
    return time.perf_counter() - started, result


class _PlainDecoder:
    """The reader's decoder as it was before the repeated-key check: json's own."""

    def __init__(self) -> None:
        self.decoder = json.JSONDecoder()

    def take_repeated(self) -> list[str]:
        return []


def time_reader(path: Path, key_check: bool) -> float:
    with mock.patch.object(json_orders, "_KeyTracker",
                           json_orders._KeyTracker if key_check else _PlainDecoder):
        started = time.perf_counter()
        rows = sum(chunk.table.num_rows for chunk in json_orders.read_jsonl(path, SPEC))
        seconds = time.perf_counter() - started
    assert rows > 0
    return seconds


def time_pandas(engine: sa.Engine, path: Path) -> float:
    started = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    flat = pd.json_normalize(records, "lines", ["id", "location_id", "created_at", "currency",
                                                 "kind", ["customer", "id"]],
                             record_prefix="line_")
    flat.to_sql("bench_json_to_sql", engine, index=False, if_exists="replace",
                chunksize=10_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    announce_machine()
    times: dict[str, list[float]] = {"load": [], "reader": [], "reader_plain": [],
                                     "pandas": []}
    with scratch_database() as (_, engine), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uci_orders.jsonl"
        orders, lines = write_orders(path)
        print(f"{orders:,} orders, {lines:,} lines, {path.stat().st_size / 2**20:.0f} MiB")
        for attempt in range(args.repeat):
            seconds, result = time_load(engine, path, attempt)
            times["load"].append(seconds)
            assert result.rows_read == lines, (result.rows_read, lines)
            assert result.rows_loaded + result.rows_quarantined == lines
            order = (True, False) if attempt % 2 == 0 else (False, True)
            for key_check in order:
                times["reader" if key_check else "reader_plain"].append(
                    time_reader(path, key_check))
            times["pandas"].append(time_pandas(engine, path))
    median = {name: statistics.median(values) for name, values in times.items()}
    figures = {
        "json_lines": lines,
        "json_orders": orders,
        "json_rows_per_s": round(lines / median["load"]),
        "json_rows_quarantined": result.rows_quarantined,
        "json_reader_s": round(median["reader"], 3),
        "json_reader_without_key_check_s": round(median["reader_plain"], 3),
        "key_check_share_of_reader": round(median["reader"] / median["reader_plain"] - 1, 3),
        "key_check_share_of_load": round((median["reader"] - median["reader_plain"])
                                         / median["load"], 3),
        "pandas_to_sql_rows_per_s": round(lines / median["pandas"]),
        "speedup_vs_pandas": round(median["pandas"] / median["load"], 1),
    }
    print_table(f"UCI Online Retail as {orders:,} JSON orders ({lines:,} lines), median of "
                f"{args.repeat}", ["method", "seconds", "lines/s", "validated"], [
        ["StorePulse loader (read + validate + quarantine + COPY)", f"{median['load']:.2f}",
         f"{figures['json_rows_per_s']:,}", "yes"],
        ["  its JSON reader alone", f"{median['reader']:.2f}",
         f"{lines / median['reader']:,.0f}", "-"],
        ["  the reader without the repeated-key check", f"{median['reader_plain']:.2f}",
         f"{lines / median['reader_plain']:,.0f}", "-"],
        ["json.loads + json_normalize + to_sql (naive)", f"{median['pandas']:.2f}",
         f"{figures['pandas_to_sql_rows_per_s']:,}", "no"],
    ])
    print(f"\nThe repeated-key check adds {figures['key_check_share_of_reader']:.1%} to the "
          f"reader, {figures['key_check_share_of_load']:.1%} to a whole load; the loader is "
          f"{figures['speedup_vs_pandas']}x faster than the naive way.")
    emit_json(figures)


if __name__ == "__main__":
    main()
