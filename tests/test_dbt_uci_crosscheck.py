"""Managers' numbers, recomputed independently: pandas over the UCI export vs the marts."""

import pandas as pd
import pytest

from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from storepulse.tenants import Tenant, add_tenant
from tests.conftest import UCI_CSV
from tests.dbt_helpers import frame, run_dbt
from tests.ingestion_helpers import publish

pytestmark = pytest.mark.skipif(not UCI_CSV.exists(), reason="shared UCI data not present")


@pytest.fixture(scope="module")
def uci_marts(server_url):
    from storepulse.migrate import migrate
    from storepulse.warehouse import get_engine
    from tests.conftest import create_database, drop_database

    url = create_database(server_url)
    engine = get_engine(url)
    migrate(engine)
    add_tenant(engine, Tenant("uci", "UCI Online Retail", "Europe/London", "GBP", "GB"))
    load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
    publish(engine)
    run_dbt(url, "build")
    try:
        yield engine
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def uci_lines():
    lines = pd.read_csv(UCI_CSV, dtype={"CustomerID": "string", "InvoiceNo": "string",
                                        "StockCode": "string"})
    lines = lines[lines.UnitPrice >= 0]  # the loader quarantines negative prices
    lines["day"] = pd.to_datetime(lines.InvoiceDate).dt.date  # timestamps are London time
    lines["amount_cents"] = (lines.Quantity * lines.UnitPrice * 100).round().astype("int64")
    lines["is_return"] = lines.InvoiceNo.str.startswith("C")
    return lines


def test_daily_net_revenue_matches_to_the_cent(uci_marts, uci_lines):
    expected = uci_lines.groupby("day").amount_cents.sum()
    kpis = frame(uci_marts, "select day, round(net_revenue * 100)::bigint as cents, orders "
                            "from marts.mart_daily_store_kpis where tenant_id = 'uci' "
                            "order by day")
    kpis = kpis.set_index("day")
    trading = kpis[kpis.index.isin(expected.index)]
    assert len(trading) == len(expected)
    assert (trading.cents - expected.reindex(trading.index)).abs().max() == 0
    # Every other day of the span is a zero row (the retailer closed on Saturdays).
    closed = kpis[~kpis.index.isin(expected.index)]
    assert len(closed) > 40 and (closed.cents == 0).all()
    orders = uci_lines[~uci_lines.is_return].groupby("day").InvoiceNo.nunique()
    assert (trading.orders - orders.reindex(trading.index).fillna(0)).abs().max() == 0


def test_rfm_recency_frequency_monetary_match(uci_marts, uci_lines):
    as_of = uci_lines.day.max()
    known = uci_lines[uci_lines.CustomerID.notna()]
    sales = known[~known.is_return]
    expected = pd.DataFrame({
        "recency_days": sales.groupby("CustomerID").day.max().map(lambda d: (as_of - d).days),
        "frequency": sales.groupby("CustomerID").InvoiceNo.nunique(),
        "monetary_cents": known.groupby("CustomerID").amount_cents.sum(),
    }).dropna(subset=["frequency"])
    rfm = frame(uci_marts, "select customer_id, recency_days, frequency, "
                           "round(monetary * 100)::bigint as monetary_cents "
                           "from marts.mart_customer_rfm").set_index("customer_id")
    assert len(rfm) == len(expected) > 4000
    joined = rfm.join(expected, lsuffix="_mart", how="inner")
    assert len(joined) == len(expected)
    for column in ("recency_days", "frequency", "monetary_cents"):
        diff = (joined[f"{column}_mart"] - joined[column]).abs()
        assert diff.max() == 0, (column, joined[diff > 0].head())
