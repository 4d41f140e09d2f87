"""Batches for the quality-gate tests: a clean history loaded by the real loader, and bad
batches written straight into raw (the gate is the second line of defence for any writer)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from ingestion.loader import load_file
from ingestion.spec import spec_for_source
from tests.ingestion_helpers import good_row, pos_csv, publish

HISTORY_START = date(2025, 3, 1)
HISTORY_DAYS = 35
ORDERS_PER_DAY = 12


def history_rows(start: date = HISTORY_START, days: int = HISTORY_DAYS,
                 orders_per_day: int = ORDERS_PER_DAY, price: str = "3.50") -> list[str]:
    rows = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        for n in range(orders_per_day):
            rows.append(good_row(order=f"{day:%Y%m%d}-{n}", at=f"{day} 1{n % 8}:00:00",
                                 price=price, customer=f"C{n % 5}"))
    return rows


def load_history(engine: sa.Engine, landing: Path, tenant_id: str, batch_id: str,
                 name: str = "history.csv", rows: list[str] | None = None) -> int:
    """A clean history, loaded and published (as the gate publishes a passing batch)."""
    path = pos_csv(landing / tenant_id / "generic_pos_csv" / name, rows or history_rows())
    result = load_file(engine, path, tenant_id, spec_for_source("generic_pos_csv"),
                       batch_id=batch_id)
    assert result.status == "loaded", result.error
    publish(engine)
    return result.file_id


def insert_batch(engine: sa.Engine, tenant_id: str, batch_id: str, lines: list[dict]) -> int:
    """A ledger row and its lines, as another writer might have put them in raw."""
    with engine.begin() as conn:
        file_id = conn.execute(sa.text(
            "insert into raw.ingest_files (tenant_id, source, target, file_name, path, sha256, "
            "bytes, status, batch_id, rows_read, rows_loaded) values (:t, 'direct', "
            "'sales_lines', :n, :n, md5(:n), 0, 'loaded', :b, :c, :c) returning file_id"),
            {"t": tenant_id, "n": f"{batch_id}.csv", "b": batch_id, "c": len(lines)}
        ).scalar_one()
        if lines:
            conn.execute(sa.text(
                "insert into raw.sales_lines (tenant_id, store_id, order_id, line_number, "
                "ordered_at, product_id, product_name, quantity, unit_price, currency, "
                "customer_id, channel, is_return, source_file_id, source_line) values "
                "(:tenant_id, :store_id, :order_id, :line_number, :ordered_at, :product_id, "
                "'Thing', :quantity, :unit_price, :currency, 'C1', 'store', :quantity < 0, "
                ":file_id, :source_line)"),
                [{**line, "file_id": file_id, "source_line": i + 2}
                 for i, line in enumerate(lines)])
    return file_id


def line(tenant_id: str = "shop", order: str = "X1", line_number: int = 1,
         at: str = "2025-03-20 12:00:00+00", quantity: float = 1, price: float = 3.5,
         currency: str = "GBP", store: str | None = "S1", product: str | None = "SKU1") -> dict:
    return {"tenant_id": tenant_id, "store_id": store, "order_id": order,
            "line_number": line_number, "ordered_at": at, "product_id": product,
            "quantity": quantity, "unit_price": price, "currency": currency}
