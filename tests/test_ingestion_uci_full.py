"""The whole UCI Online Retail export loads: nothing lost, returns flagged, guests kept."""

import pandas as pd
import pytest

from ingestion.loader import load_file
from ingestion.spec import shipped_specs
from tests.conftest import UCI_CSV
from tests.ingestion_helpers import register, rows, scalar

pytestmark = pytest.mark.skipif(not UCI_CSV.exists(), reason="shared UCI data not present")


def test_full_uci_export(engine):
    register(engine, "uci")
    result = load_file(engine, UCI_CSV, "uci", shipped_specs()["uci_online_retail_csv"])
    source = pd.read_csv(UCI_CSV, dtype=str, keep_default_na=False)
    assert len(source) == 541_909 == result.rows_read
    assert result.rows_loaded + result.rows_quarantined == 541_909
    assert scalar(engine, "select count(*) from raw.sales_lines") == result.rows_loaded
    assert scalar(engine, "select count(*) from raw.quarantine") == result.rows_quarantined
    # The only rejects are the bad-debt adjustments with a negative price.
    reasons = rows(engine, "select field, count(*) from raw.quarantine group by 1")
    negative_prices = int((source.UnitPrice.astype(float) < 0).sum())
    assert [tuple(r) for r in reasons] == [("unit_price", negative_prices)]
    quarantined_lines = {r.line_number
                         for r in rows(engine, "select line_number from raw.quarantine")}
    kept = source.drop(index=[n - 2 for n in quarantined_lines])
    assert scalar(engine, "select count(*) from raw.sales_lines where is_return") == \
        kept.InvoiceNo.str.startswith("C").sum()
    assert scalar(engine, "select count(*) from raw.sales_lines where customer_id is null") == \
        (kept.CustomerID == "").sum()
    assert (source.CustomerID == "").sum() == 135_080  # the published figure
    assert int(scalar(engine, "select sum(quantity) from raw.sales_lines")) == \
        int(kept.Quantity.astype(int).sum())
    assert scalar(engine, "select count(distinct order_id) from raw.sales_lines") == \
        kept.InvoiceNo.nunique()
