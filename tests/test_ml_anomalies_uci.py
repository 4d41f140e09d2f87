"""The anomaly detector on a real history: UCI's year as it is, and with events planted in it.

UCI's own anomalies are unknown, so planted events are scored by what the planting changed
(``bench.anomaly_scoring.score_planted``)."""

from datetime import date

import pandas as pd
import pytest

from bench.anomaly_scoring import score_planted
from ingestion.generator import PlantedAnomaly, plant_into_daily_kpis
from ml.anomalies import detect_tenant
from ml.calendar import public_holidays
from ml.tables import read_daily_kpis
from tests.conftest import UCI_CSV

pytestmark = pytest.mark.skipif(not UCI_CSV.exists(), reason="shared UCI data not present")

# Days the retailer did not trade though the weekday says it would: all English holidays.
UCI_HOLIDAY_CLOSURES = {date(2011, 4, 22), date(2011, 4, 24), date(2011, 4, 25),
                        date(2011, 4, 29), date(2011, 5, 2), date(2011, 5, 30),
                        date(2011, 8, 29)}

PLANTED = [
    PlantedAnomaly("uci", "online", "outage", date(2011, 3, 9), date(2011, 3, 9), 0.0,
                   "till down on a Wednesday"),
    PlantedAnomaly("uci", "online", "spike", date(2011, 5, 19), date(2011, 5, 19), 3.0,
                   "tripled quantities"),
    PlantedAnomaly("uci", "online", "drop", date(2011, 7, 4), date(2011, 7, 10), 0.4,
                   "a week with 60% of the orders gone"),
    PlantedAnomaly("uci", "online", "decline", date(2011, 9, 5), date(2011, 9, 25), 0.35,
                   "sales slide to a third over ten days and stay there"),
]


@pytest.fixture(scope="module")
def uci_kpis(uci_marts) -> pd.DataFrame:
    with uci_marts.connect() as conn:
        return read_daily_kpis(conn, "uci")


def test_uk_public_holidays_raise_nothing_though_the_store_closed_on_them(uci_kpis):
    calendar = public_holidays("GB", (2010, 2011))
    without_calendar = detect_tenant(uci_kpis, "uci", "GBP")
    outages = without_calendar[without_calendar["explanation"].str.startswith("No sales")]
    assert set(outages["day"]) == UCI_HOLIDAY_CLOSURES
    assert set(calendar) >= UCI_HOLIDAY_CLOSURES
    found = detect_tenant(uci_kpis, "uci", "GBP", country_code="GB")
    assert not found["day"].isin(calendar).any()
    assert not found["explanation"].str.startswith("No sales").any()


def test_planted_outage_spike_week_long_drop_and_decline_are_all_found(uci_kpis):
    untouched = detect_tenant(uci_kpis, "uci", "GBP", country_code="GB")
    found = detect_tenant(plant_into_daily_kpis(uci_kpis, PLANTED), "uci", "GBP",
                          country_code="GB")
    days = pd.to_datetime(found["day"])

    def within(event: PlantedAnomaly) -> pd.DataFrame:
        return found[days.between(pd.Timestamp(event.start), pd.Timestamp(event.end))]

    outage, spike, drop, decline = (within(e) for e in PLANTED)
    assert outage["severity"].tolist() == ["critical"]
    assert outage["explanation"].str.startswith("No sales on a Wednesday").all()
    assert spike.loc[spike["kpi"] == "revenue", "severity"].isin(["high", "critical"]).all()
    assert not spike[spike["kpi"] == "revenue"].empty
    for event in (drop, decline):
        shifts = event[event["detector"] == "level_shift"]
        assert shifts["explanation"].str.contains("below normal").any()
    scores = score_planted(found.assign(tenant_id="uci"), untouched,
                           pd.DataFrame([e.__dict__ for e in PLANTED]))
    assert scores["recall"] == 1.0
    # Measured 0.82 (9 days inside the events, 2 flags the planting caused elsewhere); #20
    # asks for 0.85. This guards against it getting worse.
    assert scores["precision"] >= 0.8
