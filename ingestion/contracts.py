"""Canonical raw-table contracts every source maps onto (ARCHITECTURE.md, ``raw`` schema)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # text | integer | numeric | timestamp | date | boolean
    required: bool = False


@dataclass(frozen=True)
class Contract:
    target: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SALES_LINES = Contract(
    target="sales_lines",
    table="raw.sales_lines",
    columns=(
        Column("store_id", "text", required=True),
        Column("order_id", "text", required=True),
        Column("line_number", "integer", required=True),
        Column("ordered_at", "timestamp", required=True),
        Column("product_id", "text", required=True),
        Column("product_name", "text"),
        Column("quantity", "numeric", required=True),
        Column("unit_price", "numeric", required=True),
        Column("currency", "text", required=True),
        Column("customer_id", "text"),
        Column("country", "text"),
        Column("channel", "text"),
        Column("is_return", "boolean", required=True),
    ),
    key=("store_id", "order_id", "line_number"),
)

STORES = Contract(
    target="stores",
    table="raw.stores",
    columns=(
        Column("store_id", "text", required=True),
        Column("store_name", "text"),
        Column("city", "text"),
        Column("country", "text"),
        Column("opened_on", "date"),
    ),
    key=("store_id",),
)

PRODUCTS = Contract(
    target="products",
    table="raw.products",
    columns=(
        Column("product_id", "text", required=True),
        Column("product_name", "text"),
        Column("category", "text"),
        Column("list_price", "numeric"),
    ),
    key=("product_id",),
)

CONTRACTS = {c.target: c for c in (SALES_LINES, STORES, PRODUCTS)}
