"""The Great Expectations suites, defined in code.

A suite guards one table and is made of *rules*. A rule is what a data engineer reads in the
Dagster UI as one asset check: a name, a sentence, a severity, and the GE expectations that
decide it. Rules are built per batch because their limits are per tenant (plausible prices,
accepted currencies) or per batch (the daily revenue band uses the batch's days).

Severity: ``error`` rules block (the batch is held back from the marts and, in the same run,
downstream assets do not run); ``warn`` rules are reported and recorded, never blocking.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from great_expectations import expectations as gxe_module

Severity = Literal["error", "warn"]

# Sales before this are not plausible for any tenant we onboard; after "now + 1 day" they
# are in the future (a day of slack for time zones and clock skew).
EARLIEST_PLAUSIBLE_ORDER = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

# A day's revenue outside [1/10, 10] x the mean of the previous 28 trading days is worth a look.
REVENUE_BAND = (0.1, 10.0)
REVENUE_HISTORY_DAYS = 28
REVENUE_MIN_HISTORY_DAYS = 7

KNOWN_CHANNELS = ["store", "online", "phone", "marketplace", "unknown"]

LINE_KEY = ["store_id", "order_id", "line_number"]
REPEATED_LINES_READ = 10_000


@dataclass(frozen=True)
class BatchContext:
    """What a suite needs to know about the batch it validates and its tenant."""

    tenant_id: str
    timezone: str
    file_ids: tuple[int, ...]
    accepted_currencies: tuple[str, ...]
    max_unit_price: float
    registered_tenants: tuple[str, ...]
    first_day: date | None  # the batch's first and last order day (tenant time zone)
    last_day: date | None
    now: datetime
    published_history: bool = False  # marts.mart_daily_store_kpis exists (dbt has run)

    def file_list(self) -> str:
        # ids are integers from the ledger: safe to inline, and literals let the planner use
        # the BRIN index on source_file_id (with a subquery the planner scanned the table).
        return ", ".join(str(int(i)) for i in self.file_ids) or "null"

    def tenant_literal(self) -> str:
        return "'" + self.tenant_id.replace("'", "''") + "'"


def great_expectations() -> ModuleType:
    """GE, imported when a suite runs rather than when this module is: the import takes
    seconds, and every Dagster process that loads the definitions reads the rules here."""
    # GE phones home on import unless told not to; this machine (and many warehouses) is
    # offline.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


class _Expectations:
    """``great_expectations.expectations``, resolved on first use (see great_expectations)."""

    def __getattr__(self, name: str) -> Any:
        great_expectations()
        from great_expectations import expectations

        return getattr(expectations, name)


gxe = _Expectations()


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: Severity
    expectations: Callable[[BatchContext], list[gxe_module.Expectation]]
    # Rules over something other than the batch's rows (e.g. daily totals) bring their query.
    query: Callable[[BatchContext], str] | None = None
    # Columns that identify a failing row in samples.
    sample_columns: tuple[str, ...] = ("source_file_id", "source_line")


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    rules: tuple[Rule, ...]
    description: str = ""

    def batch_query(self, batch: BatchContext) -> str:
        # By file, not by tenant: a row in the tenant's file that names another tenant must
        # be seen (and fail tenant_registered), not filtered away.
        return f"select * from {self.table} where source_file_id in ({batch.file_list()})"


def _repeated_line_keys_query(batch: BatchContext) -> str:
    """The batch's lines whose key another line of the same file repeats, with how many lines
    share it: empty for a good batch (the loader quarantines repeated keys, so only lines
    written around it can repeat). At most ``REPEATED_LINES_READ`` lines are returned, as the
    gate reads them into memory; past that the count is a floor.

    Grouped in one pass, each key carrying its lines, rather than the lines joined back to
    their grouped keys: that join is planned on the batch's row estimate, and for a batch
    loaded since its table was analyzed the planner picks a nested loop, quadratic in the
    lines."""
    key = ", ".join(("source_file_id", *LINE_KEY))
    return f"""
        with repeated_keys as (
            select {key}, count(*) as copies, array_agg(source_line) as source_lines
            from raw.sales_lines
            where source_file_id in ({batch.file_list()})
            group by {key}
            having count(*) > 1
        )
        select source_file_id, unnest(source_lines) as source_line, {", ".join(LINE_KEY)},
               copies
        from repeated_keys
        order by source_file_id, source_line
        limit {REPEATED_LINES_READ}
    """


def _daily_revenue_query(batch: BatchContext) -> str:
    """Each batch day's revenue against the mean of the tenant's previous trading days: the
    published days before the batch (from the daily KPI mart, so history is never re-read
    from raw lines) and the batch's own earlier days (a first load brings its history)."""
    if batch.first_day is None:
        return "select null::date as day, null::numeric as ratio_to_recent where false"
    since = batch.first_day - timedelta(days=REVENUE_HISTORY_DAYS * 2)
    tz = batch.timezone.replace("'", "''")
    published = published_union = ""
    if batch.published_history:
        published = f"""
        published_daily as (
            select day, sum(net_revenue) as revenue
            from marts.mart_daily_store_kpis
            where tenant_id = {batch.tenant_literal()}
              and day >= '{since.isoformat()}'::date
              and day < '{batch.first_day.isoformat()}'::date
            group by day
            having sum(net_revenue) <> 0
        ),"""
        published_union = "select day, revenue from published_daily union all"
    return f"""
        with {published}
        batch_daily as (
            select (ordered_at at time zone '{tz}')::date as day,
                   sum(quantity * unit_price) as revenue
            from raw.sales_lines
            where source_file_id in ({batch.file_list()})
            group by 1
        ),
        daily_revenue as (
            {published_union}
            select day, revenue from batch_daily
        ),
        revenue_with_history as (
            select day, revenue,
                   avg(revenue) over recent as recent_mean,
                   count(*) over recent as history_days
            from daily_revenue
            window recent as (order by day rows between {REVENUE_HISTORY_DAYS} preceding
                              and 1 preceding)
        )
        select day, round(revenue, 2) as revenue, round(recent_mean, 2) as recent_mean,
               round(revenue / nullif(recent_mean, 0), 3) as ratio_to_recent
        from revenue_with_history
        where history_days >= {REVENUE_MIN_HISTORY_DAYS}
          and day between '{batch.first_day.isoformat()}'::date
                      and '{batch.last_day.isoformat()}'::date
    """


RAW_SALES_LINES = Suite(
    name="raw_sales_lines",
    table="raw.sales_lines",
    description="The batch of sales lines a load brought in, before anything reads it.",
    rules=(
        Rule("batch_has_rows", "The loaded batch has at least one sales line.", "error",
             lambda b: [gxe.ExpectTableRowCountToBeBetween(min_value=1)], sample_columns=()),
        Rule("line_keys_present",
             "Tenant, store, order and product ids are never blank (the table already refuses "
             "nulls).", "error",
             lambda b: [gxe.ExpectColumnValuesToNotMatchRegex(column=c, regex=r"^\s*$")
                        for c in ("tenant_id", "store_id", "order_id", "product_id")]),
        Rule("line_keys_unique", "(store, order, line number) is unique within each file.",
             "error",
             lambda b: [gxe.ExpectColumnValuesToBeBetween(column="copies", max_value=1)],
             query=_repeated_line_keys_query),
        Rule("quantity_not_zero", "Every line sells or returns at least one unit.", "error",
             lambda b: [gxe.ExpectColumnValuesToNotBeInSet(column="quantity", value_set=[0])]),
        Rule("unit_price_plausible",
             "Unit price is at least 0 and below the tenant's plausible maximum "
             "(ops.tenants.max_unit_price).", "error",
             lambda b: [gxe.ExpectColumnValuesToBeBetween(
                 column="unit_price", min_value=0, max_value=b.max_unit_price)]),
        Rule("ordered_at_in_window",
             "Order timestamps are after 2000-01-01 and not in the future.", "error",
             lambda b: [gxe.ExpectColumnValuesToBeBetween(
                 column="ordered_at", min_value=EARLIEST_PLAUSIBLE_ORDER,
                 max_value=b.now + FUTURE_SLACK)]),
        Rule("currency_accepted",
             "Currency is one the tenant accepts (ops.tenants.accepted_currencies, else its "
             "home currency).", "error",
             lambda b: [gxe.ExpectColumnValuesToBeInSet(
                 column="currency", value_set=list(b.accepted_currencies))]),
        Rule("tenant_registered", "tenant_id is a tenant registered in ops.tenants.", "error",
             lambda b: [gxe.ExpectColumnValuesToBeInSet(
                 column="tenant_id", value_set=list(b.registered_tenants))]),
        Rule("daily_revenue_in_band",
             f"Each batch day's revenue is within {REVENUE_BAND[0]:g}x..{REVENUE_BAND[1]:g}x "
             f"the mean of the tenant's previous {REVENUE_HISTORY_DAYS} trading days.",
             "warn",
             lambda b: [gxe.ExpectColumnValuesToBeBetween(
                 column="ratio_to_recent", min_value=REVENUE_BAND[0],
                 max_value=REVENUE_BAND[1])],
             query=_daily_revenue_query,
             sample_columns=("day", "revenue", "recent_mean")),
    ),
)

STG_SALES_LINES = Suite(
    name="stg_sales_lines",
    table="staging.stg_sales_lines",
    description="The typed, renamed lines of the batch as the marts will read them.",
    rules=(
        Rule("line_keys_not_null", "Store, order, line number, timestamp and product are "
             "never null once typed.", "error",
             lambda b: [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in
                        (*LINE_KEY, "ordered_at", "product_id")]),
        Rule("product_name_present", "At least 95% of lines carry a product name.", "warn",
             lambda b: [gxe.ExpectColumnValuesToNotBeNull(column="product_name",
                                                         mostly=0.95)]),
        Rule("channel_known", f"Channel is one of {', '.join(KNOWN_CHANNELS)}.", "warn",
             lambda b: [gxe.ExpectColumnValuesToBeInSet(column="channel",
                                                       value_set=KNOWN_CHANNELS)]),
        Rule("customers_identified", "At least 5% of lines name a customer (RFM and cohorts "
             "need them; guests are fine).", "warn",
             lambda b: [gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
                 column="customer_id", min_value=0.05)], sample_columns=()),
    ),
)

SUITES = {s.name: s for s in (RAW_SALES_LINES, STG_SALES_LINES)}
