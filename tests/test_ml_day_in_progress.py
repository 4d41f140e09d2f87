"""An export taken during trading hours: its last day is not judged until a later export
carries it further. A day exported whole is judged at once."""

from datetime import date, time, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.anomalies import detect_tenant
from ml.day_in_progress import LastDay, day_in_progress, judged_days, read_last_day
from tests.test_ml_anomalies import store_days


def last_sales(last: time, weeks: int = 9, seed: int = 3, sunday_close: time | None = None,
               orders_after: int = 40) -> pd.DataFrame:
    """Nine weeks of Monday-to-Saturday trading whose last sale falls between 19:20 and
    19:59 (Sundays at ``sunday_close``, if the shop opens then), ending on a Tuesday whose
    last sale is ``last``; every earlier day took ``orders_after`` orders after that time."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(end="2026-11-03", periods=weeks * 7, freq="D")  # a Tuesday
    rows = []
    for day in days[:-1]:
        if day.day_of_week == 6:
            if sunday_close is not None:
                rows.append((day.date(), sunday_close, orders_after))
            continue
        rows.append((day.date(), time(19, 20 + int(rng.integers(0, 40)), 5), orders_after))
    rows.append((days[-1].date(), last, 0))
    return pd.DataFrame(rows, columns=["day", "last_sale", "orders_after"])


def test_a_last_day_whose_sales_stop_hours_early_is_in_progress():
    sales = last_sales(time(11, 2))
    tuesdays = sales[pd.to_datetime(sales["day"]).dt.day_of_week == 1].iloc[-9:-1]
    found = day_in_progress(sales)
    assert found is not None
    assert found.day == date(2026, 11, 3) and found.last_sale == time(11, 2)
    assert found.usually_until == min(tuesdays["last_sale"]) and found.reference_days == 8
    assert found.describe() == (
        f"2026-11-03 not judged yet: its sales so far end at 11:02, and on each of the last 8 "
        f"Tuesdays they went on to {found.usually_until:%H:%M} or later (40 orders after "
        f"11:02 on average); it is judged when an export carries it further")


def test_a_shop_of_few_orders_is_not_held_for_a_day_ending_early_by_chance():
    # Four orders after 16:00 on a usual Tuesday: an empty evening is a 1-in-55 chance
    # (e^-4), so a Tuesday whose last sale is at 15:58 is judged as exported; the times
    # cannot tell, and forecasting goes by the sales.
    assert read_last_day(last_sales(time(15, 58), orders_after=4)) == LastDay(
        date(2026, 11, 3), told=False)
    # An evening as late as usual tells the day whole, however few the orders.
    assert read_last_day(last_sales(time(19, 45), orders_after=1)).told
    # Five make it a 1-in-148 chance: the day waits for the rest of it.
    assert read_last_day(last_sales(time(15, 58), orders_after=5)).in_progress is not None
    # The mean over the weekdays counts, not each one
    uneven = last_sales(time(15, 58), orders_after=5)
    tuesdays = pd.to_datetime(uneven["day"]).dt.day_of_week == 1
    uneven.loc[tuesdays[tuesdays].index[-3], "orders_after"] = 0
    assert day_in_progress(uneven) is None


@pytest.mark.parametrize("last", [time(19, 40), time(18, 35), time(21, 0)])
def test_a_day_exported_at_the_close_is_judged_at_once(last):
    # 18:35 is an ordinary quiet evening: within an hour of the earliest close seen (19:20+)
    assert day_in_progress(last_sales(last)) is None
    # and the times told so: forecasting learns from the day, however low its sales
    assert read_last_day(last_sales(last)) == LastDay(date(2026, 11, 3), told=True)


def test_the_last_day_is_compared_with_its_own_weekday():
    sales = last_sales(time(19, 45), sunday_close=time(16, 30))
    sunday = sales[pd.to_datetime(sales["day"]).dt.day_of_week == 6]["day"].iloc[-1]
    # A Sunday that ends at 16:10 is a Sunday, not a weekday cut short.
    ending_on_sunday = sales[sales["day"] <= sunday].copy()
    ending_on_sunday.loc[ending_on_sunday["day"] == sunday, "last_sale"] = time(16, 10)
    assert day_in_progress(ending_on_sunday) is None
    ending_on_sunday.loc[ending_on_sunday["day"] == sunday, "last_sale"] = time(10, 0)
    assert day_in_progress(ending_on_sunday).day == sunday


def test_exports_without_times_or_without_history_are_never_in_progress():
    midnight = last_sales(time(0, 0)).assign(last_sale=time(0, 0))
    assert day_in_progress(midnight) is None
    two_weeks = last_sales(time(9, 30)).iloc[-14:]  # one earlier Tuesday only
    assert day_in_progress(two_weeks) is None
    assert day_in_progress(pd.DataFrame({"day": [], "last_sale": [], "orders_after": []})) \
        is None
    # Nor do they tell the day whole: forecasting goes by the sales there.
    for untold in (midnight, two_weeks):
        assert read_last_day(untold) == LastDay(date(2026, 11, 3), told=False)
    assert read_last_day(last_sales(time(11, 2))).told


def test_a_day_in_progress_raises_no_drop_and_is_judged_once_complete():
    kpis = store_days(days=120, orders_per_day=200)  # busy enough for a day's drop to show
    last = pd.Timestamp(kpis["day"].iloc[-1])
    while last.day_of_week == 6:  # end on a trading day
        kpis = kpis.iloc[:-1]
        last = pd.Timestamp(kpis["day"].iloc[-1])
    whole_day = kpis.iloc[-1].copy()
    # exported at 11:00: a fifth of the day's orders so far
    kpis.loc[kpis.index[-1], "orders"] = round(whole_day["orders"] * 0.2)
    kpis.loc[kpis.index[-1], "net_revenue"] = whole_day["net_revenue"] * 0.2

    def on_last_day(found: pd.DataFrame) -> pd.DataFrame:
        return found[pd.to_datetime(found["day"]) == last]

    unheld = on_last_day(detect_tenant(kpis, "t1", "GBP"))
    assert "critical" in set(unheld["severity"])  # what a manager was woken by
    sales = pd.DataFrame({"day": [(last - timedelta(weeks=w)).date() for w in range(8, -1, -1)],
                          "last_sale": [time(19, 50)] * 8 + [time(11, 0)],
                          "orders_after": [160] * 8 + [0]})
    in_progress = day_in_progress(sales)
    held = detect_tenant(judged_days(kpis, in_progress), "t1", "GBP")
    assert on_last_day(held).empty
    everything_else = detect_tenant(kpis.iloc[:-1], "t1", "GBP")
    assert held["anomaly_id"].tolist() == everything_else["anomaly_id"].tolist()
    # The next export carries the day to its close: judged, and normal.
    kpis.loc[kpis.index[-1]] = whole_day
    sales.loc[sales.index[-1], "last_sale"] = time(19, 55)
    assert day_in_progress(sales) is None
    assert on_last_day(detect_tenant(judged_days(kpis, day_in_progress(sales)), "t1",
                                     "GBP")).empty
    assert judged_days(kpis, None) is kpis
