"""Small helpers shared by the ingestion tests."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from storepulse.tenants import Tenant, add_tenant

POS_HEADER = ("store_id,order_id,line_number,ordered_at,sku,product_name,quantity,unit_price,"
              "currency,customer_id,channel,transaction_type")


def register(engine: sa.Engine, tenant_id: str = "shop", timezone: str = "Europe/London",
             currency: str = "GBP", country: str = "GB") -> str:
    add_tenant(engine, Tenant(tenant_id, tenant_id.title(), timezone, currency, country))
    return tenant_id


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def pos_csv(path: Path, rows: list[str], header: str = POS_HEADER) -> Path:
    return write(path, "\n".join([header, *rows]) + "\n")


def good_row(order: str = "O1", line: int = 1, store: str = "S1", at: str = "2025-03-01 10:00:00",
             qty: str = "2", price: str = "3.50", customer: str = "C1", kind: str = "sale") -> str:
    return (f"{store},{order},{line},{at},SKU{line},Thing {line},{qty},{price},GBP,{customer},"
            f"store,{kind}")


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows(engine: sa.Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def publish(engine: sa.Engine) -> int:
    """Publish every loaded, unheld file, as the raw gate does when a batch passes. For tests
    of what comes after the gate (dbt, ML, isolation); the gate's own tests run it."""
    with engine.begin() as conn:
        return conn.execute(sa.text(
            "update raw.ingest_files set published_at = now() where status = 'loaded' "
            "and held_at is null and published_at is null")).rowcount
